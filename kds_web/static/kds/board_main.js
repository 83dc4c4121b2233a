// Entry point of the customer pickup board (/board/): kept apart from main.js so a board
// loads only what it needs (no station, expo or HQ code).

import { startBoard } from './board.js';

startBoard(document.getElementById('app'));

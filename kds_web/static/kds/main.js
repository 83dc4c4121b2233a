// One entry point for the apps; the path picks one: …/hq/reports.html → HQ reports,
// …/hq/ → HQ dashboard, …/kds/expo → expo screen, anything else → station screen. (The
// station screen also turns into the expo view when the broker says the station is an
// expo station.)

import { startKds } from './kds.js';
import { startHq } from './hq.js';
import { startReports } from './reports.js';

var path = window.location.pathname;
var root = document.getElementById('app');
var mode = new URLSearchParams(window.location.search).get('app');
if (mode === 'reports' || (!mode && /\/hq\/reports(\.html)?$/.test(path))) {
  startReports(root);
} else if (mode === 'hq' || (!mode && /\/hq(\/|$)/.test(path))) {
  startHq(root);
} else {
  startKds(root, mode === 'expo' || /\/expo(\/|\.html|\/index\.html)?$/.test(path));
}

"""ESC/POS rendering, status decoding, async transports and the printer emulator."""

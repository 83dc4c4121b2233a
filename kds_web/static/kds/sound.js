// New-ticket chime. Browsers only let a page play sound after a user gesture, so the first
// tap or key press unlocks it; until then the top bar says "tap for sound".

var ctx = null;
var unlocked = false;
var listeners = [];

function unlock() {
  if (unlocked) return;
  var AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  try {
    ctx = ctx || new AC();
    if (ctx.resume) ctx.resume();
    unlocked = true;
    listeners.forEach(function (fn) { fn(); });
  } catch (e) {
    ctx = null;
  }
}

// A page that may play sound without a gesture (a kiosk browser started with
// --autoplay-policy=no-user-gesture-required, a TV's web app) needs no tap: the pickup
// board asks once at start.
export function unlockIfAllowed() {
  if (unlocked) return;
  var AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) return;
  try {
    ctx = ctx || new AC();
    if (ctx.state === 'running') {
      unlocked = true;
      listeners.forEach(function (fn) { fn(); });
    }
  } catch (e) {
    ctx = null;
  }
}

export function armSound(onUnlock) {
  if (onUnlock) listeners.push(onUnlock);
  window.addEventListener('pointerdown', unlock, true);
  window.addEventListener('touchstart', unlock, true);
  window.addEventListener('keydown', unlock, true);
}

export function soundUnlocked() {
  return unlocked;
}

// Two short rising tones: audible over a kitchen hood without being shrill.
export function chime() {
  if (!unlocked || !ctx) return;
  var t0 = ctx.currentTime;
  [880, 1320].forEach(function (freq, i) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = 'square';
    osc.frequency.value = freq;
    var start = t0 + i * 0.16;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.25, start + 0.01);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.14);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + 0.15);
  });
}

// "Your order is ready" on the pickup board: a soft two-note bell (high, then low), heard
// across a dining room without startling anyone.
export function bell() {
  if (!unlocked || !ctx) return;
  var t0 = ctx.currentTime;
  [1046.5, 784].forEach(function (freq, i) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = 'sine';
    osc.frequency.value = freq;
    var start = t0 + i * 0.45;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.35, start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 1.1);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + 1.15);
  });
}

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

// Notes one after another (``v.gap`` s apart): each rises to ``v.peak`` in ``v.attack`` s,
// fades out by ``v.fade`` s and stops at ``v.stop`` s.
function tones(freqs, v) {
  if (!unlocked || !ctx) return;
  var t0 = ctx.currentTime;
  freqs.forEach(function (freq, i) {
    var osc = ctx.createOscillator();
    var gain = ctx.createGain();
    osc.type = v.type;
    osc.frequency.value = freq;
    var start = t0 + i * v.gap;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(v.peak, start + v.attack);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + v.fade);
    osc.connect(gain);
    gain.connect(ctx.destination);
    osc.start(start);
    osc.stop(start + v.stop);
  });
}

// Two short rising tones: audible over a kitchen hood without being shrill.
export function chime() {
  tones([880, 1320], { type: 'square', gap: 0.16, peak: 0.25, attack: 0.01, fade: 0.14, stop: 0.15 });
}

// "Your order is ready" on the pickup board: a soft two-note bell (high, then low), heard
// across a dining room without startling anyone.
export function bell() {
  tones([1046.5, 784], { type: 'sine', gap: 0.45, peak: 0.35, attack: 0.02, fade: 1.1, stop: 1.15 });
}

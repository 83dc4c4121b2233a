// A websocket link that keeps itself up: backoff reconnect, a visible state, lost-link
// detection within a few seconds, and a wake-up hook for pages coming back from sleep.
//
// States: 'connecting' (socket opening or waiting for the first answer), 'live',
// 'lost' (will retry at retryAt), 'refused' (the broker said no: bad token, bad store;
// retried slowly, shown as an error).

import { withTimeout } from './params.js';

var SUBPROTOCOL = 'passline.v1.json';
var FIRST_ANSWER_MS = 10000; // hello → snapshot/fleet must come within this
var SLEEP_GAP_MS = 15000; // a 1 s timer that fired this late means the page slept
var REFUSED_RETRY_MS = 30000;
var MAX_BACKOFF_MS = 8000;

// Close codes (protocol/close_codes.py): these mean "reconnecting will not help".
function isTerminal(code) {
  if (code === 1000 || code === 1001 || code === 1006 || code === 1011) return false;
  if (code === 1012 || code === 1013) return false;
  if (code >= 4000 && code <= 4499) return false;
  return code === 1007 || code === 1008 || code === 1009 || code >= 4500;
}

export function Link(opts) {
  // opts: url, hello() -> object, onMessage(msg), onState(link), onWake(), probeUrl,
  // probeEveryMs (0 = no probe)
  this.opts = opts;
  this.ws = null;
  this.state = 'connecting';
  this.local = false; // served by the store edge in local mode (no uplink)
  this.since = Date.now();
  this.attempt = 0;
  this.retryAt = 0;
  this.error = '';
  this.lastRx = Date.now();
  this.lastTick = Date.now();
  this.hiddenAt = 0;
  this.retryTimer = null;
  this.answerTimer = null;
  this.probing = false;
  this.attempting = false;
  var self = this;
  setInterval(function () {
    self.tick();
  }, 1000);
  window.addEventListener('online', function () {
    if (self.state !== 'live') self.reconnect('network back');
  });
  window.addEventListener('offline', function () {
    self.lose('this device lost its network');
  });
  document.addEventListener('visibilitychange', function () {
    if (document.hidden) {
      self.hiddenAt = Date.now();
    } else if (self.hiddenAt && Date.now() - self.hiddenAt > SLEEP_GAP_MS) {
      self.hiddenAt = 0;
      self.wake();
    }
  });
  window.addEventListener('pageshow', function (ev) {
    if (ev.persisted) self.wake(); // restored from the back/forward cache
  });
}

Link.prototype.start = function () {
  this.connect();
};

Link.prototype.send = function (msg) {
  if (this.ws && this.ws.readyState === 1 && this.state === 'live') {
    this.ws.send(JSON.stringify(msg));
    return true;
  }
  return false;
};

Link.prototype.connect = function () {
  var self = this;
  this.clearTimers();
  // a screen that lost its link stays "lost" while it tries again: only the very first
  // connection (or a deliberate reconnect) shows as "connecting"
  this.attempting = true;
  if (this.state === 'lost' || this.state === 'refused') this.opts.onState(this);
  else this.setState('connecting');
  var ws;
  try {
    ws = new WebSocket(this.opts.url, SUBPROTOCOL);
  } catch (e) {
    this.lose('cannot open ' + this.opts.url + ': ' + e.message);
    return;
  }
  this.ws = ws;
  // a black-holed network never completes the handshake: give up on it like on a hello
  this.answerTimer = setTimeout(function () {
    if (self.ws === ws && self.state !== 'live') self.lose('no answer from the broker');
  }, FIRST_ANSWER_MS);
  ws.onopen = function () {
    if (self.ws !== ws) return;
    self.lastRx = Date.now();
    ws.send(JSON.stringify(self.opts.hello()));
  };
  ws.onmessage = function (ev) {
    if (self.ws !== ws) return;
    self.lastRx = Date.now();
    var msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    // a snapshot served by the store edge without an uplink says so (docs/store-edge.md)
    if (msg.type === 'snapshot') self.local = msg.local === true;
    if (self.state !== 'live' && msg.type !== 'error') {
      clearTimeout(self.answerTimer);
      self.attempt = 0;
      self.error = '';
      self.attempting = false;
      self.setState('live');
    }
    self.opts.onMessage(msg);
  };
  ws.onclose = function (ev) {
    if (self.ws !== ws) return;
    self.ws = null;
    var why = ev.code === 1006 ? 'connection dropped' : 'closed ' + ev.code + (ev.reason ? ': ' + ev.reason : '');
    if (isTerminal(ev.code)) self.refuse(why);
    else self.lose(why);
  };
  ws.onerror = function () {
    // onclose follows with the code; nothing to add here
  };
};

Link.prototype.setState = function (state) {
  if (state !== this.state) this.since = Date.now();
  this.state = state;
  this.opts.onState(this);
};

Link.prototype.drop = function () {
  var ws = this.ws;
  this.ws = null;
  if (ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    try {
      ws.close(1000, 'reconnecting');
    } catch (e) {
      // already closing
    }
  }
};

Link.prototype.clearTimers = function () {
  clearTimeout(this.retryTimer);
  clearTimeout(this.answerTimer);
  this.retryTimer = null;
};

// The link is gone: show it at once and retry with backoff.
Link.prototype.lose = function (why) {
  this.drop();
  this.clearTimers();
  this.error = why;
  var base = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, this.attempt));
  var delay = Math.round(base * (0.5 + Math.random() / 2));
  this.attempt += 1;
  this.schedule(delay, 'lost');
};

// The broker refused us (bad token, unknown store…): say so, retry slowly.
Link.prototype.refuse = function (why) {
  this.drop();
  this.clearTimers();
  this.error = why;
  this.schedule(REFUSED_RETRY_MS, 'refused');
};

Link.prototype.schedule = function (delay, state) {
  var self = this;
  this.attempting = false;
  this.retryAt = Date.now() + delay;
  this.setState(state);
  this.retryTimer = setTimeout(function () {
    self.connect();
  }, delay);
};

Link.prototype.reconnect = function (why) {
  this.drop();
  this.clearTimers();
  this.error = why || '';
  if (this.state === 'live') this.setState('connecting');
  this.connect();
};

Link.prototype.wake = function () {
  if (this.opts.onWake) this.opts.onWake();
  this.attempt = 0;
  this.reconnect('woke up');
};

Link.prototype.tick = function () {
  var now = Date.now();
  var gap = now - this.lastTick;
  this.lastTick = now;
  if (gap > SLEEP_GAP_MS) {
    this.wake();
    return;
  }
  if (this.state !== 'live') {
    this.opts.onState(this); // countdown to the next retry
    return;
  }
  var every = this.opts.probeEveryMs;
  if (every > 0 && !this.probing && now - this.lastRx >= every) this.probe();
};

// A silent socket may be dead (Wi-Fi with no uplink never fires `close`); browsers cannot
// see websocket pings, so ask the broker's HTTP side whether it is reachable. Any HTTP
// answer counts as reachable; only a network error or a timeout counts as lost.
Link.prototype.probe = function () {
  var self = this;
  var ws = this.ws;
  this.probing = true;
  var url = this.opts.probeUrl + (this.opts.probeUrl.indexOf('?') >= 0 ? '&' : '?') + 't=' + Date.now();
  withTimeout(fetch(url, { cache: 'no-store', credentials: 'same-origin' }), 1500).then(
    function () {
      self.probing = false;
      if (self.ws === ws) self.lastRx = Date.now();
    },
    function () {
      self.probing = false;
      if (self.ws === ws && self.state === 'live') self.lose('broker not reachable');
    }
  );
};

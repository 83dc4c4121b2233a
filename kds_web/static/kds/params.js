// Screen settings: query parameters first, then what this screen saved last time.
// See docs/kds.md for every parameter.

var query = new URLSearchParams(window.location.search);

export function param(name) {
  var v = query.get(name);
  return v === null || v === '' ? null : v;
}

export function loadSaved(key) {
  try {
    var raw = window.localStorage.getItem(key);
    return raw ? JSON.parse(raw) : {};
  } catch (e) {
    return {};
  }
}

export function save(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    // private mode or storage full: the screen still works, it just forgets on reload
  }
}

// The broker serves HTTP and websockets on two ports (DESIGN §5.1), so the page must be
// told where the websocket is: ?ws=ws://host:port, else ?wsport=N on this host, else a
// `config.json` next to the page ({"ws": "ws://host:port"}) if the broker serves one,
// else this host on port 8765 (the demo's --port-ws default).
export function resolveWsBase(saved) {
  var explicit = param('ws') || (saved && saved.ws) || null;
  if (explicit) return Promise.resolve(normaliseBase(explicit));
  var port = param('wsport');
  if (port) return Promise.resolve(sameHost(port));
  return fetchJson('config.json', 1500).then(
    function (cfg) {
      return cfg && typeof cfg.ws === 'string' ? normaliseBase(cfg.ws) : sameHost('8765');
    },
    function () {
      return sameHost('8765');
    }
  );
}

export function wsUrl(base, path) {
  return base.replace(/\/+$/, '') + path;
}

function sameHost(port) {
  var scheme = window.location.protocol === 'https:' ? 'wss://' : 'ws://';
  var host = window.location.hostname || '127.0.0.1';
  if (host.indexOf(':') >= 0 && host.charAt(0) !== '[') host = '[' + host + ']';
  return scheme + host + ':' + port;
}

// Accepts ws://h:p, wss://h:p/prefix, http(s)://h:p (mapped to ws(s)), or h:p.
function normaliseBase(text) {
  var t = String(text).trim();
  if (/^https?:\/\//i.test(t)) t = t.replace(/^http/i, 'ws');
  if (!/^wss?:\/\//i.test(t)) t = 'ws://' + t;
  // a full endpoint URL was given: keep only the prefix before /v1/ws/…
  return t.replace(/\/v1\/ws\/[a-z]+\/?$/i, '').replace(/\/+$/, '');
}

export function fetchJson(url, timeoutMs) {
  return withTimeout(
    fetch(url, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) throw new Error('HTTP ' + r.status);
      return r.json();
    }),
    timeoutMs
  );
}

export function withTimeout(promise, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () {
      reject(new Error('timeout'));
    }, ms);
    promise.then(
      function (v) {
        clearTimeout(timer);
        resolve(v);
      },
      function (e) {
        clearTimeout(timer);
        reject(e);
      }
    );
  });
}

var refCounter = 0;
// Unique action reference: screen-random prefix + counter (DESIGN §5.3 `ref`, ≤ 64 chars).
var refPrefix = Math.random().toString(36).slice(2, 8);
export function newRef() {
  refCounter += 1;
  return refPrefix + '-' + Date.now().toString(36) + '-' + refCounter;
}

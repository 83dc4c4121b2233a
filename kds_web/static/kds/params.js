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

// True when it was saved (false in private mode or with storage full: the screen still
// works, it just forgets on reload).
export function save(key, value) {
  try {
    window.localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch (e) {
    return false;
  }
}

// Where this page's websockets are (DESIGN §8.4): only what the broker that served the
// page says in its config.json, never an address from the link or from storage — a link
// with ?ws=elsewhere would otherwise make the screen send its token to elsewhere. A page
// whose server has no config.json (404) uses its own origin, e.g. behind a proxy that
// forwards /v1/ws/ on the same host; an unreachable one is asked again a few times first.
var CONFIG_TRIES = 4;
var CONFIG_TIMEOUT_MS = 2000;
var CONFIG_RETRY_MS = 1000;

export function resolveWsBase() {
  return askConfig(CONFIG_TRIES).then(function (cfg) {
    var base = cfg && typeof cfg.ws === 'string' ? wsBase(cfg.ws) : null;
    return base || ownOrigin();
  });
}

function askConfig(tries) {
  return fetchJson(configUrl(), CONFIG_TIMEOUT_MS).catch(function (e) {
    if (e.status || tries <= 1) return null; // the server answered: it has no config
    return new Promise(function (resolve) {
      setTimeout(resolve, CONFIG_RETRY_MS);
    }).then(function () {
      return askConfig(tries - 1);
    });
  });
}

// …/kds/config.json for the station and expo pages, …/hq/config.json for HQ, keeping any
// path prefix a reverse proxy put in front.
function configUrl() {
  var m = /^(.*\/)(kds|hq|board)(\/|$)/.exec(window.location.pathname);
  return m ? m[1] + m[2] + '/config.json' : 'config.json';
}

function ownOrigin() {
  return (window.location.protocol === 'https:' ? 'wss://' : 'ws://') + window.location.host;
}

// ws://h:p or wss://h:p/prefix from the broker, without a trailing slash; null otherwise.
function wsBase(text) {
  var t = String(text).trim().replace(/\/+$/, '');
  return /^wss?:\/\/[^\s/?#@]+(\/[^\s?#]*)?$/i.test(t) ? t : null;
}

export function wsUrl(base, path) {
  return base.replace(/\/+$/, '') + path;
}

// Take settings out of the address bar once they are saved on this device: a token left
// in the URL ends up in history, bookmarks, screenshots and request logs.
export function dropFromUrl(names) {
  var q = new URLSearchParams(window.location.search);
  var found = names.filter(function (n) {
    return q.has(n);
  });
  if (!found.length || !window.history || !window.history.replaceState) return;
  found.forEach(function (n) {
    q.delete(n);
  });
  var rest = q.toString();
  window.history.replaceState(window.history.state, '', window.location.pathname + (rest ? '?' + rest : '') + window.location.hash);
}

export function fetchJson(url, timeoutMs) {
  return withTimeout(
    fetch(url, { cache: 'no-store', credentials: 'same-origin' }).then(function (r) {
      if (!r.ok) {
        var err = new Error('HTTP ' + r.status);
        err.status = r.status;
        throw err;
      }
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

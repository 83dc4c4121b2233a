// HQ dashboard, /hq/?token=…: every store's link and every printer's state, live.
// /v1/ws/hq: hello {token} → fleet {stores}, then store_link, printer_status, job_alert.
// Built for thousands of stores: state lives in maps, only the visible page is rendered.

import { h, replaceChildren, clock, age } from './dom.js';
import { param, loadSaved, save, resolveWsBase, wsUrl, dropFromUrl } from './params.js';
import { Link } from './link.js';
import { linkText } from './linkbar.js';
import { setupForm } from './setup.js';

var SAVED_KEY = 'passline.hq';
var PAGE_SIZE = 50;
var ALERTS_SHOWN = 30;
var CLEARED_JOB_STATES = { printed: true, cancelled: true, printing: true, spooled: true };
var PRINTER_STATES = ['ready', 'warning', 'error', 'offline', 'unknown'];
var NEVER_BEFORE = Date.UTC(2001, 0, 1); // a link "since" before this means it never connected

export function startHq(root) {
  var saved = loadSaved(SAVED_KEY);
  var cfg = { token: param('token') || saved.token, probe: param('probe') };
  if (!cfg.token) {
    setupForm(root, {
      title: 'HQ dashboard',
      fields: [
        ['token', 'Token (hq scope)', cfg.token],
      ],
    });
    return;
  }
  // the websocket address is the broker's to say (params.js), so ?ws= is ignored
  if (save(SAVED_KEY, { token: cfg.token })) dropFromUrl(['token', 'ws']);
  resolveWsBase().then(function (base) {
    new Hq(root, cfg, wsUrl(base, '/v1/ws/hq')).start();
  });
}

// What is wrong with a printer, as short chips (protocol/status.py fields).
export function printerChips(status) {
  if (!status) return ['no report yet'];
  if (!status.reachable) return []; // the state says OFFLINE already
  var chips = [];
  if (status.paper === 'out') chips.push('paper out');
  else if (status.paper === 'near_end') chips.push('paper low');
  if (status.cover_open) chips.push('cover open');
  if (status.cutter_error) chips.push('cutter');
  if (status.mechanical_error) chips.push('mechanical');
  if (status.unrecoverable_error) chips.push('unrecoverable');
  if (status.auto_recoverable_error) chips.push('overheat');
  if (status.source !== 'none' && !status.online && !chips.length) chips.push('off line');
  if (status.source === 'none') chips.push('no status');
  if (status.drawer_open) chips.push('drawer open');
  return chips;
}

function printerState(p) {
  return p.status ? p.status.state : 'unknown';
}

// 3 store offline, 2 printer error/offline, 1 warning or held jobs, 0 fine.
function severity(store, alerts) {
  if (!store.link.online) return 3;
  var worst = 0;
  store.printers.forEach(function (p) {
    var st = printerState(p);
    if (st === 'error' || st === 'offline') worst = Math.max(worst, 2);
    else if (st === 'warning') worst = Math.max(worst, 1);
  });
  if (worst < 2 && (store.held > 0 || alerts[store.store_id])) worst = Math.max(worst, 1);
  return worst;
}

function Hq(root, cfg, url) {
  this.root = root;
  this.cfg = cfg;
  this.url = url;
  this.stores = {};
  this.alerts = {}; // job_id -> alert
  this.alertsByStore = {};
  this.synced = false;
  this.page = 0;
  this.problemsOnly = param('problems') === '1';
  this.search = '';
  this.renderQueued = false;
}

Hq.prototype.start = function () {
  var self = this;
  this.build();
  var probeS = this.cfg.probe === null || this.cfg.probe === undefined ? 3 : parseFloat(this.cfg.probe);
  this.link = new Link({
    url: this.url,
    hello: function () { return { type: 'hello', token: self.cfg.token }; },
    onMessage: function (m) { self.onMessage(m); },
    onState: function () { self.renderLink(); },
    probeUrl: '/healthz',
    probeEveryMs: isNaN(probeS) ? 3000 : probeS * 1000,
  });
  window.passline = { hq: this, link: this.link };
  setInterval(function () { self.queueRender(); }, 5000); // ages ("for 3 min") move on
  this.link.start();
  this.render();
};

Hq.prototype.onMessage = function (msg) {
  if (msg.type === 'fleet') {
    var stores = {};
    msg.stores.forEach(function (s) { stores[s.store_id] = s; });
    this.stores = stores;
    this.synced = true;
    var self = this;
    msg.stores.forEach(function (s) {
      s.printers.forEach(function (p) {
        if (p.status && p.status.state === 'ready') self.clearHeld(s.store_id, p.printer_id);
      });
    });
  } else if (msg.type === 'store_link') {
    var s = this.stores[msg.store_id];
    if (!s) {
      s = { store_id: msg.store_id, name: msg.store_id, printers: [], queued: 0, held: 0 };
      this.stores[msg.store_id] = s;
    }
    s.link = {
      online: msg.online,
      since: msg.since,
      client_version: msg.client_version || null,
      // outages are never undone: a delta without one keeps the last known
      last_outage: msg.last_outage || (s.link && s.link.last_outage) || null,
    };
  } else if (msg.type === 'printer_status') {
    this.putPrinter(msg.store_id, msg.printer_id, msg.status);
    if (msg.status.state === 'ready') this.clearHeld(msg.store_id, msg.printer_id);
  } else if (msg.type === 'job_alert') {
    this.putAlert(msg);
  } else if (msg.type === 'error') {
    this.errorText = msg.message;
  } else {
    return;
  }
  this.queueRender();
};

Hq.prototype.putPrinter = function (storeId, printerId, status) {
  var s = this.stores[storeId];
  if (!s) {
    s = { store_id: storeId, name: storeId, link: { online: true, since: status.since }, printers: [], queued: 0, held: 0 };
    this.stores[storeId] = s;
  }
  var found = false;
  s.printers = s.printers.map(function (p) {
    if (p.printer_id !== printerId) return p;
    found = true;
    return { printer_id: p.printer_id, name: p.name, status: status };
  });
  if (!found) s.printers.push({ printer_id: printerId, name: printerId, status: status });
};

Hq.prototype.putAlert = function (a) {
  if (CLEARED_JOB_STATES[a.state]) delete this.alerts[a.job_id];
  else this.alerts[a.job_id] = { store_id: a.store_id, job_id: a.job_id, printer_id: a.printer_id, state: a.state, reason: a.reason, at: Date.now() };
  this.countAlerts();
};

// The broker announces a job when it gets stuck, not when it prints after all: a held job
// is taken as moving again once its printer reports ready. Terminal ones (failed,
// uncertain, expired) stay until someone dismisses them.
Hq.prototype.clearHeld = function (storeId, printerId) {
  var alerts = this.alerts;
  Object.keys(alerts).forEach(function (id) {
    var a = alerts[id];
    if (a.state === 'held' && a.store_id === storeId && a.printer_id === printerId) delete alerts[id];
  });
  this.countAlerts();
};

Hq.prototype.dismissAlert = function (jobId) {
  delete this.alerts[jobId];
  this.countAlerts();
  this.render();
};

Hq.prototype.countAlerts = function () {
  var by = {};
  var alerts = this.alerts;
  Object.keys(alerts).forEach(function (id) {
    by[alerts[id].store_id] = (by[alerts[id].store_id] || 0) + 1;
  });
  this.alertsByStore = by;
};

// --- DOM -------------------------------------------------------------------------------

Hq.prototype.build = function () {
  var self = this;
  document.body.classList.add('hq');
  document.title = 'HQ · passline';
  this.linkEl = h('span', { class: 'link-pill', id: 'link' });
  this.linkBar = h('div', { class: 'link-bar', id: 'link-bar', hidden: true });
  this.totalsEl = h('section', { class: 'totals', id: 'totals' });
  this.searchEl = h('input', { type: 'search', class: 'search', placeholder: 'Search store or printer', oninput: function () { self.search = self.searchEl.value.trim().toLowerCase(); self.page = 0; self.render(); } });
  this.problemsEl = h('input', { type: 'checkbox', id: 'problems-only', onchange: function () { self.problemsOnly = self.problemsEl.checked; self.page = 0; self.render(); } });
  this.problemsEl.checked = this.problemsOnly;
  this.pageEl = h('span', { class: 'pager' });
  this.listEl = h('div', { class: 'stores', id: 'stores' });
  this.alertsEl = h('aside', { class: 'alerts', id: 'alerts' });
  replaceChildren(this.root, [
    h('div', { class: 'topbar' }, [
      h('span', { class: 'title', text: 'Printer fleet' }),
      h('span', { class: 'spacer' }),
      h('a', { class: 'tb-btn to-reports', id: 'to-reports', href: 'reports.html', text: 'Speed of service ›' }),
      this.linkEl,
    ]),
    this.linkBar,
    this.totalsEl,
    h('div', { class: 'hq-body' }, [
      h('div', { class: 'hq-main' }, [
        h('div', { class: 'filters' }, [
          h('label', { class: 'problems', for: 'problems-only' }, [this.problemsEl, h('span', { text: 'Problems only' })]),
          this.searchEl,
          h('span', { class: 'spacer' }),
          h('button', { class: 'tb-btn', text: '◀', title: 'previous page', onclick: function () { self.page -= 1; self.render(); } }),
          this.pageEl,
          h('button', { class: 'tb-btn', text: '▶', title: 'next page', onclick: function () { self.page += 1; self.render(); } }),
        ]),
        this.listEl,
      ]),
      this.alertsEl,
    ]),
  ]);
};

Hq.prototype.queueRender = function () {
  var self = this;
  if (this.renderQueued) return;
  this.renderQueued = true;
  // at most ~4 renders a second, whatever the message rate
  setTimeout(function () {
    window.requestAnimationFrame(function () {
      self.renderQueued = false;
      self.render();
    });
  }, 250);
};

Hq.prototype.render = function () {
  var self = this;
  var alertsByStore = this.alertsByStore;
  var all = Object.keys(this.stores).map(function (id) { return self.stores[id]; });
  this.renderTotals(all);
  var rows = all.map(function (s) { return { s: s, sev: severity(s, alertsByStore) }; });
  if (this.problemsOnly) rows = rows.filter(function (r) { return r.sev > 0; });
  if (this.search) {
    var q = this.search;
    rows = rows.filter(function (r) {
      var s = r.s;
      if (s.store_id.toLowerCase().indexOf(q) >= 0 || String(s.name).toLowerCase().indexOf(q) >= 0) return true;
      return s.printers.some(function (p) { return String(p.name).toLowerCase().indexOf(q) >= 0 || p.printer_id.toLowerCase().indexOf(q) >= 0; });
    });
  }
  rows.sort(function (a, b) {
    return b.sev - a.sev || (a.s.name < b.s.name ? -1 : a.s.name > b.s.name ? 1 : a.s.store_id < b.s.store_id ? -1 : 1);
  });
  var pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
  this.page = Math.max(0, Math.min(this.page, pages - 1));
  this.pageEl.textContent = this.page + 1 + ' / ' + pages + ' · ' + rows.length + ' stores';
  var now = Date.now();
  var shown = rows.slice(this.page * PAGE_SIZE, (this.page + 1) * PAGE_SIZE);
  replaceChildren(
    this.listEl,
    shown.length
      ? shown.map(function (r) { return self.storeRow(r.s, r.sev, now); })
      : h('p', { class: 'empty', text: this.synced ? (this.problemsOnly ? 'No problems anywhere' : 'No stores') : 'Connecting…' })
  );
  this.renderAlerts(now);
  this.renderLink();
};

Hq.prototype.renderTotals = function (all) {
  var online = 0;
  var counts = { ready: 0, warning: 0, error: 0, offline: 0, unknown: 0 };
  all.forEach(function (s) {
    if (s.link && s.link.online) online += 1;
    s.printers.forEach(function (p) {
      var st = printerState(p);
      counts[st] = (counts[st] || 0) + 1;
    });
  });
  function tile(cls, n, label, id) {
    return h('div', { class: 'tile ' + cls + (n > 0 ? '' : ' zero'), id: id }, [h('span', { class: 'n', text: n.toLocaleString() }), h('span', { class: 'l', text: label })]);
  }
  var printers = PRINTER_STATES.filter(function (st) {
    return st !== 'unknown' || counts.unknown > 0;
  }).map(function (st) {
    return tile('p-' + st, counts[st], st, 'printers-' + st);
  });
  replaceChildren(this.totalsEl, [
    h('div', { class: 'group' }, [
      h('span', { class: 'group-l', text: 'Stores' }),
      tile('online', online, 'online', 'stores-online'),
      tile('offline', all.length - online, 'offline', 'stores-offline'),
    ]),
    h('div', { class: 'group' }, [h('span', { class: 'group-l', text: 'Printers' })].concat(printers)),
    h('div', { class: 'group', id: 'client-versions' }, [h('span', { class: 'group-l', text: 'Clients' })].concat(
      clientVersions(all).slice(0, 4).map(function (c) {
        return h('div', { class: 'tile version' }, [h('span', { class: 'n', text: c.n.toLocaleString() }), h('span', { class: 'l', text: 'v' + c.version })]);
      })
    )),
  ]);
};

// The store's last outage, once over: worth a line when it was long, or the store's LAN
// edge took orders meanwhile (docs/store-edge.md); a blip of a reconnect is not.
var OUTAGE_SHOWN_S = 30;

function outageText(o) {
  if (!o) return '';
  var from = Date.parse(o.started);
  var to = Date.parse(o.ended);
  var seconds = (to - from) / 1000;
  if (!(seconds >= OUTAGE_SHOWN_S) && !o.lan_orders) return '';
  var text = 'last outage ' + clock(from) + '–' + clock(to) + ' (' + age(seconds) + ')';
  if (o.lan_orders) text += ' · ' + o.lan_orders + (o.lan_orders === 1 ? ' order' : ' orders') + ' taken offline';
  return text;
}

// The store's gray-release ring and the releases its config runs (docs/rollout.md).
function rolloutText(s) {
  var parts = [];
  if (s.ring) parts.push('ring ' + s.ring);
  if (s.releases && s.releases.length) parts.push(s.releases.join(', '));
  return parts.join(' · ');
}

// Store client versions across the fleet, most stores first: how far an upgrade got.
function clientVersions(all) {
  var counts = {};
  all.forEach(function (s) {
    var v = s.link && s.link.client_version;
    if (v) counts[v] = (counts[v] || 0) + 1;
  });
  return Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); })
    .map(function (v) { return { version: v, n: counts[v] }; });
}

Hq.prototype.storeRow = function (s, sev, now) {
  var link = s.link || { online: false, since: null };
  var since = link.since ? Date.parse(link.since) : NaN;
  var known = !isNaN(since) && since > NEVER_BEFORE;
  var linkText = link.online
    ? 'online since ' + (known ? clock(since) : '?') + (link.client_version ? ' · v' + link.client_version : '')
    : known
      ? 'OFFLINE for ' + age((now - since) / 1000)
      : 'OFFLINE · never connected';
  var alerts = this.alertsByStore[s.store_id] || 0;
  var outage = outageText(link.last_outage);
  return h('div', { class: 'store sev-' + sev + (link.online ? '' : ' is-offline'), dataset: { store: s.store_id } }, [
    h('div', { class: 'store-head' }, [
      h('span', { class: 'dot ' + (link.online ? 'on' : 'off') }),
      h('span', { class: 'store-name', text: s.name }),
      h('span', { class: 'store-id', text: s.store_id }),
      h('span', { class: 'store-link', text: linkText }),
      outage ? h('span', { class: 'store-outage', text: outage }) : null,
      rolloutText(s) ? h('span', { class: 'store-ring', text: rolloutText(s) }) : null,
      h('span', { class: 'spacer' }),
      s.queued ? h('span', { class: 'q', text: s.queued + ' queued' }) : null,
      s.held ? h('span', { class: 'q held', text: s.held + ' held' }) : null,
      alerts ? h('span', { class: 'q held', text: alerts + ' stuck' }) : null,
    ]),
    h(
      'div',
      { class: 'printers' },
      s.printers.length
        ? s.printers.map(function (p) {
            var st = printerState(p);
            var chips = printerChips(p.status);
            var psince = p.status ? Date.parse(p.status.since) : null;
            return h('div', { class: 'printer ps-' + st, dataset: { printer: p.printer_id, state: st } }, [
              h('span', { class: 'p-name', text: p.name }),
              h('span', { class: 'p-state', text: st.toUpperCase() }),
              chips.map(function (c) {
                return h('span', { class: 'chip', dataset: { chip: c }, text: c });
              }),
              psince && st !== 'ready' ? h('span', { class: 'p-since', text: 'for ' + age((now - psince) / 1000) }) : null,
              // why, in words, when the store client knows (e.g. a transport this PC refuses)
              p.status && p.status.detail ? h('span', { class: 'p-detail', text: p.status.detail }) : null,
            ]);
          })
        : h('span', { class: 'muted', text: 'no printers' })
    ),
  ]);
};

Hq.prototype.renderAlerts = function (now) {
  var self = this;
  var alerts = this.alerts;
  var stores = this.stores;
  var list = Object.keys(alerts).map(function (id) { return alerts[id]; });
  list.sort(function (a, b) { return b.at - a.at; });
  replaceChildren(this.alertsEl, [
    h('h2', { text: 'Stuck jobs (' + list.length + ')' }),
    list.length
      ? h(
          'ul',
          null,
          list.slice(0, ALERTS_SHOWN).map(function (a) {
            var st = stores[a.store_id];
            return h('li', { class: 'alert js-' + a.state, dataset: { job: a.job_id } }, [
              h('div', { class: 'a-head' }, [
                h('span', { class: 'a-state', text: a.state.toUpperCase() }),
                h('span', { class: 'a-store', text: st ? st.name : a.store_id }),
                h('span', { class: 'a-when', text: age((now - a.at) / 1000) + ' ago' }),
                h('button', { class: 'a-x', title: 'dismiss', text: '✕', onclick: function () { self.dismissAlert(a.job_id); } }),
              ]),
              h('div', { class: 'a-body', text: a.printer_id + (a.reason ? ' — ' + a.reason : '') }),
              h('div', { class: 'a-job', text: a.job_id }),
            ]);
          })
        )
      : h('p', { class: 'muted', text: 'None' }),
  ]);
};

Hq.prototype.renderLink = function () {
  if (!this.link) return;
  var l = this.link;
  var t = linkText(l);
  document.body.dataset.link = l.state;
  document.body.classList.toggle('stale', l.state !== 'live');
  this.linkEl.className = 'link-pill ' + l.state;
  this.linkEl.textContent = t.pill;
  this.linkBar.hidden = l.state === 'live' || (l.state === 'connecting' && !this.synced && !l.error);
  this.linkBar.className = 'link-bar ' + l.state;
  this.linkBar.textContent = t.bar + (this.errorText ? ' · ' + this.errorText : '');
};

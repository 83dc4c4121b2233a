// Station screen and expo screen: /kds/?store=…&station=…&token=… and /kds/expo?….
// Connects to /v1/ws/kds, shows the station's tickets (or the expo roll-up), applies the
// chef's actions at once and reconciles them with the broker (kds_state.js).

import { h, replaceChildren, clock, duration } from './dom.js';
import { param, loadSaved, save, resolveWsBase, wsUrl, dropFromUrl, newRef } from './params.js';
import { Link } from './link.js';
import { StationState } from './kds_state.js';
import { ticketCard, expoCard, contCard, contMarker, scheduledRow, paginate, timerClass } from './kds_view.js';
import { KeyMap, parseKeyMap, formatKeyMap } from './keys.js';
import { armSound, chime, soundUnlocked } from './sound.js';
import { linkText } from './linkbar.js';
import { setupForm } from './setup.js';
import { orderNumber } from './labels.js';

var SAVED_KEY = 'passline.kds';
var PENDING_TIMEOUT_MS = 15000;
var FIRE_ARMED_MS = 5000; // "Fire now" asks for a second press within this time
var MIN_COLUMN_PX = 290;

export function startKds(root, isExpoPath) {
  var saved = loadSaved(SAVED_KEY);
  var cfg = {
    store: param('store') || saved.store,
    station: param('station') || saved.station || (isExpoPath ? 'expo' : null),
    token: param('token') || saved.token,
    keys: param('keys') || saved.keys || '',
    cols: parseInt(param('cols') || saved.cols || '0', 10) || 0,
    probe: param('probe'),
  };
  if (!cfg.store || !cfg.station || !cfg.token) {
    setupForm(root, {
      title: isExpoPath ? 'Expo screen' : 'Station screen',
      fields: [
        ['store', 'Store id', cfg.store],
        ['station', 'Station id', cfg.station],
        ['token', 'Token (kds scope)', cfg.token],
        ['keys', 'Key map (optional, e.g. bump:Enter+b,recall:r)', cfg.keys],
      ],
    });
    return;
  }
  // the websocket address is the broker's to say (params.js), so ?ws= is ignored
  var kept = { store: cfg.store, station: cfg.station, token: cfg.token, keys: cfg.keys, cols: cfg.cols || undefined };
  if (save(SAVED_KEY, kept)) dropFromUrl(['token', 'ws']);
  resolveWsBase().then(function (base) {
    new KdsScreen(root, cfg, wsUrl(base, '/v1/ws/kds')).start();
  });
}

function KdsScreen(root, cfg, url) {
  this.root = root;
  this.cfg = cfg;
  this.url = url;
  this.state = new StationState();
  this.keys = new KeyMap(parseKeyMap(cfg.keys));
  this.page = 0;
  this.selectedId = null;
  this.selectedIndex = 0;
  this.lineCursor = -1;
  this.visible = []; // items on the current page, in key order
  this.renderQueued = false;
  this.muted = loadSaved('passline.kds.mute').muted === true;
  this.showAllDay = true;
  this.skewMs = 0;
  this.freshSnapshot = false;
  this.toastTimer = null;
  this.wasLive = false;
  this.armed = null; // the scheduled order whose "Fire now" was pressed once
  this.armedTimer = null;
}

KdsScreen.prototype.start = function () {
  var self = this;
  this.build();
  var probeS = this.cfg.probe === null || this.cfg.probe === undefined ? 3 : parseFloat(this.cfg.probe);
  this.link = new Link({
    url: this.url,
    hello: function () { return self.hello(); },
    onMessage: function (m) { self.onMessage(m); },
    onState: function (link) {
      // a new connection: what was sent on the old one may never have arrived; send it
      // again after the broker's first answer (the broker dedupes by ref)
      if (link.state === 'live' && !self.wasLive) self.state.markUnsent();
      self.wasLive = link.state === 'live';
      self.renderLink();
    },
    onWake: function () { self.freshSnapshot = true; },
    probeUrl: '/healthz',
    probeEveryMs: isNaN(probeS) ? 3000 : probeS * 1000,
  });
  window.passline = { screen: this, state: this.state, link: this.link };
  armSound(function () { self.renderTop(); });
  document.addEventListener('keydown', function (ev) { self.onKey(ev); });
  window.addEventListener('resize', function () { self.queueRender(); });
  setInterval(function () { self.tick(); }, 1000);
  this.measureSkew();
  this.link.start();
  this.render();
};

KdsScreen.prototype.hello = function () {
  var s = this.state;
  var resume = null;
  if (!this.freshSnapshot && s.synced && s.epoch !== null) resume = { epoch: s.epoch, offset: s.offset };
  this.freshSnapshot = false;
  return { type: 'hello', token: this.cfg.token, store: this.cfg.store, station: this.cfg.station, resume: resume };
};

// Timers count from the broker's clock: take its offset from the HTTP Date header once.
// Asked of the page's path without its query, which may still hold the token.
KdsScreen.prototype.measureSkew = function () {
  var self = this;
  var t0 = Date.now();
  fetch(window.location.pathname, { method: 'HEAD', cache: 'no-store' }).then(function (r) {
    var d = Date.parse(r.headers.get('Date') || '');
    if (!isNaN(d)) {
      var skew = d + 500 - (t0 + Date.now()) / 2; // Date has 1 s resolution
      self.skewMs = Math.abs(skew) > 2000 ? skew : 0;
    }
  }, function () {});
};

KdsScreen.prototype.now = function () {
  return Date.now() + this.skewMs;
};

// --- messages ----------------------------------------------------------------------

KdsScreen.prototype.onMessage = function (msg) {
  var s = this.state;
  var fresh = [];
  if (msg.type === 'snapshot') {
    fresh = s.applySnapshot(msg);
  } else if (msg.type === 'ticket' || msg.type === 'ticket_removed' || msg.type === 'all_day' || msg.type === 'order') {
    var r = s.applyDelta(msg);
    if (!r) return;
    fresh = r.fresh;
  } else if (msg.type === 'ack') {
    s.applyAck(msg);
  } else if (msg.type === 'error') {
    var failed = s.applyError(msg);
    if (failed) this.toast(failed, msg);
    else if (!msg.ref) this.toastText('Broker: ' + msg.message);
  } else {
    return;
  }
  if (fresh.length && !this.muted) chime();
  this.flush();
  this.queueRender();
};

KdsScreen.prototype.flush = function () {
  var self = this;
  if (this.link.state !== 'live') return;
  this.state.sendable().forEach(function (a) {
    var msg = { type: a.type, ref: a.ref, version: a.version };
    if (a.order_id) msg.order_id = a.order_id;
    else msg.ticket_id = a.ticket_id;
    if (a.line_id) msg.line_id = a.line_id;
    if (self.link.send(msg)) {
      a.sent = true;
      a.sentAt = Date.now();
    }
  });
};

// --- actions -----------------------------------------------------------------------

KdsScreen.prototype.act = function (type, item, line) {
  if (type === 'dismiss') {
    this.state.dismissed[item.ticket_id] = true;
  } else if (type === 'serve' || type === 'fire') {
    this.state.act({ type: type, ref: newRef(), order_id: item.order_id });
  } else {
    var a = { type: type, ref: newRef(), ticket_id: item.ticket_id };
    if (line) {
      if (line.state === 'ready' || line.state === 'voided') return;
      a.line_id = line.line_id;
    }
    this.state.act(a);
    this.state.markSeen(item);
  }
  this.flush();
  this.render();
};

// "Fire now" on a scheduled order: the first press arms it, a second within
// FIRE_ARMED_MS fires it (an order fired by mistake would be cooked early).
KdsScreen.prototype.armFire = function (o) {
  var self = this;
  clearTimeout(this.armedTimer);
  if (this.armed === o.order_id) {
    this.armed = null;
    this.toastText(orderNumber(o.order, o.order_id) + ' fired: on its way to the stations');
    this.act('fire', o);
    return;
  }
  this.armed = o.order_id;
  this.toastText('Fire ' + orderNumber(o.order, o.order_id) + ' now? Press again to send it to the kitchen');
  this.armedTimer = setTimeout(function () {
    self.armed = null;
    self.render();
  }, FIRE_ARMED_MS);
  this.render();
};

KdsScreen.prototype.selected = function () {
  if (!this.visible.length) return null;
  var i = Math.min(this.selectedIndex, this.visible.length - 1);
  return this.visible[i];
};

KdsScreen.prototype.select = function (item) {
  var id = item.ticket_id || item.order_id;
  var i = this.visible.map(function (v) { return v.ticket_id || v.order_id; }).indexOf(id);
  if (i >= 0) this.selectedIndex = i;
  if (this.selectedId !== id) this.lineCursor = -1;
  this.selectedId = id;
  if (item.ticket_id && this.state.tickets[item.ticket_id]) this.state.markSeen(item);
  this.render();
};

KdsScreen.prototype.bumpSelected = function () {
  var item = this.selected();
  if (!item) return;
  if (this.state.isExpo()) {
    if (item.state === 'ready') this.act('serve', item);
    else this.toastText(orderNumber(item.order, item.order_id) + ' is not ready yet');
  }
  else if (item.state === 'voided') this.act('dismiss', item);
  else this.act('bump', item);
};

KdsScreen.prototype.recallLast = function (item) {
  var t = item || this.state.recentBumps()[0];
  if (!t) {
    this.toastText('Nothing to recall');
    return;
  }
  this.act('recall', t);
  this.closeDrawer();
};

KdsScreen.prototype.onKey = function (ev) {
  if (ev.target && (ev.target.tagName === 'INPUT' || ev.target.tagName === 'TEXTAREA')) return;
  var action = this.keys.action(ev);
  if (!action) return;
  ev.preventDefault();
  var sel = this.selected();
  var expo = this.state.isExpo();
  if (action.indexOf('select') === 0) {
    var n = parseInt(action.slice(6), 10) - 1;
    if (this.drawerOpen) {
      var recent = this.state.recentBumps();
      if (recent[n]) this.recallLast(recent[n]);
    } else if (this.visible[n]) {
      this.select(this.visible[n]);
    }
  } else if (action === 'bump') {
    if (this.drawerOpen) this.recallLast();
    else this.bumpSelected();
  } else if (action === 'recall') {
    if (!expo) this.recallLast();
  } else if (action === 'fire' && expo) {
    var next = this.state.scheduledOrders().filter(function (o) { return !o.pending; })[0];
    if (next) this.armFire(next);
    else this.toastText('No scheduled order to fire');
  } else if (action === 'prev' || action === 'next') {
    this.page += action === 'next' ? 1 : -1;
    this.selectedIndex = 0;
    this.render();
  } else if (action === 'start' && sel && !expo && sel.state === 'new') {
    this.act('start', sel);
  } else if (action === 'prioritize' && sel && !expo) {
    this.act('prioritize', sel);
  } else if ((action === 'lineUp' || action === 'lineDown') && sel && !expo) {
    var max = sel.lines.length - 1;
    this.lineCursor = Math.max(0, Math.min(max, this.lineCursor + (action === 'lineDown' ? 1 : -1)));
    this.render();
  } else if (action === 'bumpLine' && sel && !expo && this.lineCursor >= 0) {
    this.act('bump_line', sel, sel.lines[this.lineCursor]);
  } else if (action === 'allDay') {
    this.showAllDay = !this.showAllDay;
    this.render();
  } else if (action === 'mute') {
    this.toggleMute();
  } else if (action === 'help') {
    this.toggleHelp();
  } else if (action === 'close') {
    this.closeDrawer();
    this.helpEl.hidden = true;
  }
};

KdsScreen.prototype.toggleMute = function () {
  this.muted = !this.muted;
  save('passline.kds.mute', { muted: this.muted });
  this.renderTop();
};

// --- DOM ---------------------------------------------------------------------------

KdsScreen.prototype.build = function () {
  var self = this;
  document.body.classList.add('kds');
  this.titleEl = h('span', { class: 'title', text: this.cfg.station });
  this.countEl = h('span', { class: 'count' });
  this.pageEl = h('span', { class: 'pager' });
  this.pendingEl = h('span', { class: 'pending-count' });
  this.soundBtn = h('button', { class: 'tb-btn sound', onclick: function () { self.toggleMute(); } });
  this.recallBtn = h('button', { class: 'tb-btn recall', text: 'Recall', onclick: function () { self.openDrawer(); } });
  this.allDayBtn = h('button', { class: 'tb-btn', text: 'All day', onclick: function () { self.showAllDay = !self.showAllDay; self.render(); } });
  this.linkEl = h('span', { class: 'link-pill', id: 'link' });
  this.linkBar = h('div', { class: 'link-bar', id: 'link-bar', hidden: true });
  this.cardsEl = h('main', { class: 'cards', id: 'cards' });
  this.measureEl = h('div', { class: 'measure', 'aria-hidden': 'true' });
  this.allDayEl = h('aside', { class: 'all-day', id: 'all-day' });
  this.scheduledEl = h('aside', { class: 'scheduled', id: 'scheduled', hidden: true });
  this.drawerEl = h('div', { class: 'drawer', id: 'recall', hidden: true });
  this.helpEl = h('div', { class: 'help', id: 'help', hidden: true });
  this.toastEl = h('div', { class: 'toast', id: 'toast', hidden: true });
  replaceChildren(this.root, [
    h('div', { class: 'topbar' }, [
      this.titleEl,
      this.countEl,
      this.pendingEl,
      h('span', { class: 'spacer' }),
      h('button', { class: 'tb-btn', text: '◀', title: 'previous page', onclick: function () { self.page -= 1; self.render(); } }),
      this.pageEl,
      h('button', { class: 'tb-btn', text: '▶', title: 'next page', onclick: function () { self.page += 1; self.render(); } }),
      this.recallBtn,
      this.allDayBtn,
      this.soundBtn,
      this.linkEl,
    ]),
    this.linkBar,
    h('div', { class: 'body' }, [this.cardsEl, this.allDayEl, this.scheduledEl]),
    this.measureEl,
    this.drawerEl,
    this.helpEl,
    this.toastEl,
  ]);
};

KdsScreen.prototype.queueRender = function () {
  var self = this;
  if (this.renderQueued) return;
  this.renderQueued = true;
  window.requestAnimationFrame(function () {
    self.renderQueued = false;
    self.render();
  });
};

KdsScreen.prototype.render = function () {
  var s = this.state;
  var expo = s.isExpo();
  document.body.classList.toggle('expo', expo);
  this.titleEl.textContent = s.station ? s.station.name : this.cfg.station;
  document.title = (s.station ? s.station.name : this.cfg.station) + ' · passline';
  this.recallBtn.hidden = expo;
  this.allDayBtn.hidden = expo;
  var items = expo ? s.expoOrders() : s.activeTickets();
  this.countEl.textContent = items.length + (expo ? ' orders' : ' tickets');
  this.renderScheduled(expo); // first: the panel takes its width from the cards
  this.renderCards(items, expo);
  this.renderAllDay(expo);
  this.renderTop();
  this.renderLink();
  if (this.drawerOpen) this.renderDrawer();
  this.tick();
};

KdsScreen.prototype.renderCards = function (items, expo) {
  var self = this;
  var s = this.state;
  var width = this.cardsEl.clientWidth || window.innerWidth;
  var height = this.cardsEl.clientHeight || window.innerHeight - 60;
  var columns = this.cfg.cols || Math.max(1, Math.floor(width / MIN_COLUMN_PX));
  var colWidth = Math.floor((width - 10 * (columns + 1)) / columns);
  var colHeight = height - 20;
  var selId = this.selectedId;
  function build(item, key, selected) {
    var ctx = {
      key: key,
      selected: selected,
      lineCursor: self.lineCursor,
      showChange: !expo && s.unseenChange(item),
      zone: s.timezone,
      onSelect: function (x) { self.select(x); },
      onAction: function (type, x, line) { self.act(type, x, line); },
      stationName: function (id) { return id; },
    };
    return expo ? expoCard(item, ctx) : ticketCard(item, ctx);
  }
  this.measureEl.dataset.width = colWidth + 'px';
  var probes = items.map(function (it) { return build(it, '', false); });
  var contProbe = contCard('#0', '', '', 'card', null);
  contProbe.appendChild(contMarker(true));
  var pages = paginate(probes, this.measureEl, columns, colHeight, contProbe);
  this.pageCount = Math.max(1, pages.length);
  this.page = Math.max(0, Math.min(this.page, this.pageCount - 1));
  // the current page's cards in submit order: that order gives the number keys
  var page = pages[this.page] || [];
  var order = [];
  page.forEach(function (col) {
    col.forEach(function (piece) { if (order.indexOf(piece.i) < 0) order.push(piece.i); });
  });
  order.sort(function (a, b) { return a - b; });
  var flat = order.map(function (i) { return items[i]; });
  this.visible = flat;
  var ids = flat.map(function (v) { return v.ticket_id || v.order_id; });
  if (selId && ids.indexOf(selId) >= 0) this.selectedIndex = ids.indexOf(selId);
  this.selectedIndex = Math.max(0, Math.min(this.selectedIndex, flat.length - 1));
  var cards = {}; // index -> {card, rows, foot}: built once, its rows dealt to its pieces
  function cardFor(i) {
    if (!cards[i]) {
      var n = order.indexOf(i);
      var card = build(items[i], n < 9 ? String(n + 1) : '', n === self.selectedIndex);
      var ol = card.querySelector('ol.lines');
      var foot = [];
      for (var el = ol.nextSibling; el; el = el.nextSibling) foot.push(el);
      cards[i] = { card: card, key: n < 9 ? String(n + 1) : '', rows: Array.prototype.slice.call(ol.children), foot: foot };
    }
    return cards[i];
  }
  function onPage(i, from) {
    return page.some(function (col) {
      return col.some(function (p) { return p.i === i && p.from === from; });
    });
  }
  function pieceEl(piece) {
    var c = cardFor(piece.i);
    var item = items[piece.i];
    var el = c.card;
    if (piece.from > 0) {
      var cls = c.card.className.replace(/(^|\s)(ticket|expo-order)(?=\s|$)/g, ' ').trim();
      el = contCard(orderNumber(item.order, item.order_id), c.key, item.created_at, cls, function () { self.select(item); });
      el.dataset.cont = item.order_id; // pairs with the card's data-order
    }
    if (piece.from > 0 || !piece.last) {
      var ol = el.querySelector('ol.lines');
      c.rows.forEach(function (row, r) {
        if (r >= piece.from && r < piece.to) ol.appendChild(row);
        else if (row.parentNode === ol) ol.removeChild(row);
      });
      c.foot.forEach(function (f) { if (f.parentNode === el) el.removeChild(f); });
      if (piece.last) c.foot.forEach(function (f) { el.appendChild(f); });
      else el.appendChild(contMarker(!onPage(piece.i, piece.to)));
    }
    if (piece.clip) {
      el.classList.add('overflow');
      el.style.maxHeight = colHeight + 'px';
      if (!el.querySelector('.more')) el.appendChild(h('div', { class: 'more', text: '▼ more' }));
    }
    return el;
  }
  var colEls = page
    .filter(function (col) { return col.length > 0; })
    .map(function (col) {
      return h('div', { class: 'column', style: 'width:' + colWidth + 'px' }, col.map(pieceEl));
    });
  if (!items.length) {
    colEls = [h('div', { class: 'empty', text: s.synced ? (expo ? 'No open orders' : 'No tickets — all clear') : 'Connecting…' })];
  }
  replaceChildren(this.cardsEl, colEls);
  this.pageEl.textContent = this.page + 1 + ' / ' + this.pageCount;
};

KdsScreen.prototype.renderAllDay = function (expo) {
  var counts = this.state.allDay || {};
  var names = Object.keys(counts).filter(function (n) { return counts[n] > 0; });
  names.sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); });
  this.allDayEl.hidden = expo || !this.showAllDay;
  replaceChildren(this.allDayEl, [
    h('h2', { text: 'All day' }),
    names.length
      ? h(
          'ul',
          null,
          names.map(function (n) {
            return h('li', { dataset: { item: n } }, [h('span', { class: 'ad-qty', text: String(counts[n]) }), h('span', { class: 'ad-name', text: n })]);
          })
        )
      : h('p', { class: 'muted', text: '—' }),
  ]);
};

// Expo: the orders the broker holds until their fire time, next first (docs/kds.md).
KdsScreen.prototype.renderScheduled = function (expo) {
  var self = this;
  var held = expo ? this.state.scheduledOrders() : [];
  this.scheduledEl.hidden = !held.length;
  if (!held.length) return;
  replaceChildren(this.scheduledEl, [
    h('h2', { text: 'Scheduled · ' + held.length }),
    h(
      'ol',
      { class: 'sched' },
      held.map(function (o) {
        return scheduledRow(o, {
          armed: self.armed === o.order_id,
          onFire: function (x) { self.armFire(x); },
        });
      })
    ),
    h('p', { class: 'muted sched-hint', text: self.keys.label('fire') + ': fire the next one now' }),
  ]);
};

KdsScreen.prototype.renderTop = function () {
  var unlocked = soundUnlocked();
  this.soundBtn.textContent = this.muted ? '♪ muted' : unlocked ? '♪ on' : '♪ tap for sound';
  this.soundBtn.classList.toggle('off', this.muted || !unlocked);
  var waiting = this.state.pending.length;
  this.pendingEl.textContent = waiting && this.link && this.link.state !== 'live' ? waiting + ' waiting to send' : '';
};

KdsScreen.prototype.renderLink = function () {
  if (!this.link) return;
  var l = this.link;
  var zone = this.state.timezone;
  var t = linkText(l, zone);
  var local = l.state === 'live' && l.local;
  document.body.dataset.link = l.state;
  document.body.dataset.local = local ? 'yes' : 'no';
  document.body.classList.toggle('stale', l.state !== 'live');
  this.linkEl.className = 'link-pill ' + l.state + (local ? ' local' : '');
  this.linkEl.textContent = t.pill;
  this.linkBar.hidden = (l.state === 'live' && !local) || (l.state === 'connecting' && !this.state.synced && !l.error);
  this.linkBar.className = 'link-bar ' + (local ? 'local' : l.state);
  this.linkBar.textContent = t.bar + (this.state.synced && l.state !== 'live' ? ' · showing tickets as of ' + clock(l.since, zone) : '');
  this.renderTop();
};

KdsScreen.prototype.tick = function () {
  var now = this.now();
  var station = this.state.station;
  var timers = this.cardsEl.querySelectorAll('.timer');
  for (var i = 0; i < timers.length; i++) {
    var el = timers[i];
    var elapsed = (now - Date.parse(el.dataset.created)) / 1000;
    el.textContent = duration(Math.max(0, elapsed));
    var card = el.closest('.card');
    var cls = timerClass(elapsed, station);
    if (card && card.dataset.timer !== cls) {
      card.classList.remove('timer-ok', 'timer-warn', 'timer-late');
      card.classList.add('timer-' + cls);
      card.dataset.timer = cls;
    }
  }
  var countdowns = this.scheduledEl.querySelectorAll('.countdown');
  for (var j = 0; j < countdowns.length; j++) {
    var left = (Date.parse(countdowns[j].dataset.fire) - now) / 1000;
    countdowns[j].textContent = left > 0 ? 'in ' + duration(left) : 'firing';
  }
  if (this.link && this.link.state === 'live' && this.state.expirePending(PENDING_TIMEOUT_MS)) this.queueRender();
};

// --- recall drawer, help, toasts -----------------------------------------------------

KdsScreen.prototype.openDrawer = function () {
  this.drawerOpen = true;
  this.drawerEl.hidden = false;
  this.renderDrawer();
};

KdsScreen.prototype.closeDrawer = function () {
  this.drawerOpen = false;
  this.drawerEl.hidden = true;
};

KdsScreen.prototype.renderDrawer = function () {
  var self = this;
  var recent = this.state.recentBumps();
  replaceChildren(this.drawerEl, [
    h('div', { class: 'drawer-head' }, [
      h('h2', { text: 'Recall a bumped ticket' }),
      h('button', { class: 'tb-btn', text: 'Close', onclick: function () { self.closeDrawer(); } }),
    ]),
    recent.length
      ? h(
          'ol',
          { class: 'recent' },
          recent.map(function (t, i) {
            var names = t.lines.filter(function (l) { return l.state !== 'voided'; }).map(function (l) { return l.qty + '× ' + l.name; });
            return h('li', { dataset: { ticket: t.ticket_id }, onclick: function () { self.recallLast(t); } }, [
              h('span', { class: 'slot', text: i < 9 ? String(i + 1) : '' }),
              h('span', { class: 'number', text: orderNumber(t.order, t.order_id) }),
              h('span', { class: 'summary', text: names.join(', ') }),
              h('span', { class: 'when', text: t.bumped_at ? clock(t.bumped_at, self.state.timezone) : '' }),
            ]);
          })
        )
      : h('p', { class: 'muted', text: 'No recent bumps' }),
  ]);
};

KdsScreen.prototype.toggleHelp = function () {
  var k = this.keys;
  var rows = [
    ['select1', '1–9', 'select a card'],
    ['bump', k.label('bump'), 'bump the selected card'],
    ['recall', k.label('recall'), 'recall the last bump'],
    ['prev', k.label('prev') + ' ' + k.label('next'), 'page'],
    ['start', k.label('start'), 'start cooking'],
    ['prioritize', k.label('prioritize'), 'rush'],
    ['lineDown', k.label('lineUp') + ' ' + k.label('lineDown') + ', ' + k.label('bumpLine'), 'pick a line, bump it'],
    ['mute', k.label('mute'), 'sound on/off'],
    ['allDay', k.label('allDay'), 'all-day counts'],
    ['fire', k.label('fire'), 'expo: fire the next scheduled order now (press twice)'],
  ];
  replaceChildren(this.helpEl, [
    h('h2', { text: 'Keys' }),
    h('table', null, rows.map(function (r) { return h('tr', null, [h('th', { text: r[1] }), h('td', { text: r[2] })]); })),
    h('p', { class: 'muted', text: 'keys=' + formatKeyMap(k.actions) }),
  ]);
  this.helpEl.hidden = !this.helpEl.hidden;
};

KdsScreen.prototype.toast = function (action, err) {
  var what = { start: 'Start', bump: 'Bump', bump_line: 'Line bump', recall: 'Recall', prioritize: 'Rush', serve: 'Serve', fire: 'Fire' }[action.type] || action.type;
  var text = err.code === 'version_conflict'
    ? what + ' not applied: the ticket changed on another screen; showing the latest'
    : what + ' refused: ' + err.message;
  this.toastText(text);
};

KdsScreen.prototype.toastText = function (text) {
  var self = this;
  this.toastEl.textContent = text;
  this.toastEl.hidden = false;
  clearTimeout(this.toastTimer);
  this.toastTimer = setTimeout(function () { self.toastEl.hidden = true; }, 5000);
};

// Customer pickup board: /board/?store=…&token=… (a `board` token, read-only).
// Connects to /v1/ws/board and shows two columns of order numbers, "Preparing" and
// "Ready", in type readable across a dining room; a bell when a number turns ready; a
// ready number leaves after the store's `ready_s`, a cancelled one at once.
// docs/kds.md#pickup-board.

import { h, replaceChildren } from './dom.js';
import { param, loadSaved, save, resolveWsBase, wsUrl, dropFromUrl } from './params.js';
import { Link } from './link.js';
import { BoardState } from './board_state.js';
import { armSound, unlockIfAllowed, soundUnlocked, bell } from './sound.js';
import { linkText } from './linkbar.js';
import { setupForm } from './setup.js';

var SAVED_KEY = 'passline.board';
var FRESH_MS = 20000; // a number that just turned ready stands out this long
var LABELS = {
  en: { preparing: 'Preparing', ready: 'Ready for pickup', sound: 'Tap for sound' },
  zh: { preparing: '制作中', ready: '请取餐', sound: '轻触开启提示音' },
};
// Column sizes by how many numbers they hold: fewer numbers, bigger type.
var SIZES = { ready: [4, 9, 16], preparing: [6, 15, 28] };

export function startBoard(root) {
  var saved = loadSaved(SAVED_KEY);
  var cfg = {
    store: param('store') || saved.store,
    token: param('token') || saved.token,
    lang: param('lang') || saved.lang || 'both',
    probe: param('probe'),
  };
  if (!cfg.store || !cfg.token) {
    setupForm(root, {
      title: 'Pickup board',
      fields: [
        ['store', 'Store id', cfg.store],
        ['token', 'Token (board scope)', cfg.token],
        ['lang', 'Language: en, zh or both (optional)', param('lang') || saved.lang],
      ],
    });
    return;
  }
  if (save(SAVED_KEY, { store: cfg.store, token: cfg.token, lang: cfg.lang })) dropFromUrl(['token', 'ws']);
  resolveWsBase().then(function (base) {
    new Board(root, cfg, wsUrl(base, '/v1/ws/board')).start();
  });
}

function Board(root, cfg, url) {
  this.root = root;
  this.cfg = cfg;
  this.url = url;
  this.state = new BoardState();
  this.fresh = false; // the next hello asks for no resume (the page slept)
  this.chimes = 0; // how many times the bell rang (tests read it)
  this.freshShown = 0; // fresh (highlighted) numbers on screen at the last render
  this.el = {};
}

Board.prototype.start = function () {
  var self = this;
  this.build();
  var probeS = this.cfg.probe === null || this.cfg.probe === undefined ? 3 : parseFloat(this.cfg.probe);
  this.link = new Link({
    url: this.url,
    hello: function () { return self.hello(); },
    onMessage: function (m) { self.onMessage(m); },
    onState: function () { self.renderLink(); },
    onWake: function () { self.fresh = true; },
    probeUrl: '/healthz',
    probeEveryMs: isNaN(probeS) ? 3000 : probeS * 1000,
  });
  window.passline = { board: this, state: this.state, link: this.link };
  armSound(function () { self.renderLink(); });
  unlockIfAllowed();
  setInterval(function () { self.tick(); }, 1000);
  this.link.start();
  this.render();
};

Board.prototype.hello = function () {
  var resume = this.fresh ? null : this.state.resume();
  this.fresh = false;
  return { type: 'hello', token: this.cfg.token, store: this.cfg.store, resume: resume };
};

Board.prototype.onMessage = function (msg) {
  var turned;
  if (msg.type === 'snapshot') turned = this.state.applySnapshot(msg, Date.now());
  else if (msg.type === 'board_order' || msg.type === 'board_removed') turned = this.state.applyDelta(msg, Date.now());
  else return;
  if (turned.length) this.ring();
  this.render();
};

Board.prototype.ring = function () {
  this.chimes += 1;
  bell();
};

// Once a second: ready numbers past their time leave, fresh ones stop standing out.
Board.prototype.tick = function () {
  var now = Date.now();
  var dropped = this.state.expire(now);
  if (dropped || this.freshCount(now) !== this.freshShown) this.render();
};

Board.prototype.freshCount = function (now) {
  var orders = this.state.orders;
  return Object.keys(orders).filter(function (id) {
    return orders[id].state === 'ready' && now - orders[id].seenAt < FRESH_MS;
  }).length;
};

// --- view ----------------------------------------------------------------------------

Board.prototype.build = function () {
  document.body.classList.add('board-page');
  document.documentElement.lang = this.cfg.lang === 'zh' ? 'zh-Hans' : 'en';
  this.el.title = h('div', { class: 'board-title' });
  this.el.sound = h('div', { class: 'board-sound' });
  this.el.pill = h('div', { class: 'link-pill' });
  this.el.preparing = h('div', { class: 'numbers', id: 'preparing' });
  this.el.ready = h('div', { class: 'numbers', id: 'ready' });
  this.el.bar = h('div', { class: 'board-link', hidden: true });
  replaceChildren(this.root, [
    h('header', { class: 'board-head' }, [this.el.title, h('div', { class: 'spacer' }), this.el.sound, this.el.pill]),
    h('main', { class: 'board-cols' }, [
      h('section', { class: 'board-col col-preparing' }, [this.heading('preparing'), this.el.preparing]),
      h('section', { class: 'board-col col-ready' }, [this.heading('ready'), this.el.ready]),
    ]),
    this.el.bar,
  ]);
};

Board.prototype.heading = function (which) {
  var lang = this.cfg.lang;
  var parts = [];
  if (lang !== 'zh') parts.push(h('span', { class: 'l-en', lang: 'en', text: LABELS.en[which] }));
  if (lang !== 'en') parts.push(h('span', { class: 'l-zh', lang: 'zh-Hans', text: LABELS.zh[which] }));
  return h('h2', { class: 'board-heading' }, parts);
};

Board.prototype.render = function () {
  var lists = this.state.lists();
  this.freshShown = this.freshCount(Date.now());
  this.el.title.textContent = this.state.title;
  this.fill(this.el.preparing, lists.preparing, 'preparing');
  this.fill(this.el.ready, lists.ready, 'ready');
  this.renderLink();
};

Board.prototype.fill = function (el, orders, which) {
  var now = Date.now();
  var limits = SIZES[which];
  var size = 1;
  while (size <= limits.length && orders.length > limits[size - 1]) size += 1;
  el.className = 'numbers size-' + size;
  replaceChildren(el, orders.map(function (o) {
    var fresh = which === 'ready' && now - o.seenAt < FRESH_MS;
    return h('div', { class: 'num' + (fresh ? ' fresh' : ''), dataset: { order: o.order_id } }, [
      h('span', { class: 'n', text: o.number }),
      o.name ? h('span', { class: 'who', text: o.name }) : null,
    ]);
  }));
};

Board.prototype.renderLink = function () {
  var link = this.link;
  if (!link) return;
  var t = linkText(link, null);
  this.el.pill.className = 'link-pill ' + link.state;
  this.el.pill.textContent = t.pill;
  this.el.bar.hidden = !t.bar;
  this.el.bar.textContent = t.bar;
  document.body.classList.toggle('stale', link.state !== 'live');
  document.body.dataset.link = link.state;
  var lang = this.cfg.lang === 'zh' ? 'zh' : 'en';
  this.el.sound.textContent = soundUnlocked() ? '' : LABELS[lang].sound;
};

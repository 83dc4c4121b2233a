// Cards for the station and expo screens, and the column layout that pages them.
// All order text goes through textContent (dom.js h()).

import { h, clock } from './dom.js';
import { channelLabel, serviceLabel, orderNumber, whoFor, TICKET_STATES } from './labels.js';

// ok / warn / late from the station's thresholds (StationConfig.warn_after_s/late_after_s).
export function timerClass(elapsedS, station) {
  var warn = station && station.warn_after_s ? station.warn_after_s : 300;
  var late = station && station.late_after_s ? station.late_after_s : 600;
  if (elapsedS >= late) return 'late';
  if (elapsedS >= warn) return 'warn';
  return 'ok';
}

function cardHead(number, key, order, priority, createdAt, extraBadges, zone) {
  var badges = [
    h('span', { class: 'badge channel ch-' + String(order.channel).replace(/[^a-z0-9-]/g, ''), text: channelLabel(order.channel) }),
    h('span', { class: 'badge service sv-' + order.service, text: serviceLabel(order.service) }),
  ];
  if (priority === 'rush') badges.unshift(h('span', { class: 'badge rush', text: 'RUSH' }));
  var who = whoFor(order);
  return h('header', { class: 'card-head' }, [
    h('div', { class: 'head-row' }, [
      key ? h('span', { class: 'slot', text: key }) : null,
      h('span', { class: 'number', text: number }),
      h('span', { class: 'timer', 'data-created': createdAt, text: '0:00' }),
    ]),
    h('div', { class: 'head-row small' }, badges.concat(extraBadges || [])),
    who || order.due_at
      ? h('div', { class: 'head-row who' }, [
          who ? h('span', { class: 'customer', text: who }) : null,
          order.due_at ? h('span', { class: 'due', text: 'due ' + clock(order.due_at, zone) }) : null,
        ])
      : null,
  ]);
}

function lineEl(line, showChange, cursor, onTap) {
  var cls = 'line st-' + line.state;
  if (line.change && showChange) cls += ' changed chg-' + line.change;
  if (cursor) cls += ' cursor';
  var tag = null;
  if (line.change && showChange) {
    tag = h('span', { class: 'chg-tag', text: line.change === 'added' ? '+ ADDED' : line.change === 'changed' ? 'CHANGED' : 'VOID' });
  }
  var mods = (line.modifiers || []).map(function (m) {
    return h('div', { class: 'mod', text: m });
  });
  var allergens = (line.allergens || []).length
    ? h(
        'div',
        { class: 'allergens' },
        line.allergens.map(function (a) {
          return h('span', { class: 'allergen', text: '⚠ ' + a });
        })
      )
    : null;
  return h('li', { class: cls, dataset: { line: line.line_id }, onclick: onTap }, [
    h('div', { class: 'line-main' }, [
      h('span', { class: 'qty', text: line.qty + '×' }),
      h('span', { class: 'name', text: line.name }),
      line.state === 'ready' ? h('span', { class: 'tick', text: '✓' }) : null,
      tag,
    ]),
    mods.length ? h('div', { class: 'mods' }, mods) : null,
    line.note ? h('div', { class: 'line-note', text: line.note }) : null,
    allergens,
  ]);
}

// ctx: {key, selected, lineCursor, showChange, zone, onSelect, onAction(type, ticket, line?)}
export function ticketCard(t, ctx) {
  var voided = t.state === 'voided';
  var cls = 'card ticket st-' + t.state;
  if (ctx.selected) cls += ' selected';
  if (t.priority === 'rush') cls += ' is-rush';
  if (ctx.showChange) cls += ' has-change';
  if (t.pending) cls += ' pending';
  var extra = [];
  if (ctx.showChange) extra.push(h('span', { class: 'badge amended', text: 'AMENDED' }));
  if (t.state === 'in_progress') extra.push(h('span', { class: 'badge cooking', text: TICKET_STATES.in_progress }));
  var body = [];
  var lastCourse = null;
  var multiCourse = t.lines.some(function (l) { return l.course !== t.lines[0].course; });
  t.lines.forEach(function (line, i) {
    if (multiCourse && line.course !== lastCourse) {
      body.push(h('li', { class: 'course', text: 'Course ' + line.course }));
      lastCourse = line.course;
    }
    body.push(
      lineEl(line, ctx.showChange, ctx.selected && ctx.lineCursor === i, function (ev) {
        ev.stopPropagation();
        ctx.onAction('bump_line', t, line);
      })
    );
  });
  var buttons = voided
    ? [h('button', { class: 'btn bump', onclick: stop(function () { ctx.onAction('dismiss', t); }), text: 'Clear' })]
    : [
        t.state === 'new' ? h('button', { class: 'btn start', onclick: stop(function () { ctx.onAction('start', t); }), text: 'Start' }) : null,
        t.priority !== 'rush' ? h('button', { class: 'btn rush-btn', onclick: stop(function () { ctx.onAction('prioritize', t); }), text: 'Rush' }) : null,
        h('button', { class: 'btn bump', onclick: stop(function () { ctx.onAction('bump', t); }), text: 'Bump ✓' }),
      ];
  return h(
    'article',
    { class: cls, dataset: { ticket: t.ticket_id, order: t.order_id }, onclick: function () { ctx.onSelect(t); } },
    [
      cardHead(orderNumber(t.order, t.order_id), ctx.key, t.order, t.priority, t.created_at, extra, ctx.zone),
      voided ? h('div', { class: 'void-banner', text: 'CANCELLED — stop' }) : null,
      t.order.note ? h('div', { class: 'order-note', text: t.order.note }) : null,
      h('ol', { class: 'lines' }, body),
      h('div', { class: 'more', text: '▼ more' }),
      h('footer', { class: 'card-foot' }, buttons),
    ]
  );
}

function stop(fn) {
  return function (ev) {
    ev.stopPropagation();
    fn();
  };
}

// ctx: {key, selected, zone, onSelect, onAction(type, order)}
export function expoCard(o, ctx) {
  var cls = 'card expo-order ex-' + o.state;
  if (ctx.selected) cls += ' selected';
  if (o.priority === 'rush') cls += ' is-rush';
  if (o.pending) cls += ' pending';
  var ready = o.stations.filter(function (s) { return s.state === 'ready' || s.state === 'voided'; }).length;
  var rows = o.stations.map(function (s) {
    return h('li', { class: 'station-row st-' + s.state, dataset: { station: s.station_id } }, [
      h('span', { class: 'station-name', text: ctx.stationName(s.station_id) }),
      h('span', { class: 'station-state', text: (s.state === 'ready' ? '✓ ' : '') + (TICKET_STATES[s.state] || s.state) }),
    ]);
  });
  return h(
    'article',
    { class: cls, dataset: { order: o.order_id }, onclick: function () { ctx.onSelect(o); } },
    [
      cardHead(orderNumber(o.order, o.order_id), ctx.key, o.order, o.priority, o.created_at, [
        h('span', { class: 'badge progress', text: ready + '/' + o.stations.length }),
      ], ctx.zone),
      o.order.note ? h('div', { class: 'order-note', text: o.order.note }) : null,
      h('ol', { class: 'lines stations' }, rows),
      o.state === 'ready' ? h('div', { class: 'all-ready', text: 'READY — serve' }) : null,
      h('footer', { class: 'card-foot' }, [
        o.state === 'ready'
          ? h('button', { class: 'btn bump', onclick: stop(function () { ctx.onAction('serve', o); }), text: 'Served ✓' })
          : h('div', { class: 'waiting', text: 'waiting for ' + (o.stations.length - ready) + ' of ' + o.stations.length }),
      ]),
    ]
  );
}

// A piece of a card that continues from another column or page: the order number, "cont."
// and the timer, so the chef knows whose lines these are. kds.js moves the card's own
// rows (and, on its last piece, its buttons) in, so taps and bumps work on every piece.
export function contCard(number, key, createdAt, className, onSelect) {
  return h('article', { class: className + ' cont', onclick: onSelect }, [
    h('header', { class: 'card-head cont-head' }, [
      h('div', { class: 'head-row' }, [
        key ? h('span', { class: 'slot', text: key }) : null,
        h('span', { class: 'number', text: number }),
        h('span', { class: 'cont-tag', text: 'cont.' }),
        h('span', { class: 'timer', 'data-created': createdAt, text: '0:00' }),
      ]),
    ]),
    h('ol', { class: 'lines' }),
  ]);
}

// The foot of a piece whose card goes on in the next column (or on the next page).
export function contMarker(nextPage) {
  return h('div', { class: 'cont-next', text: nextPage ? 'continues on the next page ▶' : 'continues ▶' });
}

var GAP = 10;

// Lay cards out like text, so a few tickets spread over the whole screen, the numbers 1–9
// read in order, and the screen fills before a page is added (issue 17):
// - a card goes whole into the column with the most room (left first when equal): left
//   to right across the columns, then the next row under each;
// - a card that fits whole in no column is split between its rows: it starts in the
//   leftmost column with room for its head and a row, and continues in the columns to its
//   right, each piece under a "cont." head; if it cannot end on this page it waits for
//   the next one whole, while the cards after it still take the room that is left: a
//   page never hides a ticket that would fit;
// - on an empty page the first card always starts, and goes on over the next pages if it
//   is taller than a whole page; a single row taller than a column is cut ("▼ more").
// Heights are measured in `measure` (off screen, the columns' width): each card, each of
// its rows, and one `cont` piece (its head and its "continues" foot).
// Returns pages, each a list of columns, each a list of pieces {i, from, to, last, clip}:
// card `cards[i]`'s rows from..to-1 (of its `ol.lines`), `last` when its rows end there.
export function paginate(cards, measure, columns, columnHeight, contProbe) {
  measure.style.width = measure.dataset.width;
  cards.forEach(function (c) { measure.appendChild(c); });
  measure.appendChild(contProbe);
  var sizes = cards.map(measureCard);
  var cont = measureCont(contProbe);
  cards.forEach(function (c) { measure.removeChild(c); });
  measure.removeChild(contProbe);
  return layOut(sizes, cont, columns, columnHeight);
}

function measureCard(card) {
  var box = card.getBoundingClientRect();
  var ol = card.querySelector('ol.lines');
  var rows = ol ? Array.prototype.slice.call(ol.children) : [];
  return {
    height: box.height,
    tops: rows.map(function (r) { return r.getBoundingClientRect().top - box.top; }),
    bottoms: rows.map(function (r) { return r.getBoundingClientRect().bottom - box.top; }),
    keep: rows.map(function (r) { return r.classList.contains('course'); }), // keep with next
  };
}

function measureCont(probe) {
  var box = probe.getBoundingClientRect();
  var ol = probe.querySelector('ol.lines');
  var olBox = ol.getBoundingClientRect();
  var style = window.getComputedStyle(ol);
  var padTop = parseFloat(style.paddingTop) || 0;
  var padBottom = parseFloat(style.paddingBottom) || 0;
  return {
    head: olBox.top - box.top + padTop, // from a piece's top to its first row
    foot: box.bottom - olBox.bottom + padBottom, // from its last row to its bottom
  };
}

// The height of card `m`'s piece of rows from..to-1.
function pieceHeight(m, cont, from, to) {
  var n = m.tops.length;
  var head = from === 0 ? m.tops[0] : cont.head;
  var foot = to === n ? m.height - m.bottoms[n - 1] : cont.foot;
  return head + (m.bottoms[to - 1] - m.tops[from]) + foot;
}

function layOut(sizes, cont, columns, columnHeight) {
  var pages = [];
  var queue = sizes.map(function (m, i) { return { i: i, from: 0 }; });
  while (queue.length) {
    var page = newPage(columns);
    var carried = [];
    queue.forEach(function (p) {
      var left = place(page, sizes[p.i], p, cont, columnHeight);
      if (left) carried.push(left);
    });
    pages.push(page.cols);
    queue = carried;
  }
  return pages;
}

function newPage(columns) {
  var page = { cols: [], used: [], empty: true };
  for (var c = 0; c < columns; c++) {
    page.cols.push([]);
    page.used.push(0);
  }
  return page;
}

function room(page, c, columnHeight) {
  return page.used[c] ? columnHeight - page.used[c] - GAP : columnHeight;
}

function put(page, c, piece, height) {
  page.used[c] += (page.used[c] ? GAP : 0) + height;
  page.cols[c].push(piece);
  page.empty = false;
}

// Places card `m` from row p.from on `page`; returns what is left for the next page
// (null when nothing is).
function place(page, m, p, cont, columnHeight) {
  var i = p.i;
  var n = m.tops.length;
  var c;
  if (p.from === 0) {
    var best = 0;
    for (c = 1; c < page.used.length; c++) if (page.used[c] < page.used[best]) best = c;
    if (m.height <= room(page, best, columnHeight)) {
      put(page, best, { i: i, from: 0, to: n, last: true }, m.height);
      return null;
    }
    if (!n) {
      // no rows to split between (never for a ticket): cut it, on a page of its own
      if (!page.empty) return p;
      put(page, 0, { i: i, from: 0, to: 0, last: true, clip: true }, columnHeight);
      return null;
    }
  }
  // split between rows over the columns, left to right
  var pieces = [];
  var from = p.from;
  for (c = 0; c < page.used.length && from < n; c++) {
    var to = rowsThatFit(m, cont, from, room(page, c, columnHeight));
    if (to === from) continue; // no room for a row here: further right
    pieces.push({ c: c, piece: { i: i, from: from, to: to, last: to === n }, height: pieceHeight(m, cont, from, to) });
    from = to;
  }
  if (from < n && !page.empty) return p; // it cannot end on this page: next page, whole
  if (!pieces.length) {
    // an empty page and not even one row fits under a head: cut that row
    var cut = { i: i, from: p.from, to: p.from + 1, last: p.from + 1 === n, clip: true };
    put(page, 0, cut, columnHeight);
    return cut.last ? null : { i: i, from: p.from + 1 };
  }
  pieces.forEach(function (x) { put(page, x.c, x.piece, x.height); });
  return from < n ? { i: i, from: from } : null;
}

// The end of the longest run of rows from `from` that fits in `space` with its head and
// foot (`from` when none does). A course header stays with the row after it.
function rowsThatFit(m, cont, from, space) {
  var n = m.tops.length;
  var best = from;
  for (var to = from + 1; to <= n; to++) {
    if (pieceHeight(m, cont, from, to) <= space && (to === n || !m.keep[to - 1])) best = to;
  }
  return best;
}

// One row of the expo's "Scheduled" panel: the order, when it fires (and in how long,
// kept current by the screen's timer), when it is due, and "Fire now". The first press
// arms the button, the second (within a few seconds) fires: an order fired by mistake
// would be cooked early. ctx: {armed, onFire(order)}
export function scheduledRow(o, ctx) {
  var cls = 'sched-row' + (ctx.armed ? ' armed' : '') + (o.pending ? ' pending' : '');
  var label = o.pending ? 'Firing…' : ctx.armed ? 'Fire now? ✓' : 'Fire now';
  return h('li', { class: cls, dataset: { order: o.order_id } }, [
    h('div', { class: 'sched-main' }, [
      h('span', { class: 'number', text: orderNumber(o.order, o.order_id) }),
      h('span', { class: 'fires', text: 'fires ' + clock(o.fire_at) }),
    ]),
    h('div', { class: 'sched-sub' }, [
      h('span', { class: 'countdown', 'data-fire': o.fire_at, text: '' }),
      o.order.due_at ? h('span', { class: 'due', text: 'due ' + clock(o.order.due_at) }) : null,
    ]),
    h('button', {
      class: 'btn fire',
      disabled: o.pending ? true : null,
      onclick: stop(function () { ctx.onFire(o); }),
      text: label,
    }),
  ]);
}

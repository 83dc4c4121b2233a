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

function cardHead(number, key, order, priority, createdAt, extraBadges) {
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
          order.due_at ? h('span', { class: 'due', text: 'due ' + clock(order.due_at) }) : null,
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

// ctx: {key, selected, lineCursor, showChange, onSelect, onAction(type, ticket, line?)}
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
      cardHead(orderNumber(t.order, t.order_id), ctx.key, t.order, t.priority, t.created_at, extra),
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

// ctx: {key, selected, onSelect, onAction(type, order)}
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
      ]),
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

// Lay cards out like text: left to right across the columns, then the next row under
// each, so a few tickets spread over the whole screen and the numbers 1–9 read in
// order. A card that does not fit under its column tries the columns after it; when none
// has room a new page starts. A card taller than the screen gets a column to itself and
// is clipped with "▼ more". Heights are measured in `measure` (off screen, same width).
// Returns pages, each a list of columns, each a list of indexes into `cards`.
export function paginate(cards, measure, columns, columnHeight) {
  measure.style.width = measure.dataset.width;
  cards.forEach(function (c) { measure.appendChild(c); });
  var heights = cards.map(function (c) { return c.offsetHeight; });
  cards.forEach(function (c) { measure.removeChild(c); });
  var gap = 10;
  var pages = [];
  var cols = null;
  var used = null;
  var next = 0;
  function newPage() {
    cols = [];
    used = [];
    for (var c = 0; c < columns; c++) {
      cols.push([]);
      used.push(0);
    }
    pages.push(cols);
    next = 0;
  }
  newPage();
  cards.forEach(function (card, i) {
    var hgt = heights[i];
    var placed = -1;
    for (var k = next; k < columns && placed < 0; k++) {
      var room = used[k] === 0 ? columnHeight : columnHeight - used[k] - gap;
      if (hgt <= room || used[k] === 0) placed = k;
    }
    if (placed < 0) {
      newPage();
      placed = 0;
    }
    if (hgt > columnHeight) card.classList.add('overflow');
    used[placed] += (used[placed] ? gap : 0) + hgt;
    cols[placed].push(i);
    next = (placed + 1) % columns;
  });
  return pages.map(function (p) {
    return p.filter(function (col) { return col.length > 0; });
  });
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

// HQ speed-of-service report, /hq/reports.html?token=…&store=S&from=2026-11-15&to=2026-11-21
// Fetches GET /v1/reports/sos (JSON) with the HQ token and draws it (docs/reports.md):
// time to bump per station and hour (p50 bars, p90 whiskers), tickets per hour by channel,
// time to serve on expo against its target, and a table per station. Dates are on the
// store's calendar; hours are the store's wall clock, as the report gives them.

import { h, replaceChildren, duration, pad2 } from './dom.js';
import { param, loadSaved, save, dropFromUrl } from './params.js';
import { setupForm } from './setup.js';
import { barChart, svg } from './chart.js';

var TOKEN_KEY = 'passline.hq'; // the token, shared with the dashboard
var REPORT_KEY = 'passline.hq.report';
var DEFAULT_DAYS = 7;
var TIME_STEPS = [15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
var MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
var KNOWN_CHANNELS = ['pos', 'kiosk', 'web', 'miniprogram', 'meituan', 'eleme', 'ubereats', 'doordash'];

export function startReports(root) {
  var saved = loadSaved(TOKEN_KEY);
  var last = loadSaved(REPORT_KEY);
  var token = param('token') || saved.token;
  var store = param('store') || last.store || '';
  if (!token || !store) {
    setupForm(root, {
      title: 'Speed of service',
      fields: [
        ['token', 'Token (hq scope)', token],
        ['store', 'Store id', store],
      ],
    });
    return;
  }
  if (save(TOKEN_KEY, Object.assign({}, saved, { token: token }))) dropFromUrl(['token']);
  var to = param('to') || isoDay(new Date());
  var from = param('from') || isoDay(addDays(new Date(to + 'T12:00:00'), -(DEFAULT_DAYS - 1)));
  new Reports(root, token, { store: store, from: from, to: to }).start();
}

function isoDay(d) {
  return d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
}

function addDays(d, n) {
  var out = new Date(d.getTime());
  out.setDate(out.getDate() + n);
  return out;
}

function Reports(root, token, query) {
  this.root = root;
  this.token = token;
  this.query = query;
  this.report = null;
}

Reports.prototype.start = function () {
  document.body.classList.add('hq', 'reports');
  document.title = 'Speed of service · passline';
  this.build();
  this.load();
};

Reports.prototype.build = function () {
  var self = this;
  var q = this.query;
  this.storeEl = h('input', { id: 'r-store', class: 'r-input', value: q.store, spellcheck: 'false', autocomplete: 'off' });
  this.fromEl = h('input', { id: 'r-from', class: 'r-input', type: 'date', value: q.from });
  this.toEl = h('input', { id: 'r-to', class: 'r-input', type: 'date', value: q.to });
  var form = h('form', { class: 'r-form', id: 'r-form' }, [
    h('label', { for: 'r-store' }, [h('span', { text: 'Store' }), this.storeEl]),
    h('label', { for: 'r-from' }, [h('span', { text: 'From' }), this.fromEl]),
    h('label', { for: 'r-to' }, [h('span', { text: 'To' }), this.toEl]),
    h('button', { class: 'tb-btn', type: 'submit', text: 'Show' }),
    h('button', { class: 'tb-btn', type: 'button', id: 'r-csv', text: 'CSV', onclick: function () { self.csv(); } }),
  ]);
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    self.query = { store: self.storeEl.value.trim(), from: self.fromEl.value, to: self.toEl.value };
    self.remember();
    self.load();
  });
  this.statusEl = h('p', { class: 'r-status', id: 'r-status' });
  this.bodyEl = h('div', { class: 'r-body', id: 'r-body' });
  replaceChildren(this.root, [
    h('div', { class: 'topbar' }, [
      h('span', { class: 'title', text: 'Speed of service' }),
      h('span', { class: 'spacer' }),
      h('a', { class: 'tb-btn r-back', href: './', text: 'Printer fleet ›' }),
    ]),
    form,
    this.statusEl,
    this.bodyEl,
  ]);
};

Reports.prototype.remember = function () {
  save(REPORT_KEY, { store: this.query.store });
  var q = new URLSearchParams(window.location.search);
  ['store', 'from', 'to'].forEach(function (k) { q.set(k, this.query[k]); }, this);
  if (window.history && window.history.replaceState) {
    window.history.replaceState(window.history.state, '', window.location.pathname + '?' + q.toString());
  }
};

Reports.prototype.url = function (format) {
  var q = new URLSearchParams({ store: this.query.store, from: this.query.from, to: this.query.to });
  if (format) q.set('format', format);
  return '../v1/reports/sos?' + q.toString(); // relative: a proxy may put the broker under a prefix
};

Reports.prototype.fetch = function (format) {
  return fetch(this.url(format), {
    cache: 'no-store',
    headers: { Authorization: 'Bearer ' + this.token },
  }).then(function (r) {
    if (r.ok) return r;
    return r.json().then(
      function (p) { throw new Error(problemText(p, r.status)); },
      function () { throw new Error('HTTP ' + r.status); }
    );
  });
};

function problemText(p, status) {
  var where = p.errors && p.errors.length ? p.errors.map(function (e) { return e.path + ': ' + e.msg; }).join('; ') : '';
  return (p.title || 'HTTP ' + status) + (p.detail && !where ? ': ' + p.detail : '') + (where ? ' — ' + where : '');
}

Reports.prototype.load = function () {
  var self = this;
  document.body.dataset.report = 'loading';
  this.statusEl.textContent = 'Loading…';
  this.statusEl.className = 'r-status';
  this.fetch()
    .then(function (r) { return r.json(); })
    .then(function (report) {
      self.report = report;
      self.remember();
      self.render(report);
      document.body.dataset.report = 'ready';
    })
    .catch(function (e) {
      self.statusEl.textContent = e.message;
      self.statusEl.className = 'r-status error';
      replaceChildren(self.bodyEl, []);
      document.body.dataset.report = 'error';
    });
};

Reports.prototype.csv = function () {
  var self = this;
  this.fetch('csv')
    .then(function (r) { return r.blob(); })
    .then(function (blob) {
      var a = h('a', { href: URL.createObjectURL(blob), download: 'sos-' + self.query.store + '-' + self.query.from + '.csv' });
      document.body.appendChild(a);
      a.click();
      a.remove();
    })
    .catch(function (e) { self.statusEl.textContent = e.message; });
};

// --- rendering ---------------------------------------------------------------------------

function expoStations(report) {
  var expo = {};
  report.stations.forEach(function (s) { if (s.serve.count > 0) expo[s.station_id] = true; });
  return expo;
}

// Every hour of the report in order, labelled on the store's clock ("12:00"), the first of
// each day with its date below ("21 Nov").
function hourCategories(report) {
  var seen = {};
  report.hours.forEach(function (f) { seen[f.hour] = true; });
  var keys = Object.keys(seen).sort(function (a, b) { return Date.parse(a) - Date.parse(b); });
  var lastDay = '';
  return keys.map(function (k) {
    var day = k.slice(0, 10);
    var sub = day !== lastDay ? parseInt(day.slice(8, 10), 10) + ' ' + MONTHS[parseInt(day.slice(5, 7), 10) - 1] : '';
    lastDay = day;
    return { key: k, label: k.slice(11, 16), sub: sub, title: day + ' ' + k.slice(11, 16) };
  });
}

function lookup(list, keyFn) {
  var out = {};
  list.forEach(function (f) { out[keyFn(f)] = f; });
  return out;
}

Reports.prototype.render = function (report) {
  var expo = expoStations(report);
  var cats = hourCategories(report);
  var kitchen = report.stations.filter(function (s) { return !expo[s.station_id]; });
  var expos = report.stations.filter(function (s) { return expo[s.station_id]; });
  this.statusEl.textContent =
    report.store_id + ' · ' + rangeText(report) + ' · ' + report.timezone;
  if (!cats.length) {
    replaceChildren(this.bodyEl, h('p', { class: 'empty', id: 'r-empty', text: 'Nothing was bumped or served in this range.' }));
    return;
  }
  replaceChildren(this.bodyEl, [
    tiles(kitchen, expos),
    section('Time to bump by hour — p50 bar, p90 whisker', 'chart-bump', bumpChart(report, cats, kitchen), legend(kitchen.map(function (s, i) { return [s.station_id, 's-' + (i % 6)]; }))),
    section('Tickets bumped per hour, by channel', 'chart-volume', volumeChart(report, cats, expo), legend(channelsOf(report, expo).map(function (c) { return [c, channelClass(c)]; }))),
    expos.length
      ? section('Time to serve on expo by hour — p50 bar, p90 whisker', 'chart-serve', serveChart(report, cats, expos[0].station_id), null)
      : null,
    stationTable(report, expo),
  ]);
};

function rangeText(report) {
  function show(ts) { return ts.slice(0, 10) + ' ' + ts.slice(11, 16); }
  return show(report.since) + ' – ' + show(report.until);
}

function section(title, id, chart, legendEl) {
  return h('section', { class: 'r-chart', id: id }, [h('h2', { text: title }), legendEl, chart]);
}

function legend(items) {
  return h('div', { class: 'r-legend' }, items.map(function (it) {
    var sw = svg('svg', { class: 'swatch', viewBox: '0 0 14 14', width: 14, height: 14 });
    sw.appendChild(svg('rect', { class: 'fill ' + it[1], x: 0, y: 0, width: 14, height: 14 }));
    return h('span', { class: 'r-key' }, [sw, h('span', { text: it[0] })]);
  }));
}

function bumpChart(report, cats, kitchen) {
  var byKey = lookup(report.hours, function (f) { return f.station_id + '|' + f.hour; });
  return barChart({
    title: 'time to bump',
    categories: cats,
    series: kitchen.map(function (s, i) {
      var figs = cats.map(function (c) { return byKey[s.station_id + '|' + c.key]; });
      return {
        name: s.station_id,
        cls: 's-' + (i % 6),
        values: figs.map(function (f) { return f && f.bump.count ? f.bump.p50_s : null; }),
        whiskers: figs.map(function (f) { return f && f.bump.count ? f.bump.p90_s : null; }),
      };
    }),
    format: duration,
    steps: TIME_STEPS,
  });
}

function channelsOf(report, expo) {
  var seen = {};
  report.rows.forEach(function (r) { if (!expo[r.station_id] && r.bump.count) seen[r.channel] = true; });
  return Object.keys(seen).sort(function (a, b) {
    var ia = KNOWN_CHANNELS.indexOf(a);
    var ib = KNOWN_CHANNELS.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || (a < b ? -1 : 1);
  });
}

function channelClass(c) {
  return KNOWN_CHANNELS.indexOf(c) >= 0 ? 'c-' + c : 'c-x';
}

function volumeChart(report, cats, expo) {
  var sums = {};
  report.rows.forEach(function (r) {
    if (expo[r.station_id]) return;
    var k = r.channel + '|' + r.hour;
    sums[k] = (sums[k] || 0) + r.bump.count;
  });
  return barChart({
    title: 'tickets per hour',
    categories: cats,
    stacked: true,
    series: channelsOf(report, expo).map(function (c) {
      return { name: c, cls: channelClass(c), values: cats.map(function (cat) { return sums[c + '|' + cat.key] || null; }) };
    }),
  });
}

function serveChart(report, cats, expoId) {
  var byHour = lookup(report.hours.filter(function (f) { return f.station_id === expoId; }), function (f) { return f.hour; });
  var target = report.targets[expoId];
  return barChart({
    title: 'time to serve',
    categories: cats,
    series: [{
      name: expoId,
      cls: 's-expo',
      values: cats.map(function (c) { var f = byHour[c.key]; return f && f.serve.count ? f.serve.p50_s : null; }),
      whiskers: cats.map(function (c) { var f = byHour[c.key]; return f && f.serve.count ? f.serve.p90_s : null; }),
    }],
    format: duration,
    steps: TIME_STEPS,
    target: target ? { value: target, label: 'target ' + duration(target) } : null,
  });
}

function tiles(kitchen, expos) {
  var bumped = 0;
  var over = 0;
  kitchen.forEach(function (s) { bumped += s.bump.count; over += s.over_target; });
  var served = expos.length ? expos[0].serve : null;
  function tile(id, n, label, cls) {
    return h('div', { class: 'tile ' + (cls || ''), id: id }, [h('span', { class: 'n', text: n }), h('span', { class: 'l', text: label })]);
  }
  return h('section', { class: 'totals r-totals' }, [
    tile('t-bumped', bumped.toLocaleString(), 'tickets bumped'),
    tile('t-over', bumped ? Math.round((100 * over) / bumped) + ' %' : '–', 'over target', over ? 'p-warning' : ''),
    served ? tile('t-served', served.count.toLocaleString(), 'orders served') : null,
    served ? tile('t-serve-p50', served.count ? duration(served.p50_s) : '–', 'median serve') : null,
    served ? tile('t-serve-p90', served.count ? duration(served.p90_s) : '–', 'p90 serve') : null,
  ]);
}

function cells(t) {
  if (!t.count) return [h('td', { class: 'num', text: '0' }), h('td', { text: '' }), h('td', { text: '' }), h('td', { text: '' })];
  return [
    h('td', { class: 'num', text: t.count }),
    h('td', { class: 'num', text: duration(t.p50_s) }),
    h('td', { class: 'num', text: duration(t.p90_s) }),
    h('td', { class: 'num', text: duration(t.max_s) }),
  ];
}

function stationTable(report, expo) {
  var head = [
    h('tr', {}, [
      h('th', { rowspan: 2, text: 'Station' }),
      h('th', { rowspan: 2, class: 'num', text: 'Target' }),
      h('th', { colspan: 4, class: 'span', text: 'Time to start' }),
      h('th', { colspan: 4, class: 'span', text: 'Time to bump (expo: to serve)' }),
      h('th', { rowspan: 2, class: 'num', text: 'Over target' }),
    ]),
    h('tr', {}, ['n', 'p50', 'p90', 'max', 'n', 'p50', 'p90', 'max'].map(function (t) { return h('th', { class: 'num', text: t }); })),
  ];
  var rows = report.stations.map(function (s) {
    var t = expo[s.station_id] ? s.serve : s.bump;
    var target = report.targets[s.station_id];
    var share = t.count ? ' (' + Math.round((100 * s.over_target) / t.count) + ' %)' : '';
    return h('tr', { dataset: { station: s.station_id } }, [
      h('td', { text: s.station_id + (expo[s.station_id] ? ' (serve)' : '') }),
      h('td', { class: 'num', text: target ? duration(target) : '–' }),
    ]
      .concat(cells(s.start))
      .concat(cells(t))
      .concat([h('td', { class: 'num', text: s.over_target + share })]));
  });
  return h('section', { class: 'r-table' }, [h('h2', { text: 'By station' }), h('table', { id: 'r-stations' }, [h('thead', {}, head), h('tbody', {}, rows)])]);
}

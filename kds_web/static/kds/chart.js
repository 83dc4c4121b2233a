// Bar charts as plain SVG, for the HQ reports (docs/reports.md): grouped or stacked bars
// over categories (hours), an optional whisker per bar (p90 over a p50 bar) and an
// optional target line. No library: the report needs these two shapes only, and a
// screen must work offline from the broker alone (no CDN).
//
// barChart({categories: [{key, label}], series: [{name, cls, values: [n|null],
//   whiskers?: [n|null]}], stacked?, format?(n) → text, steps?: [gridline steps to
//   choose from], target?: {value, label}, title?}) → <svg>. Every bar is a <rect class="bar"> with data-series, data-category
// and data-value, and a <title> for the tooltip; its colour is the page's CSS for
// `.fill.<cls>`.

var NS = 'http://www.w3.org/2000/svg';
var WIDTH = 1200;
var HEIGHT = 300;
var PAD = { left: 64, right: 16, top: 14, bottom: 40 };
var GROUP_GAP = 0.2; // of a category's width, between categories
var MAX_LABELS = 24; // x labels shown at most (every n-th beyond)

export function svg(tag, attrs, text) {
  var el = document.createElementNS(NS, tag);
  Object.keys(attrs || {}).forEach(function (k) {
    if (attrs[k] !== null && attrs[k] !== undefined) el.setAttribute(k, String(attrs[k]));
  });
  if (text !== undefined) el.textContent = String(text);
  return el;
}

// A round step for about `ticks` gridlines up to `max`: 1, 2 or 5 times a power of ten.
export function niceStep(max, ticks) {
  var raw = max / Math.max(1, ticks);
  var p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-9))));
  var f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

// The smallest of `steps` that draws at most `ticks` gridlines up to `max` (durations:
// whole minutes read better than the 200 s a power-of-ten step would give).
export function pickStep(max, steps, ticks) {
  for (var i = 0; i < steps.length; i++) {
    if (max / steps[i] <= ticks) return steps[i];
  }
  return niceStep(max, ticks);
}

function top(spec) {
  var most = 0;
  var n = spec.categories.length;
  for (var i = 0; i < n; i++) {
    var stack = 0;
    spec.series.forEach(function (s) {
      var v = s.values[i] || 0;
      var w = s.whiskers ? s.whiskers[i] || 0 : 0;
      if (spec.stacked) stack += v;
      else most = Math.max(most, v, w);
    });
    most = Math.max(most, stack);
  }
  if (spec.target) most = Math.max(most, spec.target.value);
  return most;
}

export function barChart(spec) {
  var fmt = spec.format || String;
  var root = svg('svg', { class: 'chart', viewBox: '0 0 ' + WIDTH + ' ' + HEIGHT, role: 'img', 'aria-label': spec.title || '' });
  var w = WIDTH - PAD.left - PAD.right;
  var hgt = HEIGHT - PAD.top - PAD.bottom;
  var step = spec.steps ? pickStep(top(spec) || 1, spec.steps, 5) : niceStep(top(spec) || 1, 5);
  var ymax = Math.max(step, Math.ceil((top(spec) || 1) / step) * step);
  function y(v) { return PAD.top + hgt - (v / ymax) * hgt; }

  var grid = svg('g', { class: 'grid' });
  for (var t = 0; t <= ymax + 1e-9; t += step) {
    grid.appendChild(svg('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(t), y2: y(t) }));
    grid.appendChild(svg('text', { x: PAD.left - 8, y: y(t) + 5, class: 'y-label' }, fmt(t)));
  }
  root.appendChild(grid);

  var n = spec.categories.length;
  var band = w / Math.max(1, n);
  var inner = band * (1 - GROUP_GAP);
  var per = spec.stacked ? inner : inner / Math.max(1, spec.series.length);
  var every = Math.max(1, Math.ceil(n / MAX_LABELS));
  var bars = svg('g', { class: 'bars' });
  spec.categories.forEach(function (cat, i) {
    var x0 = PAD.left + i * band + (band - inner) / 2;
    var base = 0;
    spec.series.forEach(function (s, j) {
      var v = s.values[i];
      if (v === null || v === undefined || v <= 0) return;
      var x = spec.stacked ? x0 : x0 + j * per;
      var from = spec.stacked ? base : 0;
      var rect = svg('rect', {
        class: 'bar fill ' + (s.cls || ''),
        x: x.toFixed(1),
        y: y(from + v).toFixed(1),
        width: Math.max(1, per - 1).toFixed(1),
        height: Math.max(0.5, y(from) - y(from + v)).toFixed(1),
        'data-series': s.name,
        'data-category': cat.key,
        'data-value': v,
      });
      var tip = cat.title || cat.label;
      var whisker = s.whiskers ? s.whiskers[i] : null;
      rect.appendChild(svg('title', {}, s.name + ' · ' + tip + ': ' + fmt(v) + (whisker ? ' (p90 ' + fmt(whisker) + ')' : '')));
      bars.appendChild(rect);
      if (whisker && !spec.stacked) {
        var cx = x + per / 2 - 0.5;
        bars.appendChild(svg('line', { class: 'whisker ' + (s.cls || ''), x1: cx, x2: cx, y1: y(v), y2: y(whisker) }));
        bars.appendChild(svg('line', { class: 'whisker ' + (s.cls || ''), x1: cx - per / 4, x2: cx + per / 4, y1: y(whisker), y2: y(whisker) }));
      }
      base += v;
    });
    if (i % every === 0) {
      bars.appendChild(svg('text', { class: 'x-label', x: (x0 + inner / 2).toFixed(1), y: HEIGHT - PAD.bottom + 18 }, cat.label));
      if (cat.sub) bars.appendChild(svg('text', { class: 'x-sub', x: (x0 + inner / 2).toFixed(1), y: HEIGHT - PAD.bottom + 34 }, cat.sub));
    }
  });
  root.appendChild(bars);

  if (spec.target) {
    var ty = y(spec.target.value);
    root.appendChild(svg('line', { class: 'target', x1: PAD.left, x2: WIDTH - PAD.right, y1: ty, y2: ty }));
    root.appendChild(svg('text', { class: 'target-label', x: WIDTH - PAD.right - 4, y: ty - 6 }, spec.target.label));
  }
  root.appendChild(svg('line', { class: 'axis', x1: PAD.left, x2: WIDTH - PAD.right, y1: y(0), y2: y(0) }));
  return root;
}

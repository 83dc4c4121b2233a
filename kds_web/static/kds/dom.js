// Tiny DOM builder. Every piece of text goes in through textContent, never innerHTML:
// order text comes from sales channels and must never become markup (issue #6).

export function h(tag, attrs, children) {
  var el = document.createElement(tag);
  if (attrs) {
    Object.keys(attrs).forEach(function (k) {
      var v = attrs[k];
      if (v === null || v === undefined || v === false) return;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = String(v);
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else if (k === 'dataset') Object.keys(v).forEach(function (d) { el.dataset[d] = v[d]; });
      else el.setAttribute(k, v === true ? '' : String(v));
    });
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  if (children === null || children === undefined || children === false) return el;
  if (Array.isArray(children)) {
    children.forEach(function (c) { append(el, c); });
  } else if (typeof children === 'string' || typeof children === 'number') {
    el.appendChild(document.createTextNode(String(children)));
  } else {
    el.appendChild(children);
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replaceChildren(el, children) {
  clear(el);
  return append(el, children);
}

// "12:03" on the wall clock of IANA zone `zone` (the store's, DESIGN.md §8.7), whatever
// zone the device is set to; without a zone (HQ, or a zone this browser does not know), the
// device's own.
export function clock(date, zone) {
  var d = date instanceof Date ? date : new Date(date);
  var f = zone ? zoneFormat(zone) : null;
  if (f) {
    var parts = {};
    f.formatToParts(d).forEach(function (p) { parts[p.type] = p.value; });
    return pad2(parseInt(parts.hour, 10) % 24) + ':' + parts.minute;
  }
  return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
}

var zoneFormats = {};

function zoneFormat(zone) {
  if (!(zone in zoneFormats)) {
    try {
      zoneFormats[zone] = new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hour12: false });
    } catch (e) {
      zoneFormats[zone] = null; // RangeError: a zone this browser does not know
    }
  }
  return zoneFormats[zone];
}

export function pad2(n) {
  return (n < 10 ? '0' : '') + n;
}

// 75 -> "1:15", 3725 -> "1:02:05"; negative (a future due time) gets a minus sign.
export function duration(seconds) {
  var neg = seconds < 0;
  var s = Math.floor(Math.abs(seconds));
  var hh = Math.floor(s / 3600);
  var mm = Math.floor((s % 3600) / 60);
  var ss = s % 60;
  var text = hh > 0 ? hh + ':' + pad2(mm) + ':' + pad2(ss) : mm + ':' + pad2(ss);
  return (neg ? '-' : '') + text;
}

// "4 min", "2 h", "3 d": coarse age for HQ's since-when.
export function age(seconds) {
  var s = Math.max(0, Math.floor(seconds));
  if (s < 60) return s + ' s';
  if (s < 3600) return Math.floor(s / 60) + ' min';
  if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
  return Math.floor(s / 86400) + ' d';
}

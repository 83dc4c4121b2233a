// Human labels for protocol enums (protocol/orders.py, tickets.py, status.py).

var CHANNELS = {
  pos: 'POS',
  miniprogram: 'Mini-program',
  kiosk: 'Kiosk',
  web: 'Web',
  meituan: 'Meituan',
  eleme: 'Ele.me',
  ubereats: 'Uber Eats',
  doordash: 'DoorDash',
};

var SERVICES = {
  dine_in: 'Dine-in',
  takeout: 'Takeout',
  delivery: 'Delivery',
  pickup: 'Pickup',
};

export var TICKET_STATES = {
  new: 'New',
  in_progress: 'Cooking',
  ready: 'Ready',
  voided: 'Void',
};

export function channelLabel(c) {
  if (CHANNELS[c]) return CHANNELS[c];
  return String(c || '').replace(/^x-/, '');
}

export function serviceLabel(s) {
  return SERVICES[s] || String(s || '');
}

// The big number on a card: pickup code, else table, else the tail of the channel's id.
export function orderNumber(order, fallbackId) {
  if (order.pickup_code) return '#' + order.pickup_code;
  if (order.table) return 'T' + order.table;
  var id = order.external_id || fallbackId || '';
  return '#' + (id.length > 6 ? id.slice(-6) : id);
}

// Who it is for: table and/or customer.
export function whoFor(order) {
  var parts = [];
  if (order.table && order.pickup_code) parts.push('Table ' + order.table);
  if (order.customer) parts.push(order.customer);
  return parts.join(' · ');
}

// The pickup board's state (no DOM): what /v1/ws/board said, merged, aged and sorted.
// See docs/kds.md#pickup-board for the rules the broker applies.
//
// A snapshot replaces the preparing list. Ready orders the board already shows are kept
// (the broker looked back only so far: from this board's resume position, or over its
// recent stream) unless the snapshot says they are preparing again or gone; a ready order
// leaves `readyS` seconds after it turned ready, on the broker's clock (`now` in the
// snapshot gives the offset to this device's clock).

export function BoardState() {
  this.orders = {}; // order_id -> {order_id, number, state, since, name, sinceMs, seenAt}
  this.epoch = null;
  this.offset = 0;
  this.synced = false;
  this.skewMs = 0;
  this.readyS = 600;
  this.title = '';
}

// -> ids that turned ready with this snapshot (none on the page's first one: those were
// ready before anyone was watching, so no chime)
BoardState.prototype.applySnapshot = function (msg, localNow) {
  var first = !this.synced;
  var before = this.orders;
  var next = {};
  this.skewMs = Date.parse(msg.now) - localNow;
  this.readyS = msg.ready_s;
  this.title = msg.title;
  this.epoch = msg.epoch;
  this.offset = msg.offset;
  this.synced = true;
  Object.keys(before).forEach(function (id) {
    if (before[id].state === 'ready') next[id] = before[id];
  });
  (msg.gone || []).forEach(function (id) { delete next[id]; });
  var self = this;
  var fresh = [];
  msg.preparing.concat(msg.ready).forEach(function (o) {
    var had = before[o.order_id];
    next[o.order_id] = self.entry(o, had, localNow);
    if (o.state === 'ready' && !first && !(had && had.state === 'ready')) fresh.push(o.order_id);
  });
  this.orders = next;
  this.expire(localNow);
  return fresh.filter(function (id) { return !!next[id]; });
};

// board_order / board_removed -> ids that turned ready (for the chime)
BoardState.prototype.applyDelta = function (msg, localNow) {
  if (msg.offset <= this.offset) return []; // sent before the snapshot was taken
  this.offset = msg.offset;
  if (msg.type === 'board_removed') {
    delete this.orders[msg.order_id];
    return [];
  }
  var o = msg.order;
  var had = this.orders[o.order_id];
  this.orders[o.order_id] = this.entry(o, had, localNow);
  this.expire(localNow);
  var turned = o.state === 'ready' && !(had && had.state === 'ready');
  return turned && this.orders[o.order_id] ? [o.order_id] : [];
};

BoardState.prototype.entry = function (o, had, localNow) {
  var same = had && had.state === o.state;
  return {
    order_id: o.order_id,
    number: o.number,
    name: o.name || null,
    state: o.state,
    since: o.since,
    sinceMs: Date.parse(o.since),
    seenAt: same ? had.seenAt : localNow, // when this device first showed it in this state
  };
};

// Drop ready orders older than readyS; true when something left.
BoardState.prototype.expire = function (localNow) {
  var limit = localNow + this.skewMs - this.readyS * 1000;
  var orders = this.orders;
  var dropped = false;
  Object.keys(orders).forEach(function (id) {
    if (orders[id].state === 'ready' && orders[id].sinceMs <= limit) {
      delete orders[id];
      dropped = true;
    }
  });
  return dropped;
};

// Ready newest first (the one just called is on top); preparing oldest first.
BoardState.prototype.lists = function () {
  var all = Object.keys(this.orders).map(function (id) { return this.orders[id]; }, this);
  var byAge = function (a, b) { return a.sinceMs - b.sinceMs || (a.order_id < b.order_id ? -1 : 1); };
  return {
    preparing: all.filter(function (o) { return o.state === 'preparing'; }).sort(byAge),
    ready: all.filter(function (o) { return o.state === 'ready'; }).sort(function (a, b) { return byAge(b, a); }),
  };
};

BoardState.prototype.resume = function () {
  return this.synced && this.epoch !== null ? { epoch: this.epoch, offset: this.offset } : null;
};

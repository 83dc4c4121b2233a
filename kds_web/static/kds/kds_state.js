// The station screen's state, without DOM or sockets: what the broker confirmed, plus the
// screen's own actions not yet acknowledged, overlaid so they show at once (DESIGN §3, §5.3).
//
// Rules:
// - a snapshot replaces everything (it is the truth at its offset);
// - a delta whose offset is below the last applied one is ignored: no doubled or revived
//   ticket after a resume replays what we already had (several messages may share one
//   offset: a ticket and the all-day counts it changed);
// - a ticket/order is only replaced by one with a version >= the one we hold (an ack may
//   bring a newer version before the delta of an older change arrives);
// - the broker shows a station its active tickets (new / in progress); a ticket that
//   leaves (ticket_removed) or comes back ready goes to the recall list;
// - one action per ticket is in flight at a time, sent with the confirmed version; the
//   others wait their turn, so quick taps never conflict with ourselves;
// - on an error the ticket's pending actions are dropped and the broker's ticket (sent
//   with version_conflict) shown: the screen ends on the broker's truth.

var RECENT_MAX = 20;
var LIVE_STATES = { new: true, in_progress: true };

export function StationState() {
  this.reset();
  this.known = {}; // ticket/order ids this screen has ever shown (new-ticket sound)
  this.seen = {}; // ticket_id -> revision whose amendments the chef has seen
  this.dismissed = {}; // voided tickets the chef cleared off the screen
  this.pending = []; // actions not yet acknowledged, in the order they were made
}

StationState.prototype.reset = function () {
  this.epoch = null;
  this.offset = null;
  this.station = null;
  this.timezone = null;
  this.tickets = {};
  this.orders = {};
  this.allDay = {};
  this.gone = {}; // bumped tickets the broker removed, kept for recall
  this.synced = false;
};

StationState.prototype.isExpo = function () {
  return !!(this.station && this.station.expo);
};

// Returns the ids that are new to this screen (for the new-ticket sound).
StationState.prototype.applySnapshot = function (msg) {
  var first = !this.synced;
  var keepGone = this.epoch === msg.epoch ? this.gone : {};
  this.reset();
  this.gone = keepGone;
  this.synced = true;
  this.epoch = msg.epoch;
  this.offset = msg.offset;
  this.station = msg.station;
  this.timezone = msg.timezone || null; // the store's: clock times show on its wall clock
  this.allDay = msg.all_day || {};
  var fresh = [];
  var self = this;
  (msg.tickets || []).forEach(function (t) {
    self.tickets[t.ticket_id] = t;
    delete self.gone[t.ticket_id];
    if (!self.known[t.ticket_id] && LIVE_STATES[t.state]) fresh.push(t.ticket_id);
    self.known[t.ticket_id] = true;
  });
  (msg.orders || []).forEach(function (o) {
    self.orders[o.order_id] = o;
    if (!self.known[o.order_id] && (o.state === 'open' || o.state === 'ready')) fresh.push(o.order_id);
    self.known[o.order_id] = true;
  });
  return first ? [] : fresh;
};

// A delta (ticket, ticket_removed, all_day, order). Returns null when ignored, else
// {fresh: [ids new to this screen]}.
StationState.prototype.applyDelta = function (msg) {
  if (!this.synced) return null;
  if (typeof msg.offset === 'number' && this.offset !== null && msg.offset < this.offset) {
    return null;
  }
  if (typeof msg.offset === 'number') this.offset = msg.offset;
  var fresh = [];
  if (msg.type === 'ticket') {
    var t = msg.ticket;
    var isNew = !this.known[t.ticket_id];
    if (this.putTicket(t) && isNew && LIVE_STATES[t.state]) fresh.push(t.ticket_id);
  } else if (msg.type === 'ticket_removed') {
    this.removeTicket(msg.ticket_id);
  } else if (msg.type === 'all_day') {
    this.allDay = msg.counts || {};
  } else if (msg.type === 'order') {
    var o = msg.order;
    var before = this.orders[o.order_id];
    // new to the kitchen: never seen, or held until now (a scheduled order that fired)
    var isNewOrder = !this.known[o.order_id] || (before && before.state === 'scheduled');
    if (this.putOrder(o) && isNewOrder && (o.state === 'open' || o.state === 'ready')) {
      fresh.push(o.order_id);
    }
  }
  return { fresh: fresh };
};

StationState.prototype.putTicket = function (t) {
  var cur = this.tickets[t.ticket_id] || this.gone[t.ticket_id];
  if (cur && cur.version > t.version) return false;
  this.known[t.ticket_id] = true;
  delete this.tickets[t.ticket_id];
  delete this.gone[t.ticket_id];
  if (LIVE_STATES[t.state]) this.tickets[t.ticket_id] = t;
  else if (t.state === 'ready') this.keepGone(t);
  return true;
};

StationState.prototype.putOrder = function (o) {
  var cur = this.orders[o.order_id];
  if (cur && cur.version > o.version) return false;
  this.known[o.order_id] = true;
  this.orders[o.order_id] = o;
  return true;
};

// The broker removes a ticket that became ready or voided; we only know which when our own
// ack said so. Otherwise assume it was bumped on another screen (one version on, all live
// lines ready) so recall works there too; a wrong guess is corrected by the broker's
// answer to the recall.
StationState.prototype.removeTicket = function (id) {
  var t = this.tickets[id];
  delete this.tickets[id];
  if (!t) return;
  var guess = Object.assign({}, t, { version: t.version + 1, state: 'ready', bumped_at: new Date().toISOString() });
  guess.lines = t.lines.map(function (l) {
    return Object.assign({}, l, { state: l.state === 'voided' ? 'voided' : 'ready', change: null });
  });
  this.keepGone(guess);
};

StationState.prototype.keepGone = function (t) {
  var id = t.ticket_id;
  this.gone[id] = t;
  var ids = Object.keys(this.gone);
  if (ids.length > RECENT_MAX) {
    var self = this;
    ids.sort(function (a, b) {
      return bumpedAt(self.gone[a]) - bumpedAt(self.gone[b]);
    });
    ids.slice(0, ids.length - RECENT_MAX).forEach(function (x) {
      delete self.gone[x];
    });
  }
};

// --- actions ---------------------------------------------------------------------

// Record an action made on this screen. Returns it; the caller sends what sendable() says.
StationState.prototype.act = function (action) {
  action.at = Date.now();
  action.sent = false;
  this.pending.push(action);
  return action;
};

function targetOf(a) {
  return a.order_id ? 'o:' + a.order_id : 't:' + a.ticket_id;
}

// Actions that may go now: the first unsent one per ticket whose earlier ones are acked.
// Each gets the confirmed version of its ticket/order as it is now.
StationState.prototype.sendable = function () {
  var busy = {};
  var out = [];
  var self = this;
  this.pending.forEach(function (a) {
    var key = targetOf(a);
    if (busy[key]) return;
    busy[key] = true;
    if (a.sent) return;
    var base = a.order_id ? self.orders[a.order_id] : self.tickets[a.ticket_id] || self.gone[a.ticket_id];
    if (!base) {
      a.orphan = true; // its ticket is gone: nothing to act on any more
      return;
    }
    a.version = base.version;
    out.push(a);
  });
  return out;
};

StationState.prototype.markUnsent = function () {
  this.pending.forEach(function (a) {
    a.sent = false;
  });
};

StationState.prototype.takePending = function (ref) {
  for (var i = 0; i < this.pending.length; i++) {
    if (this.pending[i].ref === ref) return this.pending.splice(i, 1)[0];
  }
  return null;
};

StationState.prototype.applyAck = function (msg) {
  this.takePending(msg.ref);
  if (msg.ticket) this.putTicket(msg.ticket);
  if (msg.order) this.putOrder(msg.order);
};

// Returns the failed action (or null when the ref is not ours).
StationState.prototype.applyError = function (msg) {
  var a = this.takePending(msg.ref);
  if (msg.ticket) this.putTicket(msg.ticket);
  if (msg.order) this.putOrder(msg.order);
  if (a) {
    var key = targetOf(a);
    this.pending = this.pending.filter(function (p) {
      return targetOf(p) !== key;
    });
  }
  return a;
};

// Drop actions the broker never answered, and those whose ticket is gone.
StationState.prototype.expirePending = function (olderThanMs) {
  var limit = Date.now() - olderThanMs;
  var before = this.pending.length;
  this.pending = this.pending.filter(function (a) {
    return !a.orphan && !(a.sent && a.sentAt < limit);
  });
  return before !== this.pending.length;
};

// --- what the screen shows ---------------------------------------------------------

function copyTicket(t) {
  var c = Object.assign({}, t);
  c.lines = t.lines.map(function (l) {
    return Object.assign({}, l);
  });
  return c;
}

function rollUp(lines) {
  var live = lines.filter(function (l) {
    return l.state !== 'voided';
  });
  if (!live.length) return 'voided';
  if (live.every(function (l) { return l.state === 'ready'; })) return 'ready';
  if (live.every(function (l) { return l.state === 'new'; })) return 'new';
  return 'in_progress';
}

function overlay(t, a) {
  var now = new Date().toISOString();
  if (a.type === 'start') {
    t.lines.forEach(function (l) {
      if (l.state === 'new') l.state = 'in_progress';
    });
  } else if (a.type === 'bump') {
    t.lines.forEach(function (l) {
      if (l.state === 'new' || l.state === 'in_progress') l.state = 'ready';
    });
  } else if (a.type === 'bump_line') {
    t.lines.forEach(function (l) {
      if (l.line_id === a.line_id && l.state !== 'voided') l.state = 'ready';
    });
  } else if (a.type === 'recall') {
    t.lines.forEach(function (l) {
      if (l.state === 'ready') l.state = 'in_progress';
    });
  } else if (a.type === 'prioritize') {
    t.priority = t.priority === 'rush' ? 'normal' : 'rush'; // the broker toggles it
  }
  if (a.type !== 'prioritize') {
    t.lines.forEach(function (l) {
      l.change = null; // any action on a ticket acknowledges its amendment (broker/kitchen.py)
    });
  }
  var before = t.state;
  t.state = rollUp(t.lines);
  if (t.state === 'ready' && before !== 'ready') t.bumped_at = now;
  if (t.state !== 'ready') t.bumped_at = null;
  t.pending = true;
}

// Every ticket as the screen shows it: confirmed + this screen's pending actions.
StationState.prototype.view = function () {
  var out = {};
  var self = this;
  function base(id) {
    if (!out[id]) {
      var t = self.tickets[id] || self.gone[id];
      if (!t) return null;
      out[id] = copyTicket(t);
      out[id].gone = !self.tickets[id];
    }
    return out[id];
  }
  Object.keys(this.tickets).forEach(base);
  Object.keys(this.gone).forEach(base);
  this.pending.forEach(function (a) {
    if (!a.ticket_id) return;
    var t = base(a.ticket_id);
    if (t) overlay(t, a);
  });
  return Object.keys(out).map(function (id) {
    return out[id];
  });
};

function dueKey(t) {
  return Date.parse((t.order && t.order.due_at) || t.created_at);
}

function bumpedAt(t) {
  return t.bumped_at ? Date.parse(t.bumped_at) : 0;
}

export function byUrgency(a, b) {
  var ra = a.priority === 'rush' ? 0 : 1;
  var rb = b.priority === 'rush' ? 0 : 1;
  if (ra !== rb) return ra - rb;
  return dueKey(a) - dueKey(b) || (a.ticket_id < b.ticket_id ? -1 : 1);
}

// Cards to show: live tickets (and cancelled ones until cleared), RUSH first, then oldest.
StationState.prototype.activeTickets = function () {
  var self = this;
  return this.view()
    .filter(function (t) {
      if (LIVE_STATES[t.state]) return true; // includes a recalled one not yet acked
      return t.state === 'voided' && !t.gone && !self.dismissed[t.ticket_id];
    })
    .sort(byUrgency);
};

// Recently bumped tickets, newest first (what recall offers).
StationState.prototype.recentBumps = function () {
  return this.view()
    .filter(function (t) {
      return t.state === 'ready';
    })
    .sort(function (a, b) {
      return bumpedAt(b) - bumpedAt(a);
    })
    .slice(0, RECENT_MAX);
};

// Lines changed by an amendment the chef has not acknowledged yet.
StationState.prototype.unseenChange = function (t) {
  var seenRev = this.seen[t.ticket_id] || 0;
  return (t.revision || 1) > seenRev && t.lines.some(function (l) {
    return !!l.change;
  });
};

StationState.prototype.markSeen = function (t) {
  this.seen[t.ticket_id] = t.revision || 1;
};

// --- expo ----------------------------------------------------------------------------

StationState.prototype.expoOrders = function () {
  var out = [];
  var self = this;
  var served = {};
  this.pending.forEach(function (a) {
    if (a.type === 'serve') served[a.order_id] = true;
  });
  Object.keys(this.orders).forEach(function (id) {
    var o = Object.assign({}, self.orders[id]);
    if (served[id]) {
      o.state = 'served';
      o.pending = true;
    }
    if (o.state === 'open' || o.state === 'ready') out.push(o);
  });
  return out.sort(function (a, b) {
    var ra = a.priority === 'rush' ? 0 : 1;
    var rb = b.priority === 'rush' ? 0 : 1;
    if (ra !== rb) return ra - rb;
    return dueKey(a) - dueKey(b) || (a.order_id < b.order_id ? -1 : 1);
  });
};

// Scheduled orders (held by the broker until their fire time, docs/kds.md), the next to
// fire first; one this screen fired and the broker has not confirmed yet is `pending`.
StationState.prototype.scheduledOrders = function () {
  var self = this;
  var firing = {};
  this.pending.forEach(function (a) {
    if (a.type === 'fire') firing[a.order_id] = true;
  });
  return Object.keys(this.orders)
    .filter(function (id) {
      return self.orders[id].state === 'scheduled';
    })
    .map(function (id) {
      var o = Object.assign({}, self.orders[id]);
      if (firing[id]) o.pending = true;
      return o;
    })
    .sort(function (a, b) {
      return Date.parse(a.fire_at) - Date.parse(b.fire_at) || (a.order_id < b.order_id ? -1 : 1);
    });
};

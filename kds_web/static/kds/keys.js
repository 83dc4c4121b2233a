// Bump-bar / keyboard map. A bump bar is a keyboard: each action lists the KeyboardEvent.key
// values that trigger it. Override per screen with ?keys=bump:Enter+b,recall:r (action:key
// joined by +, pairs by commas); the setup form saves it with the screen's settings.

export var DEFAULT_KEYS = {
  select1: ['1'],
  select2: ['2'],
  select3: ['3'],
  select4: ['4'],
  select5: ['5'],
  select6: ['6'],
  select7: ['7'],
  select8: ['8'],
  select9: ['9'],
  bump: ['Enter', ' '],
  recall: ['r'],
  prev: ['ArrowLeft', 'PageUp'],
  next: ['ArrowRight', 'PageDown'],
  start: ['s'],
  prioritize: ['p'],
  lineUp: ['ArrowUp'],
  lineDown: ['ArrowDown'],
  bumpLine: ['b'],
  allDay: ['a'],
  fire: ['f'],
  mute: ['m'],
  help: ['?', 'h'],
  close: ['Escape'],
};

function norm(key) {
  if (key === 'Space' || key === 'Spacebar') return ' ';
  return key.length === 1 ? key.toLowerCase() : key;
}

// "bump:Enter+b,recall:r" -> {bump: ['Enter', 'b'], recall: ['r']}. Keys are joined by "+";
// write "Space", "Plus" and "Comma" for those keys. Unknown actions and malformed pairs are
// skipped.
var NAMED = { Space: ' ', Plus: '+', Comma: ',' };

export function parseKeyMap(text) {
  var out = {};
  if (!text) return out;
  String(text)
    .split(',')
    .forEach(function (pair) {
      var i = pair.indexOf(':');
      if (i <= 0) return;
      var action = pair.slice(0, i).trim();
      if (!DEFAULT_KEYS[action]) return;
      var keys = pair
        .slice(i + 1)
        .split('+')
        .map(function (k) {
          k = k.trim();
          return NAMED[k] || k;
        })
        .filter(function (k) {
          return k !== '';
        });
      if (keys.length) out[action] = keys;
    });
  return out;
}

export function formatKeyMap(map) {
  return Object.keys(map)
    .map(function (a) {
      var names = map[a].map(function (k) {
        return k === ' ' ? 'Space' : k === '+' ? 'Plus' : k === ',' ? 'Comma' : k;
      });
      return a + ':' + names.join('+');
    })
    .join(',');
}

// key -> action lookup. An override replaces that action's default keys, and a key it
// names is taken away from whatever default action had it.
export function KeyMap(overrides) {
  var extra = overrides || {};
  var map = Object.assign({}, DEFAULT_KEYS, extra);
  this.actions = map;
  this.byKey = {};
  var self = this;
  function bind(actions) {
    Object.keys(actions).forEach(function (action) {
      actions[action].forEach(function (k) {
        self.byKey[norm(k)] = action;
      });
    });
  }
  var defaults = {};
  Object.keys(DEFAULT_KEYS).forEach(function (a) {
    if (!extra[a]) defaults[a] = DEFAULT_KEYS[a];
  });
  bind(defaults);
  bind(extra);
}

KeyMap.prototype.action = function (ev) {
  if (ev.ctrlKey || ev.altKey || ev.metaKey) return null;
  return this.byKey[norm(ev.key)] || null;
};

KeyMap.prototype.label = function (action) {
  var keys = this.actions[action] || [];
  return keys
    .map(function (k) {
      if (k === ' ') return 'Space';
      if (k === 'ArrowLeft') return '←';
      if (k === 'ArrowRight') return '→';
      if (k === 'ArrowUp') return '↑';
      if (k === 'ArrowDown') return '↓';
      return k.length === 1 ? k.toUpperCase() : k;
    })
    .join(' / ');
};

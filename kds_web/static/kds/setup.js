// The small form a screen shows when it was opened without its settings.

import { h, replaceChildren } from './dom.js';

export function setupForm(root, spec) {
  var inputs = {};
  var rows = spec.fields.map(function (f) {
    var input = h('input', { name: f[0], id: 'setup-' + f[0], value: f[2] || '', autocomplete: 'off', spellcheck: 'false' });
    inputs[f[0]] = input;
    return h('label', { for: 'setup-' + f[0] }, [h('span', { text: f[1] }), input]);
  });
  var form = h('form', { class: 'setup' }, [
    h('h1', { text: spec.title }),
    h('p', { class: 'muted', text: 'This screen needs its settings. They are kept on this device.' }),
    rows,
    h('button', { class: 'btn bump', type: 'submit', text: 'Open' }),
  ]);
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    var q = new URLSearchParams(window.location.search);
    Object.keys(inputs).forEach(function (k) {
      var v = inputs[k].value.trim();
      if (v) q.set(k, v);
      else q.delete(k);
    });
    window.location.search = q.toString();
  });
  document.body.classList.add('setup-page');
  replaceChildren(root, form);
}

// Words for the link state, shared by the station screen and HQ.

import { clock } from './dom.js';

// `zone`: the store's time zone for clock times (the station screen); none on HQ.
export function linkText(link, zone) {
  var now = Date.now();
  var retryIn = Math.max(0, Math.ceil((link.retryAt - now) / 1000));
  if (link.state === 'live' && link.local) {
    return {
      pill: '● LOCAL MODE',
      bar: "LOCAL MODE — no internet: this store's orders keep coming and bumps work; they sync when it is back",
    };
  }
  if (link.state === 'live') return { pill: '● LIVE', bar: '' };
  if (link.state === 'connecting') {
    return { pill: '◌ CONNECTING', bar: 'Connecting to the broker…' + (link.error ? ' (' + link.error + ')' : '') };
  }
  var next = link.attempting ? 'reconnecting now' : 'retrying in ' + retryIn + ' s';
  if (link.state === 'refused') {
    return {
      pill: '✕ REFUSED',
      bar: 'The broker refused this screen: ' + link.error + ' · check the token and store/station · ' + next,
    };
  }
  return {
    pill: '✕ OFFLINE',
    bar: 'LINK LOST since ' + clock(link.since, zone) + ' — ' + (link.error || 'no connection') + ' · ' + next,
  };
}

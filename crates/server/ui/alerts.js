// #/alerts?state=&severity=&rule=&actor= : the alerts, newest first.

import { alertActions, actorKind, actorLink } from './actions.js';
import { api } from './api.js';
import { count, ago, time } from './format.js';
import { badge, empty, h, route, seg, severityBadge, table, put } from './dom.js';

const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'];

function filters(query) {
  const field = (name, props) => h('input', Object.assign({
    name, value: query.get(name) || '', 'aria-label': name,
  }, props));
  const select = (name, options) => h('select', { name, 'aria-label': name },
    options.map(([value, text]) => h('option', { value, selected: (query.get(name) || '') === value }, text)));
  const form = h('form', { class: 'filters', id: 'alert-filters' },
    h('label', null, 'State ', select('state', [['', 'all'], ['firing', 'firing'], ['resolved', 'resolved']])),
    h('label', null, 'Severity ', select('severity', [['', 'any'], ...SEVERITIES.map((s) => [s, s])])),
    h('label', null, 'Rule ', field('rule', { placeholder: 'brute-force-login' })),
    h('label', null, 'Actor ', field('actor', { placeholder: '203.0.113.7 or client_address=…' })),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    location.hash = route('/alerts', Object.fromEntries(data.entries()));
  });
  return form;
}

export function actorCell(actor) {
  return Object.entries(actor || {}).map(([label, value]) => {
    const kind = actorKind(label);
    const text = `${label}=${value}`;
    return h('div', { class: 'actor' }, kind && value !== '[masked]'
      ? h('a', { href: actorLink(kind, value), title: 'the actor\'s timeline' }, text)
      : text);
  });
}

export async function render(frame, _parts, query) {
  const params = new URLSearchParams();
  for (const name of ['state', 'severity', 'rule', 'actor']) {
    if (query.get(name)) params.set(name, query.get(name));
  }
  params.set('limit', '500');
  const data = await api('/api/v1/alerts?' + params);
  const rows = data.alerts.map((alert) => h('tr', { class: 'alert-row', dataset: { fingerprint: alert.fingerprint } },
    h('td', null, severityBadge(alert.severity)),
    h('td', null, badge(alert.status, 'state-' + alert.status),
      alert.acknowledged ? badge('acknowledged', 'ack') : null),
    h('td', null, h('a', { href: route(`/alerts/${seg(alert.fingerprint)}`), class: 'alert-title' },
      alert.title || alert.ruleId), h('div', { class: 'sub' }, alert.ruleId)),
    h('td', null, actorCell(alert.actor)),
    h('td', { title: time(alert.startsAt) }, ago(alert.startsAt)),
    h('td', { title: time(alert.evidence.lastSeen) }, ago(alert.evidence.lastSeen)),
    h('td', { class: 'num' }, count(alert.evidence.count)),
    h('td', null, alertActions(alert))));
  put(frame,
    h('h1', null, 'Alerts'),
    filters(query),
    h('p', { class: 'sub', id: 'alert-count' }, `${data.alerts.length} shown of ${data.total}`),
    rows.length
      ? table(['Severity', 'State', 'Alert', 'Actor', 'Started', 'Last seen', 'Count', ''], rows, { class: 'list', id: 'alerts' })
      : empty('No alerts match.'));
}

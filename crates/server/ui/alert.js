// #/alerts/{fingerprint} : one alert, its evidence, the actor (with its
// timeline and blocks), the traces behind it.

import { actorKind, actorLink, alertActions, blockActions, blockOf } from './actions.js';
import { api, may } from './api.js';
import { attributeTable, badge, empty, facts, h, notice, route, section, seg, severityBadge, put } from './dom.js';
import { ago, count, time } from './format.js';

async function actorPanel(alert) {
  const entries = Object.entries(alert.actor || {});
  if (!entries.length) return section('Actor', empty('This rule groups by no actor.'));
  const rows = await Promise.all(entries.map(async ([label, value]) => {
    const kind = actorKind(label);
    const masked = value === '[masked]';
    const block = kind && !masked ? await blockOf(kind, value) : null;
    return h('div', { class: 'actor-row' },
      h('div', null, h('strong', null, label), ' ', h('code', null, value)),
      kind && !masked ? h('a', { href: actorLink(kind, value), class: 'timeline-link' }, 'Timeline of this actor →') : null,
      block ? notice('warn', `Blocked (${block.kind}) by ${block.by} since ${time(block.created)}` +
        (block.until ? ` until ${time(block.until)}` : ' until removed') + `: ${block.reason}`) : null,
      kind ? blockActions(kind, value, block) : null);
  }));
  // The response taken: blocks and unblocks of the actor's values.
  const values = new Set(entries.map(([, value]) => value));
  const history = await api('/api/v1/blocks/history?limit=1000').catch(() => null);
  const taken = ((history && history.history) || []).filter((e) => values.has(e.value)).reverse();
  return section('Actor', rows, h('h3', null, 'Response taken'), taken.length
    ? h('ul', { class: 'plain', id: 'alert-response' }, taken.map((e) => h('li', null,
      `${time(e.at)} · ${e.action} ${e.kind} `, h('code', null, e.value), ` by ${e.by}: ${e.reason}`,
      e.until ? ` (until ${time(e.until)})` : '')))
    : empty('No block or unblock of this actor.'));
}

export async function render(frame, [fingerprint]) {
  const alert = await api(`/api/v1/alerts/${seg(fingerprint)}`);
  const actor = await actorPanel(alert);
  const traces = alert.traces || [];
  put(frame,
    h('p', { class: 'crumbs' }, h('a', { href: route('/alerts') }, '← Alerts')),
    h('h1', null, severityBadge(alert.severity), ' ', alert.title || alert.ruleId),
    h('div', { class: 'state-line' },
      badge(alert.status, 'state-' + alert.status),
      alert.acknowledged ? badge(`acknowledged by ${alert.acknowledged.by}`, 'ack') : null,
      alert.silencedBy && alert.silencedBy.length ? badge('silenced', 'muted') : null,
      alert.inhibited ? badge('inhibited', 'muted') : null),
    alertActions(alert),
    section('What happened', facts([
      ['Rule', h('a', { href: route('/rules', { id: alert.ruleId }) }, alert.ruleId)],
      ['Fingerprint', h('code', null, alert.fingerprint)],
      ['Started', `${time(alert.startsAt)} (${ago(alert.startsAt)})`],
      ['Updated', time(alert.updatedAt)],
      ['Ended', alert.endsAt ? time(alert.endsAt) : null],
      ['Acknowledged', alert.acknowledged
        ? `${alert.acknowledged.by} at ${time(alert.acknowledged.at)} ${alert.acknowledged.comment || ''}` : null],
      ['Silenced by', (alert.silencedBy || []).join(', ')],
    ])),
    section('Evidence', facts([
      ['Detections', count(alert.evidence.detections)],
      ['Matching events', count(alert.evidence.count)],
      ['First seen', time(alert.evidence.firstSeen)],
      ['Last seen', time(alert.evidence.lastSeen)],
    ]), h('h3', null, 'Annotations'), attributeTable(alert.annotations)),
    actor,
    section(`Traces behind it (${traces.length})`,
      !may('investigate') ? notice('info', 'Reading traces needs an analyst key.') : null,
      traces.length ? h('ul', { class: 'trace-links', id: 'alert-traces' },
        traces.map((t) => h('li', null, h('a', { href: route(`/traces/${seg(t.traceId)}`), class: 'trace-link' },
          h('code', null, t.traceId))))) : empty('No trace ids kept.')),
  );
}

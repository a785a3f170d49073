// #/actors/{kind}/{value}?since= : an actor's timeline (its requests
// oldest first, the identities seen with it, its alerts), and block or
// unblock it.

import { actorLink, blockActions, blockOf } from './actions.js';
import { api, optional } from './api.js';
import { badge, empty, facts, h, notice, route, section, seg, severityBadge, table, put } from './dom.js';
import { count, durationNs, time } from './format.js';

const KINDS = ['client.address', 'enduser.id', 'session.id', 'token'];

function path(kind, value, query, cursor) {
  const params = new URLSearchParams({ since: query.get('since') || '24h', limit: '200' });
  if (cursor) params.set('cursor', cursor);
  return `/api/v1/actors/${seg(kind)}/${seg(value)}/timeline?${params}`;
}

function counts(list, key) {
  if (!list || !list.length) return empty('none');
  return h('ul', { class: 'counts' }, list.map((item) => h('li', null, h('code', null, item[key]), ' ', count(item.count))));
}

function requestRows(requests) {
  const rows = [];
  for (const r of requests) {
    const status = String(r.status || '');
    rows.push(h('tr', { class: 'request' + (/^[45]/.test(status) ? ' bad' : '') },
      h('td', null, time(r.time)),
      h('td', null, r.method || ''),
      h('td', null, h('code', null, r.path || r.route || r.name || '')),
      h('td', null, status),
      h('td', { class: 'num' }, durationNs(r.durationNs)),
      h('td', null, (r.services || [r.service]).filter(Boolean).join(' → ')),
      h('td', null, (r.classifications || []).map((c) => badge(c, 'class'))),
      h('td', null, (r.alerts || []).map((a) => h('a', { href: route(`/alerts/${seg(a.fingerprint)}`) }, severityBadge(a.severity), ' ', a.ruleId))),
      h('td', null, r.traceId ? h('a', { href: route(`/traces/${seg(r.traceId)}`, { span: r.spanId }), class: 'trace-link' }, 'trace') : '')));
    for (const log of r.logs || []) {
      rows.push(h('tr', { class: 'log-line' }, h('td', null, time(log.time)),
        h('td', { colspan: '8' }, h('strong', null, log.severityText || ''), ' ',
          typeof log.body === 'string' ? log.body : JSON.stringify(log.body))));
    }
  }
  return rows;
}

export async function render(frame, [kind, value], query) {
  const head = [
    h('p', { class: 'crumbs' }, h('a', { href: route('/alerts', { actor: value }) }, '← Alerts of this actor')),
    h('h1', null, 'Actor ', h('code', null, kind), ' ', h('code', { id: 'actor-value' }, value)),
  ];
  if (!KINDS.includes(kind)) {
    put(frame, head, notice('error', `Unknown actor kind ${kind} (expected ${KINDS.join(', ')}).`));
    return;
  }
  const [data, block] = await Promise.all([optional(path(kind, value, query)), blockOf(kind, value)]);
  const since = h('select', { 'aria-label': 'time range' },
    [['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days'], ['30d', 'last 30 days']]
      .map(([v, text]) => h('option', { value: v, selected: (query.get('since') || '24h') === v }, text)));
  since.addEventListener('change', () => { location.hash = route(`/actors/${seg(kind)}/${seg(value)}`, { since: since.value }); });
  put(frame, head, h('div', { class: 'row' }, since),
    block ? notice('warn', `Blocked (${block.kind}) by ${block.by} since ${time(block.created)}` +
      (block.until ? ` until ${time(block.until)}` : ' until removed') + `: ${block.reason}`) : null,
    blockActions(kind, value, block));
  if (!data) {
    put(frame, notice('info', 'This server has no actor timeline (GET /api/v1/actors/…/timeline answered 404).'));
    return;
  }
  const s = data.summary || {};
  const tbody = h('tbody', null, requestRows(data.requests || []));
  const more = h('div', { class: 'more' });
  const showMore = (cursor) => {
    more.replaceChildren();
    if (!cursor) return;
    more.append(h('button', {
      type: 'button',
      onclick: async () => {
        const next = await api(path(kind, value, query, cursor));
        tbody.append(...requestRows(next.requests || []));
        showMore(next.nextCursor);
      },
    }, 'Load more'));
  };
  showMore(data.nextCursor);
  put(frame,
    section('Summary', facts([
      ['First seen', time(s.firstSeen)],
      ['Last seen', time(s.lastSeen)],
      ['Requests', count(s.requests)],
      ['Traces', count(s.traces)],
    ]), h('div', { class: 'columns' },
      h('div', null, h('h3', null, 'By status'), counts(s.byStatus, 'status')),
      h('div', null, h('h3', null, 'By route'), counts(s.byRoute, 'route')))),
    section('Identities seen with it', (s.identities || []).length
      ? table(['Kind', 'Value', 'Requests', 'First seen', 'Last seen'], s.identities.map((i) => h('tr', null,
        h('td', null, i.kind),
        h('td', null, KINDS.includes(i.kind) ? h('a', { href: actorLink(i.kind, i.value) }, i.value) : i.value),
        h('td', { class: 'num' }, count(i.count)), h('td', null, time(i.firstSeen)), h('td', null, time(i.lastSeen)))), { class: 'list', id: 'identities' })
      : empty('none')),
    section('Alerts', (s.alerts || []).length ? h('ul', { class: 'plain', id: 'actor-alerts' }, s.alerts.map((a) => h('li', null,
      severityBadge(a.severity), ' ', h('a', { href: route(`/alerts/${seg(a.fingerprint)}`) }, a.ruleId), ' ', badge(a.state, 'state-' + a.state))))
      : empty('none')),
    section(`Requests (oldest first)`, (data.requests || []).length
      ? h('table', { class: 'list', id: 'timeline' },
        h('thead', null, h('tr', null, ['Time', 'Method', 'Path', 'Status', 'Duration', 'Services', 'Data', 'Alerts', ''].map((t) => h('th', null, t)))),
        tbody)
      : empty('No request in this time range.'), more));
}

// #/traces/{id}?span= : a trace as a waterfall, with its log records in
// line, the alerts that cite it, its payloads, and the details of the
// selected span (shareable through `span=`).

import { api } from './api.js';
import { attributeTable, badge, empty, facts, fill, h, notice, route, section, seg, severityBadge, show, put } from './dom.js';
import { durationNs, nsToMs, time } from './format.js';
import { waterfall } from './waterfall.js';

// The alerts citing the trace: the API's list when it has one (`alerts`),
// else found among the alerts' evidence (`list`, fetched alongside).
function citing(trace, list) {
  if (Array.isArray(trace.alerts)) return trace.alerts;
  return ((list && list.alerts) || []).filter((a) => (a.evidence.traceIds || []).includes(trace.traceId))
    .map((a) => ({ fingerprint: a.fingerprint, ruleId: a.ruleId, title: a.title, severity: a.severity, state: a.status }));
}

function alertsPanel(alerts) {
  if (!alerts.length) return null;
  return section(`Alerts citing this trace (${alerts.length})`, h('ul', { class: 'plain', id: 'trace-alerts' },
    alerts.map((a) => h('li', null, severityBadge(a.severity), ' ',
      h('a', { href: route(`/alerts/${seg(a.fingerprint)}`) }, a.title || a.ruleId), ' ',
      badge(a.state || '', 'state-' + (a.state || '')), ' ', h('span', { class: 'sub' }, a.ruleId)))));
}

function payloadsPanel(payloads) {
  if (!Array.isArray(payloads) || !payloads.length) return null;
  const viewer = h('div', { class: 'payload-view' });
  const open = async (p) => {
    fill(viewer, h('p', { class: 'sub' }, 'Loading…'));
    try {
      const body = await api(`/api/v1/payloads/${seg(p.id)}`, { text: true });
      fill(viewer, h('h3', null, `${p.kind} payload ${p.id} (${p.contentType})`),
        h('pre', { class: 'payload' }, typeof body === 'string' ? body : JSON.stringify(body, null, 2)));
    } catch (error) {
      fill(viewer, notice('error', error.message));
    }
  };
  return section(`Payloads (${payloads.length})`, h('ul', { class: 'plain', id: 'trace-payloads' },
    payloads.map((p) => h('li', null,
      h('button', { type: 'button', class: 'link', onclick: () => open(p) }, `${p.kind} · ${p.contentType} · ${p.size} bytes`),
      ` span ${p.spanId} · ${time(p.time)}`, p.truncated ? badge('truncated', 'muted') : null))), viewer);
}

function spanDetail(panel, span, logs, t0) {
  const start = nsToMs(span.startTimeUnixNano);
  fill(panel,
    h('h2', null, span.name),
    facts([
      ['Service', span.serviceName],
      ['Span id', h('code', null, span.spanId)],
      ['Parent', span.parentSpanId ? h('code', null, span.parentSpanId) : 'none (root)'],
      ['Kind', span.kind],
      ['Start', `${time(span.startTimeUnixNano)} (+${durationNs(String(Math.round((start - t0) * 1e6)))})`],
      ['Duration', durationNs(span.durationNanos)],
      ['Status', `${span.status.code}${span.status.message ? ': ' + span.status.message : ''}`],
      ['Scope', span.scope && span.scope.name],
    ]),
    h('h3', null, 'Attributes'), attributeTable(span.attributes, { id: 'span-attributes' }),
    span.originalAttributes ? [h('h3', null, 'Original attributes (before normalisation)'), attributeTable(span.originalAttributes)] : null,
    h('h3', null, 'Resource'), attributeTable(span.resource && span.resource.attributes),
    span.events && span.events.length ? [h('h3', null, 'Events'), span.events.map((e) =>
      h('div', { class: 'event' }, h('strong', null, e.name), ' ', time(e.timeUnixNano), attributeTable(e.attributes)))] : null,
    span.links && span.links.length ? [h('h3', null, 'Links'), h('ul', { class: 'plain' }, span.links.map((l) =>
      h('li', null, h('a', { href: route(`/traces/${seg(l.traceId)}`, { span: l.spanId }) }, `${l.traceId} / ${l.spanId}`))))] : null,
    logs.length ? [h('h3', null, `Log records (${logs.length})`), logs.map((log) => h('div', { class: 'log' },
      h('div', null, h('strong', null, log.severityText || String(log.severityNumber)), ' ', time(log.timeUnixNano)),
      h('pre', null, show(log.body)), attributeTable(log.attributes)))] : null);
}

export async function render(frame, [id], query) {
  const list = api('/api/v1/alerts?limit=10000').catch(() => null);
  const trace = await api(`/api/v1/traces/${seg(id)}`);
  const alerts = citing(trace, await list);
  const started = performance.now();
  const panel = h('aside', { class: 'span-detail', id: 'span-detail' }, empty('Click a span to see its attributes.'));
  const wf = waterfall(trace, (span, logs) => {
    spanDetail(panel, span, logs, wf.t0);
    const next = route(`/traces/${seg(trace.traceId)}`, { span: span.spanId });
    history.replaceState(null, '', next);
  });
  const services = [...new Set((trace.spans || []).map((s) => s.serviceName))];
  const root = wf.rows.length ? wf.rows[0].span : null;
  const end = Math.max(...(trace.spans || []).map((s) => nsToMs(s.endTimeUnixNano)));
  put(frame,
    h('p', { class: 'crumbs' }, h('a', { href: route('/search') }, '← Search')),
    h('h1', null, 'Trace ', h('code', { id: 'trace-id' }, trace.traceId)),
    h('p', { class: 'sub' },
      root ? `${root.serviceName} · ${root.name} · ${time(root.startTimeUnixNano)} · ${durationNs(String(Math.round((end - wf.t0) * 1e6)))} · ` : '',
      `${trace.spanCount} spans · ${trace.logCount} log records`),
    trace.incomplete ? notice('warn', 'Incomplete: ', (trace.unreadableSegments || []).join('; ')) : null,
    h('div', { class: 'legend' }, services.map((name) => {
      const chip = h('span', { class: 'chip' });
      chip.style.background = wf.colourOf(name);
      return h('span', { class: 'legend-item' }, chip, name);
    })),
    alertsPanel(alerts),
    payloadsPanel(trace.payloads),
    h('div', { class: 'trace-layout' }, wf.element, panel));
  // The span named in the URL, once its row is built.
  const wanted = query.get('span');
  wf.done.then(() => {
    performance.measure('tw:waterfall-complete', { start: started, end: performance.now() });
    const row = wanted && frame.querySelector(`.wf-span[data-span-id="${CSS.escape(wanted)}"]`);
    if (!row) return;
    row.classList.add('selected');
    spanDetail(panel, wf.rows[Number(row.dataset.i)].span, wf.logs.get(wanted) || [], wf.t0);
    if (row.isConnected) row.scrollIntoView({ block: 'center' });
  });
  // How long building the first rows took (docs/BENCHMARKS.md reads it).
  performance.measure('tw:waterfall', { start: started, end: performance.now() });
}

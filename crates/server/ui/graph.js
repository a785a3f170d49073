// #/graph?since= : the service graph. Services are laid out in layers by
// their distance from the entry points (breadth first); edges are coloured
// by policy (allowed, violating, new, unknown).

import { optional } from './api.js';
import { badge, empty, h, notice, route, svg, table, put } from './dom.js';
import { count, durationNs } from './format.js';

const COLUMN = 220;
const ROW = 70;
const NODE_W = 160;
const NODE_H = 40;

// Layer of each service: 0 for entries, then one more per call away;
// services no entry reaches come after the deepest layer.
export function layers(services, edges) {
  const layer = new Map();
  const out = new Map();
  for (const e of edges) {
    if (!out.has(e.caller)) out.set(e.caller, []);
    out.get(e.caller).push(e.callee);
  }
  let frontier = services.filter((s) => s.entry).map((s) => s.name);
  if (!frontier.length) {
    const called = new Set(edges.map((e) => e.callee));
    frontier = services.map((s) => s.name).filter((n) => !called.has(n));
  }
  frontier.forEach((n) => layer.set(n, 0));
  while (frontier.length) {
    const next = [];
    for (const name of frontier) {
      for (const callee of out.get(name) || []) {
        if (!layer.has(callee)) {
          layer.set(callee, layer.get(name) + 1);
          next.push(callee);
        }
      }
    }
    frontier = next;
  }
  const deepest = Math.max(-1, ...layer.values());
  for (const s of services) if (!layer.has(s.name)) layer.set(s.name, deepest + 1);
  return layer;
}

function drawing(services, edges) {
  const layer = layers(services, edges);
  const columns = [];
  for (const s of services) {
    const l = layer.get(s.name);
    (columns[l] = columns[l] || []).push(s);
  }
  const position = new Map();
  columns.forEach((list, c) => (list || []).sort((a, b) => a.name.localeCompare(b.name))
    .forEach((s, r) => position.set(s.name, { x: 20 + c * COLUMN, y: 20 + r * ROW })));
  // Room on the right for the loops of the last layer.
  const width = 120 + Math.max(1, columns.length) * COLUMN;
  const height = 40 + Math.max(1, ...columns.map((l) => (l || []).length)) * ROW;
  const marker = (policy) => svg('marker', {
    id: `arrow-${policy}`, viewBox: '0 0 10 10', refX: '10', refY: '5', markerWidth: '7', markerHeight: '7', orient: 'auto-start-reverse',
  }, svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: `edge-head policy-${policy}` }));
  const policies = ['allowed', 'violating', 'new', 'unknown'];
  const lines = edges.map((e) => {
    const a = position.get(e.caller);
    const b = position.get(e.callee);
    if (!a || !b) return null;
    const policy = policies.includes(e.policy) ? e.policy : 'unknown';
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const y2 = b.y + NODE_H / 2;
    let d;
    if (b.x > a.x) {
      // Forward, to the callee's left side.
      const x2 = b.x;
      const bend = (x2 - x1) / 2;
      d = `M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`;
    } else {
      // Within a layer or backward: a loop out to the right, into the
      // callee's right side.
      const x2 = b.x + NODE_W;
      const out = Math.max(x1, x2) + 30 + Math.abs(y2 - y1) / 3;
      d = `M ${x1} ${y1} C ${out} ${y1}, ${out} ${y2}, ${x2} ${y2}`;
    }
    return svg('path', { d, class: `edge policy-${policy}`, 'marker-end': `url(#arrow-${policy})`, dataset: { edge: `${e.caller}>${e.callee}` } },
      svg('title', null, `${e.caller} → ${e.callee} (${e.kind}): ${e.calls} calls, ${e.errors} errors, ${policy}`));
  });
  const nodes = services.map((s) => {
    const p = position.get(s.name);
    return svg('g', { class: 'node' + (s.entry ? ' entry' : '') + (s.thirdParty ? ' third-party' : ''), transform: `translate(${p.x} ${p.y})`, dataset: { service: s.name } },
      svg('rect', { width: NODE_W, height: NODE_H, rx: '6' }),
      svg('text', { x: '10', y: '17' }, s.name.length > 22 ? s.name.slice(0, 21) + '…' : s.name),
      svg('text', { x: '10', y: '32', class: 'node-sub' }, `${count(s.spans)} spans${s.errors ? ` · ${count(s.errors)} errors` : ''}${s.entry ? ' · entry' : ''}`),
      svg('title', null, s.name));
  });
  return svg('svg', { class: 'graph', id: 'service-graph', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'service graph' },
    svg('defs', null, policies.map(marker)), lines, nodes);
}

export async function render(frame, _parts, query) {
  const since = query.get('since') || '24h';
  const select = h('select', { 'aria-label': 'time range' },
    [['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days']]
      .map(([v, text]) => h('option', { value: v, selected: since === v }, text)));
  select.addEventListener('change', () => { location.hash = route('/graph', { since: select.value }); });
  put(frame, h('h1', null, 'Service graph'), h('div', { class: 'row' }, select));
  const data = await optional('/api/v1/service-graph?' + new URLSearchParams({ since }));
  if (!data) {
    put(frame, notice('info', 'This server has no service graph (GET /api/v1/service-graph answered 404).'));
    return;
  }
  if (!data.services.length) {
    put(frame, empty('No service seen in this time range.'));
    return;
  }
  put(frame,
    h('p', { class: 'sub' }, `${data.services.length} services, ${data.edges.length} edges` +
      (data.spans != null ? ` from ${count(data.spans)} spans` : '')),
    data.incomplete ? notice('warn', 'Incomplete: ', (data.unreadableSegments || []).join('; ')) : null,
    h('div', { class: 'legend' }, ['allowed', 'violating', 'new', 'unknown'].map((p) => h('span', { class: 'legend-item' },
      h('span', { class: `swatch policy-${p}` }), p)), h('span', { class: 'legend-item' }, h('span', { class: 'swatch entry' }), 'entry point')),
    h('div', { class: 'graph-wrap' }, drawing(data.services, data.edges)),
    data.edges.length ? table(['Caller', 'Callee', 'Kind', 'Calls', 'Errors', 'p50', 'p99', 'Policy'], data.edges.map((e) => h('tr', null,
      h('td', null, e.caller), h('td', null, e.callee), h('td', null, e.kind), h('td', { class: 'num' }, count(e.calls)),
      h('td', { class: 'num' }, count(e.errors)), h('td', { class: 'num' }, durationNs(e.p50Ns)), h('td', { class: 'num' }, durationNs(e.p99Ns)),
      h('td', null, badge(e.policy, `policy-${e.policy}`)))), { class: 'list', id: 'edges' }) : empty('No calls between services.'));
}

// The waterfall: spans in tree order with their bars on the trace's time
// axis, and each log record in line under its span at its time.
//
// Built for large traces (5,000 spans and more): each span row is a clone
// of one template, given its place in one CSSOM write of custom properties
// (never a read, so no layout in between); the first rows are built at
// once and the rest in slices between frames, each slice one fragment
// attached once; rows are `content-visibility: auto`, so the browser lays
// out and paints only those on screen; one click listener serves them all.
// A span's calls collapse under it (its toggle, or the arrow keys).

import { h } from './dom.js';
import { colour, duration, nsToMs } from './format.js';

// Spans in depth-first order, children by start time:
// [{span, depth, orphan}]. A span whose parent is not in the trace is a
// root marked orphan; spans caught in a parent cycle come last, as roots.
export function order(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.parentSpanId;
    if (parent && byId.has(parent) && parent !== span.spanId) {
      if (!children.has(parent)) children.set(parent, []);
      children.get(parent).push(span);
    } else {
      roots.push({ span, orphan: Boolean(parent) });
    }
  }
  // Start times parsed once, not at each comparison.
  const starts = new Map(spans.map((s) => [s, nsToMs(s.startTimeUnixNano)]));
  const byStart = (a, b) => starts.get(a) - starts.get(b);
  for (const list of children.values()) list.sort(byStart);
  roots.sort((a, b) => byStart(a.span, b.span));
  const out = [];
  const seen = new Set();
  const visit = (root, orphan) => {
    const stack = [[root, 0]];
    while (stack.length) {
      const [span, depth] = stack.pop();
      if (seen.has(span.spanId)) continue;
      seen.add(span.spanId);
      out.push({ span, depth, orphan: depth === 0 && orphan });
      const kids = children.get(span.spanId) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
  };
  for (const { span, orphan } of roots) visit(span, orphan);
  for (const span of spans) if (!seen.has(span.spanId)) visit(span, true);
  return out;
}

// Log records by span id; those without a known span under `null`.
function logsBySpan(logs, spanIds) {
  const map = new Map();
  for (const log of logs || []) {
    const id = log.spanId && spanIds.has(log.spanId) ? log.spanId : null;
    if (!map.has(id)) map.set(id, []);
    map.get(id).push(log);
  }
  for (const list of map.values()) list.sort((a, b) => nsToMs(a.timeUnixNano) - nsToMs(b.timeUnixNano));
  return map;
}

function logText(log) {
  const body = log.body;
  const text = typeof body === 'string' ? body : body == null ? '' : JSON.stringify(body);
  return text.length > 300 ? text.slice(0, 300) + '…' : text;
}

const INDENT_PX = 12;
const MAX_INDENT = 40;
// Rows built before the waterfall is shown (a screenful and more), then
// per slice.
const FIRST_ROWS = 300;
const SLICE_ROWS = 1000;
// Distinct colours for the services of one trace, in order of appearance.
const PALETTE = ['#3b7dd8', '#d9822b', '#2f9e6e', '#c2417a', '#7a5cc7', '#1a9bb3',
  '#b5a01f', '#d0493a', '#5b7a2e', '#8c6d52', '#3f4fa8', '#d66fb0'];

// One span row, cloned for every span (much cheaper than building each).
let template = null;
function spanTemplate() {
  if (!template) {
    template = h('div', { class: 'wf-row wf-span', tabindex: '0', role: 'button' },
      h('div', { class: 'wf-name' }, h('span', { class: 'wf-toggle', title: 'collapse or expand the calls below' }),
        h('span', { class: 'chip' }), h('span', { class: 'wf-service' }), ' ',
        h('span', { class: 'wf-span-name' })),
      h('div', { class: 'wf-track' }, h('div', { class: 'wf-bar' }), h('span', { class: 'wf-dur' })));
  }
  return template;
}

// The waterfall element; `select(span)` is called when a span row is clicked.
export function waterfall(trace, select) {
  const spans = trace.spans || [];
  const rows = order(spans);
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const s of spans) {
    t0 = Math.min(t0, nsToMs(s.startTimeUnixNano));
    t1 = Math.max(t1, nsToMs(s.endTimeUnixNano));
  }
  const total = Math.max(t1 - t0, 1e-6);
  const pct = (ms) => `${Math.min(100, Math.max(0, ((ms - t0) / total) * 100))}%`;
  const logs = logsBySpan(trace.logs, new Set(spans.map((s) => s.spanId)));
  const colours = new Map();
  const colourOf = (service) => {
    if (!colours.has(service)) {
      colours.set(service, colours.size < PALETTE.length ? PALETTE[colours.size] : colour(service));
    }
    return colours.get(service);
  };

  const logRow = (log, depth) => {
    const at = nsToMs(log.timeUnixNano);
    const mark = h('div', { class: 'wf-mark sev-' + String(log.severityText || '').toLowerCase().replace(/[^a-z]/g, '') });
    mark.style.left = pct(at);
    const name = h('div', { class: 'wf-name' },
      h('span', { class: 'wf-sev' }, log.severityText || `sev ${log.severityNumber || '?'}`), ' ', logText(log));
    name.style.paddingLeft = `${Math.min(depth, MAX_INDENT) * INDENT_PX + 18}px`;
    return h('div', { class: 'wf-row wf-log', title: logText(log), dataset: { depth: String(depth) } }, name,
      h('div', { class: 'wf-track' }, mark, h('span', { class: 'wf-at' }, '+' + duration(at - t0))));
  };
  const tpl = spanTemplate();
  const spanRow = ({ span, depth, orphan }, index) => {
    const start = nsToMs(span.startTimeUnixNano);
    const end = nsToMs(span.endTimeUnixNano);
    const service = span.serviceName || '?';
    const error = span.status && span.status.code === 'error';
    // Walked by sibling links: iterating `children` costs more than the row.
    const row = tpl.cloneNode(true);
    const name = row.firstChild;
    const toggle = name.firstChild;
    const serviceEl = toggle.nextSibling.nextSibling;
    const spanName = serviceEl.nextSibling.nextSibling;
    const dur = name.nextSibling.firstChild.nextSibling;
    row.setAttribute('data-i', index);
    row.setAttribute('data-span-id', span.spanId);
    row.setAttribute('data-depth', depth);
    if (!(index + 1 < rows.length && rows[index + 1].depth > depth)) toggle.classList.add('leaf');
    if (error) row.classList.add('error');
    // Indent, bar and colour in one write (style.css reads the properties).
    row.style.cssText = `--pad:${Math.min(depth, MAX_INDENT) * INDENT_PX + 4}px;--left:${pct(start)};` +
      `--width:${Math.max(0.15, ((end - start) / total) * 100)}%;--colour:${colourOf(service)}`;
    serviceEl.textContent = service;
    spanName.textContent = span.name;
    if (orphan) name.append(h('span', { class: 'badge muted' }, 'parent missing'));
    dur.textContent = duration(end - start) + (error ? ' · error' : '');
    return row;
  };
  const body = h('div', { class: 'wf-body', id: 'waterfall', dataset: { spans: String(rows.length) } });
  // Rows [from, to) with their log records, attached in one go.
  const slice = (from, to) => {
    const fragment = document.createDocumentFragment();
    for (let i = from; i < to; i++) {
      fragment.append(spanRow(rows[i], i));
      for (const log of logs.get(rows[i].span.spanId) || []) fragment.append(logRow(log, rows[i].depth + 1));
    }
    if (to === rows.length) {
      const loose = logs.get(null) || [];
      if (loose.length) {
        fragment.append(h('div', { class: 'wf-row wf-group' }, h('div', { class: 'wf-name' }, 'Log records of the trace without a span'), h('div')));
        for (const log of loose) fragment.append(logRow(log, 0));
      }
    }
    body.append(fragment);
  };
  const first = Math.min(rows.length, FIRST_ROWS);
  slice(0, first);
  // The rest between frames; `done` resolves when every row is there.
  const done = new Promise((resolve) => {
    let next = first;
    const more = () => {
      const to = Math.min(rows.length, next + SLICE_ROWS);
      slice(next, to);
      next = to;
      if (next < rows.length) setTimeout(more, 0);
      else {
        body.dataset.complete = 'true';
        resolve();
      }
    };
    if (first < rows.length) setTimeout(more, 0);
    else {
      body.dataset.complete = 'true';
      resolve();
    }
  });

  const axis = h('div', { class: 'wf-row wf-axis' }, h('div', { class: 'wf-name' }, `${spans.length} spans · ${(trace.logs || []).length} log records`),
    h('div', { class: 'wf-track' }, [0, 0.25, 0.5, 0.75, 1].map((f) => {
      const tick = h('span', { class: 'wf-tick' }, duration(total * f));
      tick.style.left = `${f * 100}%`;
      return tick;
    })));
  // Hides (or shows again) the rows below a span: its calls and their log
  // records, which follow it in depth-first order; subtrees collapsed
  // inside stay collapsed.
  const collapse = async (row, shut) => {
    await done;
    row.classList.toggle('collapsed', shut);
    const depth = Number(row.dataset.depth);
    let inner = Infinity;
    for (let el = row.nextElementSibling; el && Number(el.dataset.depth) > depth; el = el.nextElementSibling) {
      const d = Number(el.dataset.depth);
      if (shut) {
        el.hidden = true;
        continue;
      }
      if (d <= inner) inner = Infinity;
      el.hidden = d > inner;
      if (!el.hidden && el.classList.contains('collapsed')) inner = d;
    }
  };
  const activate = (event) => {
    const row = event.target.closest('.wf-span');
    if (!row) return;
    if (event.target.closest('.wf-toggle:not(.leaf)')) {
      collapse(row, !row.classList.contains('collapsed'));
      return;
    }
    for (const old of body.querySelectorAll('.wf-span.selected')) old.classList.remove('selected');
    row.classList.add('selected');
    select(rows[Number(row.dataset.i)].span, logs.get(row.dataset.spanId) || []);
  };
  body.addEventListener('click', activate);
  body.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      activate(event);
    }
    const row = event.target.closest('.wf-span');
    if (row && (event.key === 'ArrowLeft' || event.key === 'ArrowRight')) {
      collapse(row, event.key === 'ArrowLeft');
    }
  });
  return { element: h('div', { class: 'waterfall' }, axis, body), rows, t0, colourOf, logs, done };
}

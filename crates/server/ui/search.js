// #/search?q=&since=&limit= : TraceQL search; a syntax error is shown at
// its position in the query; results are traces with their matched spans.

import { api } from './api.js';
import { attributeTable, empty, h, notice, route, seg, table, put } from './dom.js';
import { colour, count, durationNs, time } from './format.js';

const EXAMPLES = [
  '{ span.http.response.status_code = 401 }',
  '{ span.client.address = "198.51.100.9" }',
  '{ status = error } >> { resource.service.name = "auth" }',
  '{ span.url.query =~ ".*(?i)union.*select.*" }',
];

function form(query) {
  const q = h('textarea', {
    name: 'q', id: 'traceql', rows: 2, spellcheck: 'false', 'aria-label': 'TraceQL query',
    placeholder: EXAMPLES[0],
  });
  q.value = query.get('q') || '';
  const since = h('select', { name: 'since', 'aria-label': 'time range' },
    [['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days'], ['30d', 'last 30 days']]
      .map(([value, text]) => h('option', { value, selected: (query.get('since') || '24h') === value }, text)));
  const el = h('form', { class: 'search', id: 'search-form' }, q,
    h('div', { class: 'row' }, since, h('button', { type: 'submit' }, 'Search'),
      h('span', { class: 'sub' }, 'Examples: ',
        EXAMPLES.map((text) => h('a', { href: route('/search', { q: text }), class: 'example' }, h('code', null, text))))));
  // Ctrl+Enter searches from the text area.
  q.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) el.requestSubmit();
  });
  el.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = route('/search', { q: q.value.trim(), since: since.value });
  });
  return el;
}

// The query with a caret under the column the parser stopped at.
function syntaxError(text, error) {
  const position = error.body && error.body.error && error.body.error.position;
  if (!position) return notice('error', error.message);
  const lines = text.split('\n');
  const line = lines[position.line - 1] ?? '';
  const column = Math.max(1, position.column);
  const chars = Array.from(line);
  return notice('error',
    h('div', null, h('strong', null, `Syntax error at line ${position.line}, column ${position.column}`)),
    h('pre', { class: 'query-error', id: 'query-error' },
      chars.slice(0, column - 1).join(''),
      h('mark', { class: 'error-at' }, chars[column - 1] ?? ' '),
      chars.slice(column).join(''), '\n',
      ' '.repeat(column - 1) + '^ ' + error.message));
}

function spanRow(span) {
  const attrs = span.selected && Object.keys(span.selected).length ? span.selected : span.attributes;
  const details = h('details', null, h('summary', null, 'attributes'), attributeTable(attrs));
  return h('tr', null,
    h('td', null, h('span', { class: 'chip', dataset: { service: span.serviceName } }), span.serviceName),
    h('td', null, h('a', { href: route(`/traces/${seg(span.traceId)}`, { span: span.spanId }) }, span.name)),
    h('td', null, span.status.code),
    h('td', { class: 'num' }, durationNs(span.durationNanos)),
    h('td', null, details));
}

function result(trace) {
  const spans = trace.spanSets.flatMap((set) => set.spans);
  const matched = trace.spanSets.reduce((n, set) => n + set.matched, 0);
  return h('article', { class: 'result', dataset: { traceId: trace.traceId } },
    h('header', null,
      h('a', { href: route(`/traces/${seg(trace.traceId)}`), class: 'trace-link' },
        h('code', null, trace.traceId)),
      ` ${trace.rootServiceName || '?'} · ${trace.rootSpanName || '(root not received)'} · `,
      `${time(trace.startTimeUnixNano)} · ${durationNs(trace.durationNanos)} · ${count(trace.spanCount)} spans · ${matched} matched`),
    spans.length ? table(['Service', 'Span', 'Status', 'Duration', ''], spans.map(spanRow), { class: 'list matched' }) : null);
}

export async function render(frame, _parts, query) {
  put(frame, h('h1', null, 'Search'), form(query));
  const text = (query.get('q') || '').trim();
  if (!text) {
    put(frame, empty('Write a TraceQL query (docs/TRACEQL.md) and search.'));
    return;
  }
  let data;
  try {
    data = await api('/api/v1/search?' + new URLSearchParams({ q: text, since: query.get('since') || '24h', limit: query.get('limit') || '50', spss: '10' }));
  } catch (error) {
    if (error.status !== 400) throw error;
    put(frame, syntaxError(text, error));
    return;
  }
  const m = data.metrics;
  put(frame,
    h('p', { class: 'sub', id: 'search-summary' },
      `${data.traces.length} traces · ${count(m.inspectedSpans)} spans in ${count(m.inspectedTraces)} traces inspected`),
    m.partial ? notice('warn', `Partial result: ${m.partial}`) : null,
    data.traces.length ? h('div', { id: 'results' }, data.traces.map(result)) : empty('No trace matches.'));
  for (const chip of frame.querySelectorAll('.chip')) chip.style.background = colour(chip.dataset.service);
}

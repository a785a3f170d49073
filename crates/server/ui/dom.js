// Building the page from data. Every value becomes a text node or an
// attribute set one by one: nothing is ever parsed as HTML, because what
// tracewarden shows (span attributes, log bodies, user agents) is written
// by whoever sends requests to the services it watches.

const SVG_NS = 'http://www.w3.org/2000/svg';

function set(el, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'href') el.setAttribute('href', safeHref(value));
    else if (key === 'value' || key === 'checked' || key === 'selected') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

// Links go to this app's routes or this origin's API only.
function safeHref(value) {
  const text = String(value);
  return text.startsWith('#') || (text.startsWith('/') && !text.startsWith('//')) ? text : '#';
}

function add(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

// h('a', {href: '#/x', class: 'y'}, 'text', child, [more]) -> element.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  if (props) set(el, props);
  add(el, children);
  return el;
}

// The same for SVG elements.
export function svg(tag, props, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  if (props) set(el, props);
  add(el, children);
  return el;
}

// Appends children to `el` (null, false and undefined left out).
export function put(el, ...children) {
  add(el, children);
  return el;
}

// Replaces the children of `el`.
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

// A route link: `#/path` with query parameters (empty ones left out).
export function route(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value != null && value !== '') params.set(key, value);
  }
  const text = params.toString();
  return '#' + path + (text ? '?' + text : '');
}

// A segment of a route path, escaped.
export const seg = encodeURIComponent;

export function table(headers, rows, props) {
  return h('table', props || {},
    h('thead', null, h('tr', null, headers.map((name) => h('th', null, name)))),
    h('tbody', null, rows));
}

export function badge(text, kind) {
  return h('span', { class: 'badge ' + (kind || '') }, text);
}

export function severityBadge(severity) {
  return badge(severity || '?', 'sev-' + String(severity || '').replace(/[^a-z]/g, ''));
}

// A labelled list of facts: [['Rule', value], ...] with empty values skipped.
export function facts(pairs) {
  return h('dl', { class: 'facts' },
    pairs.filter(([, value]) => value != null && value !== '')
      .map(([name, value]) => [h('dt', null, name), h('dd', null, value)]));
}

export function section(title, ...children) {
  return h('section', { class: 'panel' }, h('h2', null, title), children);
}

// A notice: kind is `error`, `warn` or `info`.
export function notice(kind, ...children) {
  return h('div', { class: 'notice ' + kind, role: kind === 'error' ? 'alert' : 'status' }, children);
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

// Attributes (an object of JSON values) as rows of key and value text.
export function attributeTable(attributes, props) {
  const keys = Object.keys(attributes || {}).sort();
  if (!keys.length) return empty('none');
  return h('table', Object.assign({ class: 'attrs' }, props || {}),
    h('tbody', null, keys.map((key) => h('tr', null,
      h('th', null, key), h('td', null, show(attributes[key]))))));
}

// A JSON value as text.
export function show(value) {
  if (value == null) return '';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

// The app: hash routes (shareable, bookmarkable), the key prompt, and the
// frame every view renders into.

import { api, ApiError, key, may, role, setKey, whoami } from './api.js';
import { fill, h, notice } from './dom.js';

// `#/path/a/b?x=1` -> view, decoded path segments, query.
const ROUTES = [
  [/^\/alerts$/, 'alerts', () => import('./alerts.js')],
  [/^\/alerts\/([^/]+)$/, 'alerts', () => import('./alert.js')],
  [/^\/traces\/([^/]+)$/, 'search', () => import('./trace.js')],
  [/^\/actors\/([^/]+)\/(.+)$/, 'alerts', () => import('./actor.js')],
  [/^\/search$/, 'search', () => import('./search.js')],
  [/^\/graph$/, 'graph', () => import('./graph.js')],
  [/^\/(rules|silences|blocks)$/, null, () => import('./lists.js')],
];

const main = document.getElementById('main');
let generation = 0;

function parse() {
  const raw = location.hash.replace(/^#/, '') || '/alerts';
  const [path, search] = raw.split('?');
  return { path, query: new URLSearchParams(search || '') };
}

function highlight(view) {
  for (const link of document.querySelectorAll('#nav a')) {
    link.classList.toggle('active', link.dataset.view === view);
  }
}

// Why a view could not be shown, in words an analyst can act on.
export function explain(error) {
  if (error instanceof ApiError && error.status === 403) {
    return notice('error', h('strong', null, 'Not allowed. '),
      `Your key (role ${role() || 'unknown'}) may not do this: ${error.message}`);
  }
  if (error instanceof ApiError && error.status === 401) {
    return notice('warn', 'An API key is needed. ', error.message);
  }
  return notice('error', error.message || String(error));
}

async function render() {
  const mine = ++generation;
  const { path, query } = parse();
  const found = ROUTES.find(([pattern]) => pattern.test(path));
  if (!found) {
    fill(main, notice('error', `No page at #${path}.`));
    return;
  }
  const [pattern, view, load] = found;
  const parts = path.match(pattern).slice(1).map((p) => {
    try { return decodeURIComponent(p); } catch { return p; }
  });
  highlight(view || parts[0]);
  document.body.dataset.view = view || parts[0];
  document.body.dataset.state = 'loading';
  try {
    await whoami();
    showWho();
    const module = await load();
    // A view renders into a detached frame, shown once complete, unless
    // the user navigated elsewhere meanwhile.
    const frame = h('div', { class: 'view' });
    await module.render(frame, parts, query, () => mine !== generation);
    if (mine !== generation) return;
    main.replaceChildren(frame);
  } catch (error) {
    if (mine !== generation) return;
    if (error instanceof ApiError && error.status === 401) {
      askForKey(error.message);
    } else {
      fill(main, explain(error));
    }
  } finally {
    if (mine === generation) document.body.dataset.state = 'ready';
  }
}

function showWho() {
  const who = document.getElementById('who');
  whoami().then((me) => {
    // Searching and reading traces need an analyst key.
    const search = document.querySelector('#nav a[data-view=search]');
    if (search) search.hidden = !may('investigate');
    fill(who,
      me.auth ? h('span', { class: 'role', title: 'the role of your API key' },
        `${me.key || 'key'} · ${me.role}`) : h('span', { class: 'role' }, 'no keys required'),
      key() ? h('button', {
        class: 'link', type: 'button', onclick: () => { setKey(''); render(); },
      }, 'Forget key') : null);
  }, () => fill(who));
}

function askForKey(reason) {
  document.body.dataset.state = 'ready';
  const input = h('input', {
    type: 'password', name: 'key', autocomplete: 'off', required: true,
    placeholder: 'twk_…', 'aria-label': 'API key', id: 'key-input',
  });
  const form = h('form', { class: 'key-form', id: 'key-form' },
    h('h2', null, 'This server requires an API key'),
    h('p', null, reason ? String(reason) : ''),
    h('p', null, 'Make one with ', h('code', null, 'tracewarden keys create --role analyst'),
      '. It is kept in this tab only (session storage) and sent as a bearer token.'),
    h('label', { for: 'key-input' }, 'API key'), input,
    h('button', { type: 'submit' }, 'Use this key'));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    try {
      await api('/api/v1/whoami');
      render();
    } catch (error) {
      setKey('');
      askForKey(error.message);
    }
  });
  fill(main, form);
  fill(document.getElementById('who'));
  input.focus();
}

window.addEventListener('hashchange', render);
// Views ask for a fresh render after an action (silence, block...).
window.addEventListener('tw:refresh', render);
render();

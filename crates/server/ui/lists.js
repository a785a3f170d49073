// #/rules, #/silences, #/blocks : what is loaded and in force.

import { blockActions } from './actions.js';
import { api, may } from './api.js';
import { badge, empty, h, notice, route, section, seg, severityBadge, table, put } from './dom.js';
import { count, time } from './format.js';

function refresh() {
  window.dispatchEvent(new Event('tw:refresh'));
}

async function rules(frame, query) {
  const data = await api('/api/v1/rules');
  const only = query.get('id');
  const list = only ? data.rules.filter((r) => r.id === only) : data.rules;
  const reload = may('act') ? h('button', {
    type: 'button', class: 'action',
    onclick: async () => {
      try {
        await api('/api/v1/rules/reload', { method: 'POST' });
        refresh();
      } catch (error) {
        put(frame, notice('error', error.message));
      }
    },
  }, 'Reload rule files') : null;
  const r = data.reload;
  put(frame, h('h1', null, 'Rules'),
    h('p', { class: 'sub' }, `${data.rules.filter((x) => x.active).length} active of ${data.rules.length}`,
      r.lastReloadUnixNano ? ` · last reload ${time(r.lastReloadUnixNano)}` : '', ' ', reload),
    r.lastError ? notice('error', 'The last reload failed; the previous rules run: ', h('pre', null, r.lastError)) : null,
    only ? h('p', null, h('a', { href: route('/rules') }, 'All rules')) : null,
    table(['Rule', 'Severity', 'Kind', 'State', 'Matched', 'Fired', 'Alerts'], list.map((rule) => h('tr', { dataset: { rule: rule.id } },
      h('td', null, h('strong', null, rule.id), h('div', { class: 'sub' }, rule.title), rule.tags.map((t) => badge(t, 'tag'))),
      h('td', null, severityBadge(rule.severity)),
      h('td', null, `${rule.kind} on ${rule.source}`),
      h('td', null, rule.active ? badge('active', 'state-firing-ok') : badge('inactive', 'muted'), rule.inactive ? h('div', { class: 'sub' }, rule.inactive) : null,
        rule.exceptions && rule.exceptions.length
          ? h('div', { class: 'sub', dataset: { exceptions: rule.exceptions.join(' ') } },
            `except: ${rule.exceptions.join(', ')} · ${count(rule.counters.excepted)} left out`)
          : null),
      h('td', { class: 'num' }, count(rule.matchedSpans)),
      h('td', { class: 'num' }, count(rule.detections)),
      h('td', null, h('a', { href: route('/alerts', { rule: rule.id }) }, 'alerts')))), { class: 'list', id: 'rules' }));
}

function matchers(list) {
  return list.map((m) => h('code', { class: 'matcher' }, `${m.name}${m.isEqual ? '' : '!'}${m.isRegex ? '=~' : '='}"${m.value}"`));
}

async function silences(frame) {
  const data = await api('/api/v1/silences');
  const expire = (s) => may('act') && s.status.state !== 'expired' ? h('button', {
    type: 'button', class: 'action', 'data-action': 'expire',
    onclick: async (event) => {
      try {
        await api(`/api/v1/silences/${seg(s.id)}`, { method: 'DELETE' });
        refresh();
      } catch (error) {
        event.target.after(notice('error', error.message));
      }
    },
  }, 'Expire') : null;
  put(frame, h('h1', null, 'Silences'),
    h('p', { class: 'sub' }, 'Create one from an alert (Silence…).'),
    data.silences.length ? table(['State', 'Matchers', 'Starts', 'Ends', 'By', 'Comment', ''], data.silences.map((s) => h('tr', null,
      h('td', null, badge(s.status.state, 'silence-' + s.status.state)),
      h('td', null, matchers(s.matchers)),
      h('td', null, time(s.startsAt)), h('td', null, time(s.endsAt)),
      h('td', null, s.createdBy), h('td', null, s.comment), h('td', null, expire(s)))), { class: 'list', id: 'silences' })
      : empty('No silences.'));
}

const BLOCK_TO_ACTOR = { address: 'client.address', user: 'enduser.id', token: 'token' };

async function blocks(frame) {
  put(frame, h('h1', null, 'Blocks'));
  let data;
  try {
    data = await api('/api/v1/blocks');
  } catch (error) {
    if (error.status !== 404) throw error;
    put(frame, notice('info', error.message));
    return;
  }
  const history = await api('/api/v1/blocks/history?limit=50').catch(() => ({ history: [] }));
  // Newest first.
  const entries = (history.history || []).slice().reverse();
  put(frame,
    data.blocks.length ? table(['Kind', 'Value', 'Reason', 'By', 'Since', 'Until', ''], data.blocks.map((b) => {
      const actor = BLOCK_TO_ACTOR[b.kind];
      return h('tr', null, h('td', null, b.kind),
        h('td', null, actor && !b.value.includes('/') ? h('a', { href: route(`/actors/${seg(actor)}/${seg(b.value)}`) }, b.value) : b.value),
        h('td', null, b.reason), h('td', null, b.by), h('td', null, time(b.created)),
        h('td', null, b.until ? time(b.until) : 'until removed'),
        h('td', null, actor ? blockActions(actor, b.value, b) : null));
    }), { class: 'list', id: 'blocks' }) : empty('Nothing is blocked.'),
    section('History', entries.length ? table(['At', 'Action', 'Kind', 'Value', 'By', 'Reason'], entries.map((e) => h('tr', null,
      h('td', null, time(e.at)), h('td', null, e.action), h('td', null, e.kind), h('td', null, e.value),
      h('td', null, e.by), h('td', null, e.reason)))) : empty('No history.')));
}

export async function render(frame, [which], query) {
  if (which === 'rules') return rules(frame, query);
  if (which === 'silences') return silences(frame);
  return blocks(frame);
}

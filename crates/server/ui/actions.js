// What an admin key may do from the views: acknowledge and silence an
// alert, block and unblock an actor. Each is a small form in place; the
// view is rendered again when it succeeds.

import { api, may } from './api.js';
import { h, notice, route, seg } from './dom.js';

// Alert actor labels (rule fields with dots as underscores) -> the
// actor kinds of the timeline.
const ACTOR_KINDS = {
  client_address: 'client.address',
  enduser_id: 'enduser.id',
  session_id: 'session.id',
  token: 'token',
  tracewarden_token_fingerprint: 'token',
};

// Actor kinds -> block kinds (docs/PREVENTION.md).
const BLOCK_KINDS = { 'client.address': 'address', 'enduser.id': 'user', token: 'token' };

export function actorKind(label) {
  return ACTOR_KINDS[label] || null;
}

export function blockKind(kind) {
  return BLOCK_KINDS[kind] || null;
}

export function actorLink(kind, value) {
  return route(`/actors/${seg(kind)}/${seg(value)}`);
}

function refresh() {
  window.dispatchEvent(new Event('tw:refresh'));
}

// A button that opens `form()` in `slot`; the form reports errors there.
function opener(label, slot, form, testid) {
  return h('button', {
    type: 'button', class: 'action', 'data-action': testid,
    onclick: () => slot.replaceChildren(form()),
  }, label);
}

function submitting(form, slot, run) {
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = form.querySelector('button[type=submit]');
    if (button) button.disabled = true;
    try {
      await run(new FormData(form));
      refresh();
    } catch (error) {
      if (button) button.disabled = false;
      const why = error.status === 403
        ? `Not allowed for your key: ${error.message}` : error.message;
      slot.append(notice('error', why));
    }
  });
  return form;
}

function durationSelect(name, choices) {
  return h('select', { name },
    choices.map(([value, text]) => h('option', { value }, text)));
}

// Acknowledge and Silence for one alert; nothing for keys that may not act.
export function alertActions(alert) {
  if (!may('act')) return null;
  const slot = h('div', { class: 'action-slot' });
  const ack = () => submitting(h('form', { class: 'inline' },
    h('input', { name: 'comment', placeholder: 'comment (optional)', 'aria-label': 'comment' }),
    h('button', { type: 'submit' }, 'Acknowledge')), slot,
  (data) => api(`/api/v1/alerts/${seg(alert.fingerprint)}/ack`, {
    method: 'POST', body: { by: 'web UI', comment: data.get('comment') || '' },
  }));
  const silence = () => {
    const labels = Object.assign({ alertname: alert.ruleId }, alert.actor || {});
    const matchers = Object.entries(labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    return submitting(h('form', { class: 'inline' },
      h('span', null, 'Silence ', matchers.map((m) => h('code', null, `${m.name}="${m.value}"`)), ' for '),
      durationSelect('duration', [['1h', '1 hour'], ['4h', '4 hours'], ['24h', '1 day'], ['7d', '1 week']]),
      h('input', { name: 'comment', placeholder: 'why', required: true, 'aria-label': 'why' }),
      h('button', { type: 'submit' }, 'Silence')), slot,
    (data) => api('/api/v1/silences', {
      method: 'POST',
      body: { matchers, duration: data.get('duration'), createdBy: 'web UI', comment: data.get('comment') },
    }));
  };
  return h('div', { class: 'actions' },
    alert.status === 'firing' && !alert.acknowledged ? opener('Acknowledge…', slot, ack, 'ack') : null,
    opener('Silence…', slot, silence, 'silence'),
    slot);
}

// Block (or unblock, when `current` is a block in force) an actor.
export function blockActions(kind, value, current) {
  const target = blockKind(kind);
  if (!target || !may('act') || value === '[masked]') return null;
  const slot = h('div', { class: 'action-slot' });
  if (current) {
    const unblock = () => submitting(h('form', { class: 'inline' },
      h('input', { name: 'reason', placeholder: 'why unblock', required: true, 'aria-label': 'reason' }),
      h('button', { type: 'submit' }, 'Unblock')), slot,
    (data) => api(`/api/v1/blocks/${seg(target)}/${seg(value)}?` +
      new URLSearchParams({ by: 'web UI', reason: data.get('reason') }), { method: 'DELETE' }));
    return h('div', { class: 'actions' }, opener('Unblock…', slot, unblock, 'unblock'), slot);
  }
  const block = () => submitting(h('form', { class: 'inline' },
    h('span', null, `Block ${target} `, h('code', null, value), ' for '),
    durationSelect('duration', [['1h', '1 hour'], ['24h', '1 day'], ['7d', '1 week'], ['', 'until removed']]),
    h('input', { name: 'reason', placeholder: 'why', required: true, 'aria-label': 'reason' }),
    h('button', { type: 'submit' }, 'Block')), slot,
  (data) => api('/api/v1/blocks', {
    method: 'POST',
    body: { kind: target, value, duration: data.get('duration') || null, reason: data.get('reason'), by: 'web UI' },
  }));
  return h('div', { class: 'actions' }, opener('Block…', slot, block, 'block'), slot);
}

// The block in force for an actor, if any (blocks off: none).
export async function blockOf(kind, value) {
  const target = blockKind(kind);
  if (!target) return null;
  try {
    const list = await api('/api/v1/blocks');
    return list.blocks.find((b) => b.kind === target && b.value === value) || null;
  } catch {
    return null;
  }
}

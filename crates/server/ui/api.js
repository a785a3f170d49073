// Talking to the API: the key (kept in sessionStorage, sent as a bearer
// token), errors with their status, and what the key's role may do.

const KEY = 'tracewarden.key';

export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

export function key() {
  return sessionStorage.getItem(KEY) || '';
}

export function setKey(value) {
  if (value) sessionStorage.setItem(KEY, value);
  else sessionStorage.removeItem(KEY);
  identity = null;
}

// The API's errors are `{"error": {"message"}}` (or a plain string).
function message(status, body) {
  const error = body && body.error;
  if (typeof error === 'string') return error;
  if (error && typeof error.message === 'string') return error.message;
  return `HTTP ${status}`;
}

// `api('/api/v1/alerts', {method, body})`: the JSON answer, or an ApiError.
export async function api(path, options) {
  const opts = options || {};
  const headers = { Accept: 'application/json' };
  const stored = key();
  if (stored) headers.Authorization = 'Bearer ' + stored;
  let body;
  if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.body);
  }
  const response = await fetch(path, { method: opts.method || 'GET', headers, body });
  const type = response.headers.get('content-type') || '';
  let data = null;
  if (type.includes('json')) data = await response.json().catch(() => null);
  else if (opts.text) data = await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, message(response.status, data), data);
  }
  return data;
}

// A GET whose 404 means "this server has no such endpoint" (an older
// build): null then, instead of an error.
export async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    if (error.status === 404 && /no route/.test(error.message)) return null;
    throw error;
  }
}

let identity = null;

// `{role, key, auth}` from /api/v1/whoami (cached until the key changes).
export async function whoami() {
  if (!identity) identity = await api('/api/v1/whoami');
  return identity;
}

const RANK = { ingest: 0, viewer: 1, analyst: 2, admin: 3 };

// Whether the current role may: `read` (alerts, rules...), `investigate`
// (traces, search, payloads) or `act` (silence, acknowledge, block).
export function may(what) {
  const role = identity ? identity.role : 'viewer';
  if (what === 'act') return role === 'admin';
  if (what === 'investigate') return RANK[role] >= RANK.analyst;
  return RANK[role] >= RANK.viewer;
}

export function role() {
  return identity ? identity.role : '';
}

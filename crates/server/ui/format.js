// Times and durations. The API writes Unix nanoseconds as strings (exact
// past 2^53); the UI works in milliseconds, which is precise enough to show.

export function nsToMs(ns) {
  if (ns == null || ns === '') return NaN;
  try {
    const big = BigInt(ns);
    return Number(big / 1000000n) + Number(big % 1000000n) / 1e6;
  } catch {
    return NaN;
  }
}

// A time given as nanoseconds (string), RFC 3339 or milliseconds.
export function toMs(value) {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return NaN;
  return /^\d+$/.test(value) ? nsToMs(value) : Date.parse(value);
}

function pad(n, width) {
  return String(n).padStart(width || 2, '0');
}

// `2026-12-04 21:03:07.123` in UTC (what the API and the logs use).
export function time(value) {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.` +
    `${pad(d.getUTCMilliseconds(), 3)}`;
}

// How long ago, roughly: `3 min ago`.
export function ago(value) {
  const ms = toMs(value);
  if (!Number.isFinite(ms)) return '';
  const s = Math.round((Date.now() - ms) / 1000);
  if (s < 0) return 'in the future';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

// A duration in milliseconds: `850 µs`, `12.3 ms`, `4.20 s`.
export function duration(ms) {
  if (!Number.isFinite(ms)) return '';
  if (ms < 1) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function durationNs(ns) {
  return duration(nsToMs(ns));
}

export function count(n) {
  return n == null ? '' : Number(n).toLocaleString('en');
}

// A stable colour for a service name (hue from a string hash).
export function colour(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 55% 52%)`;
}

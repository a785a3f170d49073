// The UI's pure logic under node's test runner: the waterfall's span order
// and the service graph's layers (crates/tracewarden/tests/ui.rs runs it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { order } from '../../../server/ui/waterfall.js';
import { layers } from '../../../server/ui/graph.js';
import { duration, nsToMs, time } from '../../../server/ui/format.js';

const span = (id, parent, start) => ({ spanId: id, parentSpanId: parent, startTimeUnixNano: String(start) });

test('spans come in tree order, children by start time', () => {
  const spans = [span('r', null, 0), span('b', 'r', 20), span('a', 'r', 10), span('a1', 'a', 11), span('b1', 'b', 21)];
  const rows = order(spans);
  assert.deepEqual(rows.map((r) => r.span.spanId), ['r', 'a', 'a1', 'b', 'b1']);
  assert.deepEqual(rows.map((r) => r.depth), [0, 1, 2, 1, 2]);
  assert.ok(rows.every((r) => !r.orphan));
});

test('a span whose parent is missing is a root marked orphan', () => {
  const rows = order([span('r', null, 0), span('x', 'gone', 5), span('x1', 'x', 6)]);
  assert.deepEqual(rows.map((r) => [r.span.spanId, r.depth, r.orphan]), [['r', 0, false], ['x', 0, true], ['x1', 1, false]]);
});

test('a parent cycle and a self-parent still show every span once', () => {
  const rows = order([span('a', 'b', 0), span('b', 'a', 1), span('s', 's', 2)]);
  assert.deepEqual(rows.map((r) => r.span.spanId).sort(), ['a', 'b', 's']);
});

test('a chain of 5,000 spans does not overflow the stack', () => {
  const spans = Array.from({ length: 5000 }, (_, i) => span(`s${i}`, i ? `s${i - 1}` : null, i));
  const rows = order(spans);
  assert.equal(rows.length, 5000);
  assert.equal(rows[4999].depth, 4999);
});

test('services are layered from the entry points', () => {
  const services = ['gw', 'weather', 'location', 'partner', 'island'].map((name) => ({ name, entry: name === 'gw' }));
  const edges = [
    { caller: 'gw', callee: 'weather' }, { caller: 'weather', callee: 'location' },
    { caller: 'gw', callee: 'location' }, { caller: 'location', callee: 'partner' },
    { caller: 'partner', callee: 'gw' },
  ];
  const layer = layers(services, edges);
  assert.deepEqual(Object.fromEntries(layer), { gw: 0, weather: 1, location: 1, partner: 2, island: 3 });
});

test('without entry points, uncalled services start the layers', () => {
  const layer = layers([{ name: 'a' }, { name: 'b' }], [{ caller: 'a', callee: 'b' }]);
  assert.deepEqual(Object.fromEntries(layer), { a: 0, b: 1 });
});

test('nanosecond strings keep their precision past 2^53', () => {
  assert.equal(nsToMs('1733340000123456789'), 1733340000123.456789);
  assert.ok(Number.isNaN(nsToMs('not a time')));
  assert.equal(time('1733340000123456789'), '2024-12-04 19:20:00.123');
  assert.equal(duration(0.5), '500 µs');
  assert.equal(duration(1500), '1.50 s');
});

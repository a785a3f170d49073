// The web UI end to end in Debian's chromium (headless), driven by
// playwright-core. crates/tracewarden/tests/ui.rs starts tracewarden with
// fixture data and runs this script; it can also be run by hand against a
// server holding the same fixtures (see docs/UI.md).
//
// Environment:
//   TW_URL          the API base URL, e.g. http://127.0.0.1:7700
//   TW_SCENARIO     `open` (no keys) or `keys` (keys required)
//   TW_FIXTURE      JSON: {bigTraceId, viewerKey, adminKey, attacker}
//   TW_SCREENSHOTS  directory for the screenshots
//   TW_CHROMIUM     the browser (default /usr/bin/chromium)
//
// Prints one line per check and a closing `N passed, 0 failed`; exits 1 at
// the first failed check.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.TW_URL;
const scenario = process.env.TW_SCENARIO || 'open';
const fixture = JSON.parse(process.env.TW_FIXTURE || '{}');
const shots = process.env.TW_SCREENSHOTS || 'ui-screenshots';
mkdirSync(shots, { recursive: true });

let passed = 0;
function check(condition, what, detail) {
  if (!condition) {
    console.log(`FAIL ${what}${detail === undefined ? '' : ': ' + JSON.stringify(detail)}`);
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
  passed += 1;
  console.log(`ok   ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.TW_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
context.setDefaultTimeout(20000);
const page = await context.newPage();
const problems = [];
page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
page.on('console', (message) => {
  if (message.type() === 'error' && !/status of 4\d\d/.test(message.text())) {
    problems.push(`console: ${message.text()}`);
  }
});

async function shot(name) {
  const path = join(shots, `${scenario}-${name}.png`);
  await page.screenshot({ path, fullPage: false });
  console.log(`     screenshot ${path}`);
}

// Navigates to a route and waits until the view has rendered.
async function go(hash) {
  await page.evaluate((h) => { document.body.dataset.state = 'loading'; location.hash = h; }, hash);
  await page.waitForSelector('body[data-state=ready]');
}

async function text(selector) {
  return (await page.locator(selector).first().textContent()) || '';
}

async function scenarioOpen() {
  // First load: every byte the shell pulls in until the alerts are shown.
  const loaded = [];
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes().catch(() => null);
    if (sizes) loaded.push({ url: request.url(), bytes: sizes.responseBodySize, headers: sizes.responseHeadersSize });
  });
  await page.goto(base + '/');
  await page.waitForSelector('#alerts');
  const assets = loaded.filter((r) => !r.url.includes('/api/'));
  const bytes = assets.reduce((n, r) => n + r.bytes, 0);
  console.log(`     first load: ${assets.length} files, ${bytes} bytes on the wire (body), ` +
    `${assets.reduce((n, r) => n + r.bytes + r.headers, 0)} with headers`);
  check(bytes > 0 && bytes < 300000, 'the first load is under 300 KB', bytes);
  check(page.url().endsWith('#/alerts') || page.url().endsWith('/'), 'the shell opens on the alerts', page.url());
  const alerts = await text('#alerts');
  check(alerts.includes('brute-force-login'), 'the brute force alert is listed', alerts.slice(0, 300));
  check(alerts.includes('scanner-user-agent'), 'the scanner alert is listed');
  check(await page.locator('#alerts [data-action=silence]').count() > 0, 'an admin (no keys) sees Silence');
  await shot('alerts');

  // Filtering changes the URL, which can be shared.
  await page.selectOption('#alert-filters select[name=severity]', 'high');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alert-filters button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
  check(page.url().includes('severity=high'), 'the filter is in the URL', page.url());
  const severities = await page.locator('#alerts tbody tr td:first-child').allTextContents();
  check(severities.length > 0 && severities.every((s) => s === 'high'), 'only high alerts are shown', severities);

  // One alert: evidence, actor, traces.
  await go('#/alerts?rule=brute-force-login');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alerts a.alert-title');
  await page.waitForSelector('body[data-state=ready]');
  check(/#\/alerts\/[0-9a-f]+$/.test(page.url()), 'the alert has its own URL', page.url());
  const detail = await text('main');
  check(detail.includes(fixture.attacker), 'the alert shows its actor', fixture.attacker);
  check(detail.includes('Matching events'), 'the alert shows its evidence');
  check(await page.locator('#alert-traces a').count() > 0, 'the alert lists its traces');
  const alertUrl = page.url();
  await shot('alert');

  // Its trace: the waterfall, a span's attributes, the alert citing it.
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alert-traces a');
  await page.waitForSelector('body[data-state=ready]');
  await page.waitForSelector('#waterfall .wf-span');
  check(/#\/traces\/[0-9a-f]{32}$/.test(page.url()), 'the trace has its own URL', page.url());
  await page.click('#waterfall .wf-span');
  const attributes = await text('#span-attributes');
  check(attributes.includes('client.address') && attributes.includes(fixture.attacker), 'a span shows its attributes on click', attributes.slice(0, 200));
  check(page.url().includes('span='), 'the selected span is in the URL', page.url());
  check((await text('#trace-alerts')).includes('brute-force-login'), 'the trace lists the alert citing it');
  await shot('trace');

  // The actor's timeline, from the alert.
  await go(alertUrl.slice(alertUrl.indexOf('#')));
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('a.timeline-link');
  await page.waitForSelector('body[data-state=ready]');
  check(page.url().includes('#/actors/client.address/'), 'the timeline link opens the actor', page.url());
  const actorPage = await text('main');
  const requests = await page.locator('#timeline tr.request').count();
  check(requests >= 10, 'the timeline lists the actor\'s requests', requests);
  check(actorPage.includes('401'), 'the timeline shows the refused logins');
  check((await text('#actor-alerts')).includes('brute-force-login'), 'the timeline names the actor\'s alerts');
  // Block the actor from its page, then see it in the blocks.
  await page.click('[data-action=block]');
  await page.fill('.action-slot input[name=reason]', 'e2e: brute force');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('.action-slot button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
  check((await text('main')).includes('Blocked (address)'), 'the actor is blocked from its page');
  await shot('actor');
  await go(alertUrl.slice(alertUrl.indexOf('#')));
  check((await text('#alert-response')).includes('block'), 'the alert shows the response taken', await text('#alert-response'));
  await go('#/blocks');
  check((await text('#blocks')).includes(fixture.attacker), 'the block is listed');
  await shot('blocks');

  // TraceQL search, then a syntax error at its position.
  await go('#/search?' + new URLSearchParams({ q: `{ span.client.address = "${fixture.attacker}" }` }));
  const results = await page.locator('#results article.result').count();
  check(results >= 10, 'the search finds the attacker\'s traces', results);
  await shot('search');
  await page.fill('#traceql', '{ span.a = }');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#search-form button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
  const error = await text('main .notice.error');
  check(error.includes('line 1, column 12'), 'the syntax error says where', error);
  check((await text('#query-error mark')) === '}', 'the error marks the character', await text('#query-error mark'));
  await shot('search-error');

  // A bearer token's alert names it by fingerprint and opens its timeline.
  await go('#/alerts?rule=excessive-request-rate-token');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alerts a.alert-title');
  await page.waitForSelector('body[data-state=ready]');
  check((await text('main')).includes(fixture.tokenFingerprint), 'the token alert shows the fingerprint', fixture.tokenFingerprint);
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('a.timeline-link');
  await page.waitForSelector('body[data-state=ready]');
  check(page.url().includes('#/actors/token/sha256'), 'the token alert links the token\'s timeline', page.url());
  const tokenRequests = await page.locator('#timeline tr.request').count();
  check(tokenRequests >= 200, 'the token timeline lists its requests', tokenRequests);
  check((await text('#actor-alerts')).includes('excessive-request-rate-token'), 'the token timeline names its alert');
  await shot('token');

  // Attacker-controlled values render as text.
  await go(`#/traces/${fixture.xssTraceId}`);
  await page.click('#waterfall .wf-span');
  const shown = await text('#span-attributes');
  check(shown.includes('<img src=x onerror='), 'markup in an attribute is shown as text', shown.slice(0, 200));
  check(await page.evaluate(() => window.__pwned === undefined), 'markup in an attribute does not run');
  check(await page.locator('#span-detail img').count() === 0, 'no element is made from an attribute');
  await page.click('#trace-payloads button');
  await page.waitForSelector('pre.payload');
  check((await text('pre.payload')).includes('<img src=x onerror='), 'a payload opens from the trace, as text');
  check(await page.locator('.payload-view img').count() === 0 && await page.evaluate(() => window.__pwned === undefined),
    'markup in a payload does not run');
  await shot('trace-payload');

  // Silence and acknowledge.
  await go('#/alerts?rule=scanner-user-agent');
  await page.click('#alerts [data-action=ack]');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alerts .action-slot button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
  check((await text('#alerts')).includes('acknowledged'), 'an alert is acknowledged from the list');
  await page.click('#alerts [data-action=silence]');
  await page.fill('#alerts .action-slot input[name=comment]', 'e2e: known scanner');
  await page.evaluate(() => { document.body.dataset.state = 'loading'; });
  await page.click('#alerts .action-slot button[type=submit]');
  await page.waitForSelector('body[data-state=ready]');
  await go('#/silences');
  const silences = await text('#silences');
  check(silences.includes('active') && silences.includes('e2e: known scanner'), 'the silence is active', silences.slice(0, 200));
  await shot('silences');

  // Rules with their counters; the service graph.
  await go('#/rules');
  const rule = await text('#rules tr[data-rule=brute-force-login]');
  check(rule.includes('active'), 'the rules show their state', rule);
  check(rule.includes('except: ui-exception · 0 left out'), 'the rules show their exceptions', rule);
  await shot('rules');
  await go('#/graph');
  check(await page.locator('#service-graph g.node[data-service=gateway]').count() === 1, 'the graph draws the gateway');
  check(await page.locator('#service-graph g.node.entry[data-service=gateway]').count() === 1, 'the gateway is an entry point');
  check(await page.locator('#service-graph path.edge').count() > 0, 'the graph draws the calls between services');
  check((await text('#edges')).includes('orders'), 'the edges are listed');
  await shot('graph');

  // A 5,000-span trace: the waterfall's time to show, then to hold every row.
  const times = [];
  for (let run = 0; run < 3; run++) {
    await go('#/alerts');
    const took = await page.evaluate(async (id) => {
      performance.clearMeasures();
      const t0 = performance.now();
      document.body.dataset.state = 'loading';
      location.hash = `#/traces/${id}`;
      const until = (test) => new Promise((resolve) => {
        const wait = () => (test() ? resolve() : setTimeout(wait, 2));
        wait();
      });
      await until(() => document.body.dataset.state === 'ready');
      // Until the next frame is painted.
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      const shown = performance.now() - t0;
      await until(() => document.querySelector('#waterfall[data-complete]'));
      await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
      const measure = (name) => (performance.getEntriesByName(name)[0] || { duration: NaN }).duration;
      return { shown, complete: performance.now() - t0, build: measure('tw:waterfall'), all: measure('tw:waterfall-complete') };
    }, fixture.bigTraceId);
    times.push(took);
  }
  const rows = await page.locator('#waterfall .wf-span').count();
  check(rows === 5000, 'the 5,000-span trace is drawn whole', rows);
  const median = (key) => times.map((t) => t[key]).sort((a, b) => a - b)[1].toFixed(0);
  console.log(`     waterfall of 5000 spans (median of 3): first rows built in ${median('build')} ms, ` +
    `shown (fetch + build + paint) ${median('shown')} ms; every row built ${median('all')} ms, ` +
    `painted ${median('complete')} ms after navigation`);
  // Collapsing the root hides every call below it; expanding shows them.
  const visible = () => page.evaluate(() => document.querySelectorAll('#waterfall .wf-span:not([hidden])').length);
  await page.click('#waterfall .wf-span .wf-toggle >> nth=0');
  await page.waitForSelector('#waterfall .wf-span.collapsed');
  check(await visible() === 1, 'collapsing the root hides its calls', await visible());
  await shot('trace-5000-collapsed');
  await page.click('#waterfall .wf-span .wf-toggle >> nth=0');
  await page.waitForFunction(() => document.querySelectorAll('#waterfall .wf-span:not([hidden])').length === 5000);
  check(true, 'expanding it shows them again');
  // A subtree collapsed inside stays collapsed when its parent opens again.
  const row = (i) => `#waterfall .wf-span[data-i="${i}"]`;
  await page.click(`${row(1)} .wf-toggle`);
  await page.click(`${row(0)} .wf-toggle`);
  await page.waitForSelector(`${row(1)}[hidden]`, { state: 'attached' });
  await page.click(`${row(0)} .wf-toggle`);
  await page.waitForSelector(`${row(1)}:not([hidden])`);
  check(await page.locator(row(2)).isHidden(), 'a collapsed subtree stays collapsed under a reopened parent');
  await page.mouse.wheel(0, 40000);
  await shot('trace-5000');
}

async function scenarioKeys() {
  await page.goto(base + '/');
  await page.waitForSelector('#key-form');
  check(true, 'the page asks for a key');
  await shot('key-prompt');
  await page.fill('#key-input', 'twk_not_a_key');
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#key-form');
  await page.waitForFunction(() => document.querySelector('#key-form').textContent.includes('unknown API key'));
  check(true, 'a wrong key is refused with the reason');

  // A viewer: alerts with actors masked, no actions, traces refused.
  await page.fill('#key-input', fixture.viewerKey);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#alerts');
  check((await text('#who')).includes('viewer'), 'the role is shown', await text('#who'));
  check(await page.locator('[data-action=silence], [data-action=ack]').count() === 0, 'a viewer sees no Silence or Acknowledge');
  check(await page.locator('#nav a[data-view=search]').isHidden(), 'a viewer is not offered the search');
  check((await text('#alerts')).includes('[masked]'), 'a viewer sees actors masked');
  await shot('viewer-alerts');
  await go(`#/traces/${fixture.bigTraceId}`);
  const refused = await text('main .notice.error');
  check(refused.includes('Not allowed') && refused.includes('viewer'), 'a trace is refused to a viewer, clearly', refused);
  await shot('viewer-403');
  check(await page.evaluate(() => sessionStorage.getItem('tracewarden.key') !== null), 'the key is kept in sessionStorage');

  // Forget it; an admin key brings the actions.
  await go('#/alerts');
  await page.click('#who button');
  await page.waitForSelector('#key-form');
  await page.fill('#key-input', fixture.adminKey);
  await page.click('#key-form button[type=submit]');
  await page.waitForSelector('#alerts');
  check((await text('#who')).includes('admin'), 'the new role is shown', await text('#who'));
  check(await page.locator('#alerts [data-action=silence]').count() > 0, 'an admin sees Silence');
  check((await text('#alerts')).includes(fixture.attacker), 'an admin sees the actor');
  await shot('admin-alerts');
}

try {
  if (scenario === 'keys') await scenarioKeys();
  else await scenarioOpen();
  check(problems.length === 0, 'no script error on any page', problems);
} catch (error) {
  console.log(`FAIL ${error.message}`);
  await shot('failure').catch(() => {});
  console.log(`${passed} passed, 1 failed`);
  process.exit(1);
} finally {
  await browser.close();
}
console.log(`${passed} passed, 0 failed`);

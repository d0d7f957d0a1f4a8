// page_test.mjs — drives the hypervisor's web page (hypervisor/web/) in headless Chromium
// through playwright-core: logs in (after one wrong password), waits until both visors are
// online on the map, opens visor A with a click on its node, adds an stcp transport to B with
// the form, sees it in A's transport list and as an up edge on the map, stops and starts an
// app of A, opens its logs, changes the password and back (the second change needs the
// session and CSRF token the first one rotated), and logs out (after which /api/visors
// answers 401). Saves
// screenshots (PNG) into $SW_TEST_LOG_DIR.
//
//   node page_test.mjs URL PASSWORD PK_A PK_B ADDR_B [APP]
//
// or the same through HV_URL, HV_PASSWORD, HV_VISOR_A, HV_VISOR_B, HV_ADDR_B, HV_APP (APP:
// the app of A to stop and start; default the first one listed). Other settings:
// PLAYWRIGHT_PREFIX (where `npm install --prefix` put playwright-core), CHROMIUM (the browser,
// default /usr/bin/chromium), HV_PAGE_TIMEOUT_MS (whole run, default 60000),
// HV_SKIP_BAD_LOGIN=1 (no wrong-password attempt, e.g. when the login limit is spent).
// Exits 0 on success; 1 with a "FAIL: ..." line on any failure; 2 on a usage error.
// Normally run through page_test.sh, which installs playwright-core first.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const started = Date.now();
const log = (m) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);

function usage(msg) {
  console.error(`page_test.mjs: ${msg}`);
  console.error('usage: node page_test.mjs URL PASSWORD PK_A PK_B ADDR_B [APP]');
  process.exit(2);
}

const argv = process.argv.slice(2);
const url = argv[0] || process.env.HV_URL;
const password = argv[1] ?? process.env.HV_PASSWORD;
const pkA = (argv[2] || process.env.HV_VISOR_A || '').toLowerCase();
const pkB = (argv[3] || process.env.HV_VISOR_B || '').toLowerCase();
const addrB = argv[4] || process.env.HV_ADDR_B;
let appName = argv[5] || process.env.HV_APP || '';
if (!url || !/^https?:\/\//.test(url)) usage('URL (http://HOST:PORT) is required');
if (password === undefined || password === '') usage('PASSWORD is required');
for (const [n, v] of [['PK_A', pkA], ['PK_B', pkB]]) if (!/^[0-9a-f]{64}$/.test(v)) usage(`${n} must be 64 hex characters`);
if (pkA === pkB) usage('PK_A and PK_B must differ');
if (!addrB || !/^[^\s:]+:\d+$/.test(addrB)) usage('ADDR_B (HOST:PORT of B\'s stcp listener) is required');

const shotDir = process.env.SW_TEST_LOG_DIR || process.env.HV_SHOT_DIR || '.';
const totalMs = Number(process.env.HV_PAGE_TIMEOUT_MS) || 60000;
const prefix = process.env.PLAYWRIGHT_PREFIX || process.cwd();
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

let chromium;
try {
  const require = createRequire(path.join(path.resolve(prefix), 'node_modules', 'noop.js'));
  ({ chromium } = require('playwright-core'));
} catch (e) {
  console.log(`FAIL: playwright-core is not installed under ${prefix} (npm install --prefix ${prefix} playwright-core): ${e.message}`);
  process.exit(1);
}

let browser = null;
let page = null;
let step = 'start';
const problems = []; // uncaught page errors and CSP refusals

async function shot(name) {
  if (!page) return null;
  fs.mkdirSync(shotDir, { recursive: true });
  const file = path.join(shotDir, name);
  await page.screenshot({ path: file, fullPage: true, timeout: 5000 });
  log(`screenshot: ${file}`);
  return file;
}

async function fail(msg) {
  console.log(`FAIL: ${step}: ${msg}`);
  try {
    if (page) {
      const status = await page.locator('[data-testid="status"]').textContent({ timeout: 1000 }).catch(() => '');
      if (status) console.log(`page status line: ${status}`);
      await shot('hypervisor-page-failure.png');
    }
  } catch (e) {
    console.log(`(no failure screenshot: ${e.message.split('\n')[0]})`);
  }
  if (browser) await browser.close().catch(() => {});
  process.exit(1);
}

const watchdog = setTimeout(() => { fail(`the whole check took longer than ${totalMs} ms`); }, totalMs);

const sel = {
  node: (pk, online) => `[data-testid="map-node"][data-pk="${pk}"]${online ? '[data-online="true"]' : ''}`,
  edge: (a, b, type, up) => {
    const [x, y] = [a, b].sort();
    return `[data-testid="map-edge"][data-a="${x}"][data-b="${y}"][data-type="${type}"]${up ? '[data-up="true"]' : ''}`;
  },
  tpRow: (pk) => `[data-testid="transport-row"][data-remote-pk="${pk}"][data-type="stcp"]`,
  appRow: (name) => `[data-testid="app-row"][data-name="${name.replace(/["\\]/g, '\\$&')}"]`,
};

// state 'attached' for SVG edges: a straight vertical or horizontal line has an empty box,
// which Playwright counts as invisible.
async function visible(selector, what, timeout, state) {
  try {
    await page.locator(selector).first().waitFor({ state: state || 'visible', timeout: timeout || 15000 });
  } catch (e) {
    await fail(`${what} did not show (${selector})`);
  }
}

async function run() {
  step = 'launch chromium';
  log(`${step} (${executablePath})`);
  for (let attempt = 1; !browser; attempt++) {
    try {
      browser = await chromium.launch({
        executablePath,
        headless: true,
        timeout: 15000,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
          '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
      });
    } catch (e) {
      if (attempt >= 2) throw e;
      log(`chromium did not start (${e.message.split('\n')[0]}); once more`);
    }
  }
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to/i.test(m.text())) problems.push(`console: ${m.text()}`);
  });

  step = 'open the page';
  log(`${step}: ${url}`);
  const resp = await page.goto(url, { waitUntil: 'domcontentloaded' });
  if (!resp || resp.status() !== 200) await fail(`GET ${url} answered ${resp ? resp.status() : 'nothing'}`);
  const csp = resp.headers()['content-security-policy'] || '';
  if (!/default-src 'self'/.test(csp)) await fail(`the page has no Content-Security-Policy default-src 'self' (got "${csp}")`);
  await visible('[data-testid="login-form"]', 'the login form');

  if (process.env.HV_SKIP_BAD_LOGIN !== '1') {
    step = 'log in with a wrong password';
    log(step);
    await page.getByLabel('Username', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill(`${password}-wrong`);
    await page.getByTestId('login-submit').click();
    try {
      await page.waitForFunction(() => document.querySelector('[data-testid="login-error"]').textContent.trim() !== '', null, { timeout: 10000 });
    } catch (e) {
      await fail('no error message after a wrong password');
    }
    const msg = (await page.getByTestId('login-error').textContent()).trim();
    if (!/wrong username or password/i.test(msg)) await fail(`unexpected message after a wrong password: "${msg}"`);
    if (await page.getByTestId('network-view').isVisible()) await fail('the network view opened after a wrong password');
  }

  step = 'log in';
  log(step);
  await page.getByLabel('Username', { exact: true }).fill('admin');
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByTestId('login-submit').click();
  try {
    await page.getByTestId('network-map').waitFor({ state: 'visible', timeout: 10000 });
  } catch (e) {
    const msg = await page.getByTestId('login-error').textContent().catch(() => '');
    await fail(`the map did not show after logging in${msg ? `; login says "${msg}"` : ''}`);
  }

  step = 'both visors online on the map';
  log(step);
  await visible(sel.node(pkA, true), `visor A ${pkA.slice(0, 8)} (online)`, 20000);
  await visible(sel.node(pkB, true), `visor B ${pkB.slice(0, 8)} (online)`, 20000);
  await visible(`[data-testid="visor-row"][data-pk="${pkA}"]`, 'visor A in the list');
  await visible(`[data-testid="visor-row"][data-pk="${pkB}"]`, 'visor B in the list');
  step = 'the membership column (the test network is open)';
  log(step);
  await visible(`[data-testid="visor-row"][data-pk="${pkA}"] [data-testid="visor-membership"]:text-is("open network")`,
    'visor A\'s membership "open network" in the list', 20000);

  step = 'open visor A from the map';
  log(step);
  await page.locator(sel.node(pkA, true)).click();
  await visible('[data-testid="visor-view"]', 'the visor page');
  const shown = (await page.getByTestId('visor-pk').textContent()).trim();
  if (shown !== pkA) await fail(`the visor page shows ${shown}, not ${pkA}`);
  await visible('[data-testid="app-row"]', 'the apps of visor A');
  const had = await page.locator(sel.tpRow(pkB)).count();
  if (had) log(`note: A already had an stcp transport to B`);

  step = 'add an stcp transport A -> B';
  log(`${step} (${addrB})`);
  await page.getByLabel('Remote public key', { exact: true }).fill(pkB);
  await page.getByLabel('Type', { exact: true }).selectOption('stcp');
  await page.getByLabel(/^Address/).fill(addrB);
  await page.getByTestId('transport-add').click();
  await visible(sel.tpRow(pkB), 'the new transport in the list of A', 25000);
  try {
    await page.locator(`${sel.tpRow(pkB)}[data-state="up"]`).waitFor({ state: 'visible', timeout: 15000 });
  } catch (e) {
    const st = await page.locator(sel.tpRow(pkB)).first().getAttribute('data-state').catch(() => '?');
    await fail(`the transport to B stayed "${st}" in the list of A`);
  }
  const status = (await page.getByTestId('status').textContent()).trim();
  log(`status line: "${status}"`);

  step = 'the transport as an up edge on the map';
  log(step);
  await page.getByTestId('nav-network').click();
  await visible('[data-testid="network-map"]', 'the map');
  await visible(sel.edge(pkA, pkB, 'stcp', true), 'an up stcp edge A-B on the map', 20000, 'attached');
  await shot('hypervisor-page-map.png');

  step = 'open visor A from the list';
  log(step);
  await page.locator(`[data-testid="visor-row"][data-pk="${pkA}"] [data-testid="visor-link"]`).click();
  await visible('[data-testid="visor-view"]', 'the visor page');
  await visible('[data-testid="app-row"]', 'the apps of visor A');
  if (!appName) {
    appName = await page.locator('[data-testid="app-row"]').first().getAttribute('data-name');
    if (!appName) await fail('visor A lists no app');
  }

  step = `stop and start app ${appName}`;
  log(step);
  const row = page.locator(sel.appRow(appName));
  await visible(sel.appRow(appName), `app ${appName} of visor A`);
  if ((await row.getAttribute('data-state')) !== 'running') {
    log(`note: ${appName} is not running; starting it first`);
    await row.getByTestId('app-start').click();
    await visible(`${sel.appRow(appName)}[data-state="running"]`, `${appName} running`);
  }
  await page.locator(`${sel.appRow(appName)} [data-testid="app-stop"]:not([disabled])`).click();
  try {
    await page.waitForFunction((s) => {
      const r = document.querySelector(s);
      return r && r.getAttribute('data-state') !== 'running';
    }, sel.appRow(appName), { timeout: 15000 });
  } catch (e) {
    await fail(`${appName} still running after Stop`);
  }
  await page.locator(`${sel.appRow(appName)} [data-testid="app-start"]:not([disabled])`).click();
  await visible(`${sel.appRow(appName)}[data-state="running"]`, `${appName} running again after Start`);
  await page.locator(`${sel.appRow(appName)} [data-testid="app-logs-open"]`).click();
  await visible('[data-testid="app-logs"]', `the logs of ${appName}`);
  try {
    await page.waitForFunction(() => !/^Loading/.test(document.querySelector('[data-testid="app-logs-text"]').textContent), null, { timeout: 10000 });
  } catch (e) {
    await fail(`the logs of ${appName} did not load`);
  }
  const logs = await page.getByTestId('app-logs-text').textContent();
  if (/^Could not load/.test(logs)) await fail(`logs: ${logs}`);
  await visible(sel.tpRow(pkB), 'the transport to B on the visor page');
  await shot('hypervisor-page-visor.png');

  // Changing the password ends every session, ours included: the page must take the new
  // cookie and CSRF token from the answer, or the change back (a mutation) is refused.
  for (const [from, to] of [[password, `${password}-rotated`], [`${password}-rotated`, password]]) {
    step = `change the password${to === password ? ' back' : ''}`;
    log(step);
    await page.getByTestId('password-open').click();
    await visible('[data-testid="password-form"]', 'the password form');
    await page.getByTestId('password-old').fill(from);
    await page.getByTestId('password-new').fill(to);
    await page.getByTestId('password-new2').fill(to);
    await page.getByTestId('password-submit').click();
    try {
      await page.getByTestId('password-view').waitFor({ state: 'hidden', timeout: 15000 });
    } catch (e) {
      const err = await page.getByTestId('password-error').textContent().catch(() => '');
      await fail(`the password form stayed open${err ? `: "${err}"` : ''}`);
    }
    if (await page.getByTestId('login-form').isVisible()) await fail('the session ended with the password change');
    const st = (await page.getByTestId('status').textContent()).trim();
    if (!/password changed/i.test(st)) await fail(`status after the change: "${st}"`);
  }

  step = 'log out';
  log(step);
  await page.getByTestId('logout').click();
  await visible('[data-testid="login-form"]', 'the login form after logging out');
  const after = await page.evaluate(async () => (await fetch('/api/visors', { credentials: 'same-origin' })).status);
  if (after !== 401) await fail(`GET /api/visors answered ${after} after logging out, not 401`);

  if (problems.length) await fail(`the page reported errors:\n  ${problems.join('\n  ')}`);
  clearTimeout(watchdog);
  await browser.close();
  log(`ok: the hypervisor page passed in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

run().catch((e) => fail(e && e.message ? e.message.split('\n').slice(0, 6).join('\n') : String(e)));

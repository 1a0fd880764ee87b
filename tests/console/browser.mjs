// Drives Debian's Chromium through the delivery console, as an operator would; run by
// tests/console.rs (which starts the receiver and sends the deliveries).
//
//   node browser.mjs dead   CONSOLE_URL TOKEN SCREENSHOT_DIR
//       logs in, sees the dead letters with their reason, opens the one whose body carries a
//       <script>, checks it is shown as text and did not run; also on a phone-sized screen.
//   node browser.mjs replay CONSOLE_URL TOKEN SCREENSHOT_DIR
//       logs in, replays one dead letter from its page and the rest from the list, and waits
//       until the list shows them handled.
//
// Every check that fails throws: the process exits non-zero with the reason on stderr.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const [phase, consoleUrl, token, shots] = process.argv.slice(2);
if (!['dead', 'replay'].includes(phase) || !consoleUrl || !token || !shots) {
  console.error('usage: node browser.mjs dead|replay CONSOLE_URL TOKEN SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const origin = new URL(consoleUrl).origin;
const FAILING = 'order_status_update';
const REASON = `PRINTONE_DEMO_FAIL_EVENT fails every ${FAILING} delivery`;

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
}

/// A page that records what must never happen: a request elsewhere, a dialog, a CSP refusal.
async function watched(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('request', (request) => {
    if (!request.url().startsWith(origin)) problems.push(`fetched from elsewhere: ${request.url()}`);
  });
  page.on('dialog', async (dialog) => {
    problems.push(`a script opened a dialog: ${dialog.message()}`);
    await dialog.dismiss();
  });
  page.on('console', (message) => {
    // The login page is answered 401 on purpose; any other error is a problem.
    if (message.type() === 'error' && !message.text().includes('status of 401')) {
      problems.push(`console error: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.problems = problems;
  return page;
}

async function logIn(page) {
  const response = await page.goto(`${consoleUrl}/`);
  check(response.status() === 401, `the console asks for the token first (got ${response.status()})`);
  await page.fill('input[name=token]', token);
  await Promise.all([page.waitForURL(`${consoleUrl}/`), page.click('button[type=submit]')]);
  check(await page.isVisible('text=Overview'), 'the overview after logging in');
}

async function shot(page, name) {
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot ${path}`);
}

async function deadRows(page) {
  return page.$$eval('tbody tr', (rows) =>
    rows.map((row) => ({
      state: row.querySelector('[data-label=State]')?.textContent.trim(),
      event: row.querySelector('[data-label=Event]')?.textContent.trim(),
      reason: row.querySelector('[data-label="Last error"]')?.textContent.trim(),
      link: row.querySelector('a')?.getAttribute('href'),
    })));
}

async function dead(browser) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await watched(context);
  await logIn(page);
  const deadCount = await page.textContent('a.card[href$="state=dead"] b');
  check(Number(deadCount) === 4, `the overview counts 4 dead letters (got ${deadCount})`);
  await shot(page, 'overview');

  await page.click('nav >> text=Dead letters');
  const rows = await deadRows(page);
  check(rows.length === 4, `4 dead letters listed (got ${rows.length})`);
  check(rows.every((row) => row.state === 'dead' && row.event === FAILING && row.reason === REASON),
    `each with its reason: ${JSON.stringify(rows)}`);
  await shot(page, 'dead-letters');

  const hostile = page.locator('tbody tr', { hasText: 'ord_script' }).locator('a').first();
  await hostile.click();
  const body = await page.textContent('pre');
  check(body.includes("<script>window.__pwned = true; alert('pwned')</script>"),
    `the body's <script> is shown as text: ${body}`);
  check(await page.evaluate(() => window.__pwned === undefined), 'the body\'s script did not run');
  check(await page.locator('script').count() === 0, 'no script element on the page');
  check(await page.isVisible(`text=${REASON}`), 'the delivery page shows the reason');
  check(await page.isVisible('text=x-webhook-hmac-sha256'), 'the signature header is named');
  await shot(page, 'dead-letter-with-script-body');
  check(page.problems.length === 0, page.problems.join('; '));
  await context.close();

  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
  const small = await watched(phone);
  await logIn(small);
  await small.goto(`${consoleUrl}/deliveries?state=dead`);
  const overflow = await small.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the list fits a phone's width (${overflow}px too wide)`);
  await shot(small, 'dead-letters-phone');
  check(small.problems.length === 0, small.problems.join('; '));
  await phone.close();
}

async function replay(browser) {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await watched(context);
  await logIn(page);
  await page.goto(`${consoleUrl}/deliveries?state=dead`);
  await page.locator('tbody tr', { hasText: 'ord_script' }).locator('a').first().click();
  await page.click('text=Replay this dead letter');
  check(await page.isVisible('text=Replayed 1 dead letter'), 'one dead letter replayed from its page');

  await page.goto(`${consoleUrl}/deliveries?state=dead`);
  await page.click('text=Replay every dead letter of this filter');
  check(await page.isVisible('text=Replayed 3 dead letters'), 'the other three replayed from the list');
  await shot(page, 'replayed');

  const handled = `${consoleUrl}/deliveries?event=${FAILING}`;
  let rows = [];
  for (let tries = 0; tries < 100; tries += 1) {
    await page.goto(handled);
    rows = await deadRows(page);
    if (rows.length === 4 && rows.every((row) => row.state === 'done')) break;
    await page.waitForTimeout(100);
  }
  check(rows.length === 4 && rows.every((row) => row.state === 'done'),
    `every replayed delivery handled: ${JSON.stringify(rows)}`);
  await shot(page, 'handled');
  check(page.problems.length === 0, page.problems.join('; '));
  await context.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
});
try {
  await (phase === 'dead' ? dead(browser) : replay(browser));
  console.log(`browser ${phase}: ok`);
} finally {
  await browser.close();
}

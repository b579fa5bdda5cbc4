import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { REPO_ROOT, TestStack } from '@refstack/shared/testing';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'e2e/artifacts');

t.test('Swagger UI: try send-code from /docs and see the 200 in the page', async (t) => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is needed at ${CHROMIUM}: apt-get install chromium (.ci/run installs it)`);
  }
  const stack = await TestStack.system(t);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(error.message));

  await page.goto(`${stack.url}/docs`);
  const operation = page.locator('.opblock-post').filter({ has: page.locator('[data-path="/api/v1/auth/send-code"]') });
  await operation.locator('.opblock-summary').first().click();
  await operation.getByRole('button', { name: 'Try it out' }).click();
  await operation.getByRole('button', { name: 'Execute' }).click();
  const status = operation.locator('.live-responses-table .response .response-col_status').first();
  await status.waitFor({ timeout: 15_000 });
  t.equal((await status.textContent())?.trim(), '200', 'the page shows the 200 answer');
  const body = await operation
    .locator('.live-responses-table .response-col_description .microlight')
    .first()
    .textContent();
  t.match(body, /"message": "Code sent"/);
  t.match(body, /"phone": "\+79123456789"/);

  mkdirSync(ARTIFACTS, { recursive: true });
  const shot = join(ARTIFACTS, 'docs-send-code.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(existsSync(shot), `screenshot saved: ${shot}`);
  t.same(problems, [], 'no script errors in the page');
  t.ok(
    stack.sms.some((m) => m.to === '+79123456789'),
    'and the SMS went out',
  );
});

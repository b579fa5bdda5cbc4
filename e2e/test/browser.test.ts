import t from 'tap';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT, TestStack } from '@refstack/shared/testing';

const CHROMIUM = process.env['CHROMIUM_PATH'] || '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'e2e/artifacts');

// One stack and one browser for the file: the checks only read the docs (and send one code).
if (!existsSync(CHROMIUM)) {
  throw new Error(`Chromium is needed at ${CHROMIUM}: apt-get install chromium (.ci/run installs it)`);
}
const stack = await TestStack.system(t);
let launched: Browser | undefined;
async function browser(): Promise<Browser> {
  launched ??= await chromium.launch({
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
  return launched;
}
t.teardown(() => launched?.close());

t.test('Swagger UI: try send-code from /docs and see the 200 in the page', async (t) => {
  const page = await (await browser()).newPage();
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

t.test(
  'ReDoc: /redoc and /api/v1/redoc/ show the API and its operations, loading nothing from elsewhere',
  async (t) => {
    const context = await (await browser()).newContext();
    t.teardown(() => context.close());
    const gateway = new URL(stack.url).origin;
    const requested: string[] = [];
    // On the context, so that requests of workers count too.
    context.on('request', (request) => requested.push(request.url()));
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });

    for (const path of ['/redoc', '/api/v1/redoc/']) {
      const answer = await page.goto(`${stack.url}${path}`);
      t.equal(answer?.status(), 200, `${path} answers`);
      const title = page.locator('.api-info h1');
      await title.waitFor({ timeout: 20_000 });
      t.match(await title.textContent(), /^Refstack API/, `${path}: the API's title`);
      const sendCode = page.locator('[data-section-id="operation/postApiV1AuthSendCode"]');
      await sendCode.waitFor({ timeout: 20_000 });
      t.match(await sendCode.locator('h2').first().textContent(), /\S/, `${path}: the send-code operation`);
      t.ok((await page.locator('[data-section-id^="operation/"]').count()) > 5, `${path}: every operation`);
      t.match(await page.locator('.menu-content').textContent(), /auth/i, `${path}: the sidebar lists the tags`);
    }

    // Search runs in a worker ReDoc starts from a blob: the page's CSP must let it.
    await page.getByPlaceholder('Search...').fill('invite');
    const found = page.locator('[data-role="search:results"] li[role="menuitem"]');
    await found.first().waitFor({ timeout: 10_000 });
    t.ok((await found.count()) > 0, 'search finds the invite operations');

    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = join(ARTIFACTS, 'redoc.png');
    await page.screenshot({ path: shot });
    t.ok(existsSync(shot), `screenshot saved: ${shot}`);
    t.same(problems, [], 'no script errors, no refused loads (CSP) in the page');
    const elsewhere = requested.filter((url) => {
      const { protocol, origin } = new URL(url);
      if (protocol === 'data:') return false;
      if (protocol === 'blob:') return new URL(url.slice('blob:'.length)).origin !== gateway;
      return origin !== gateway;
    });
    t.same(elsewhere, [], 'every request went to the gateway');
    t.ok(
      requested.some((url) => url.endsWith('/redoc/redoc.standalone.js')),
      "ReDoc's script came from the gateway",
    );
    t.ok(
      requested.some((url) => url.endsWith('/api/v1/schema/')),
      'and so did the document',
    );
  },
);

/**
 * Ferry Console in headless Chromium against a real Ferry (SQLite) and real webhook receivers:
 * the scenarios in the order a user meets them — sign-in (wrong secrets, then right),
 * creating a localfs instance through the form, uploading through the browser (file input and
 * drag and drop), a file name that is markup shown as text, "Copy folder…" followed to its
 * delivered webhook without a reload, a failing receiver redelivered, reload and back/forward,
 * sign-out. axe-core runs on every page; each page's screenshot goes to test-results/console/.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { FAST_ASYNC, ORG_SECRET, USER_SECRET, startReceiver, startTestServer, type Receiver, type TestServer } from '../helpers/server.js';
import { browserSkipReason, launchBrowser, screenshot, seriousViolations, type TestBrowser } from '../helpers/browser.js';

const built = fs.existsSync(path.resolve('dist', 'console', 'index.html'));
const skip = browserSkipReason() || (built ? false : 'the console is not built (npm run build writes dist/console/)');

const XSS_NAME = '<img src=x onerror="window.__pwned=1">.txt';

describe('Ferry Console in Chromium', { skip }, () => {
  let server: TestServer;
  let browser: TestBrowser;
  let page: Page;
  let receiver: Receiver;
  let flaky: Receiver;
  let console_: string;
  let instanceId = 0;
  let copyEventId = 0;
  let failedEventId = 0;
  const cspViolations: string[] = [];

  /** Runs axe on the page and saves its screenshot. */
  async function check(name: string): Promise<void> {
    await screenshot(page, name);
    const violations = await seriousViolations(page);
    assert.deepEqual(violations, [], `axe on ${name}: ${JSON.stringify(violations)}`);
  }

  /** Runs axe on a page state that gets no screenshot. */
  async function axeOnly(name: string): Promise<void> {
    const violations = await seriousViolations(page);
    assert.deepEqual(violations, [], `axe on ${name}: ${JSON.stringify(violations)}`);
  }

  async function heading(text: string | RegExp): Promise<void> {
    await page.getByRole('heading', { level: 1, name: text }).waitFor();
  }

  /** Starts an asynchronous copy of `source` from the files page and returns its event id. */
  async function copyFolder(source: string, destination: string, callback: string): Promise<number> {
    await page.getByRole('button', { name: `Copy folder ${source}…` }).click();
    await page.getByLabel('Destination path').fill(destination);
    await page.getByLabel('Callback URL').fill(callback);
    await page.getByRole('button', { name: 'Start copy' }).click();
    const link = page.getByRole('link', { name: /^event \d+$/ });
    await link.waitFor();
    return Number((await link.textContent())!.replace('event ', ''));
  }

  before(async () => {
    server = await startTestServer(FAST_ASYNC);
    receiver = await startReceiver();
    flaky = await startReceiver();
    browser = await launchBrowser();
    page = browser.page;
    page.setDefaultTimeout(10_000);
    page.on('dialog', (dialog) => void dialog.accept());
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    console_ = `http://127.0.0.1:${server.config.port}/console`;
  });

  after(async () => {
    await browser?.close();
    await receiver?.close();
    await flaky?.close();
    await server?.close();
  });

  it('wrong secrets show the API message in an alert', async () => {
    await page.goto(`${console_}/`);
    await heading('Ferry Console');
    await page.getByLabel('User secret', { exact: true }).fill('wrong-user-secret');
    await page.getByLabel('Organization secret', { exact: true }).fill('wrong-org-secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    const answer = await server.api('/accounts/settings', { headers: { authorization: 'User wrong-user-secret, Organization wrong-org-secret' } });
    assert.equal(answer.status, 401);
    assert.equal(await alert.textContent(), ((await answer.json()) as any).message);
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    await check('signin');
  });

  it('signing in (by keyboard only) leads to the instances page', async () => {
    await page.getByLabel('User secret', { exact: true }).fill('');
    await page.getByLabel('Organization secret', { exact: true }).fill('');
    await page.getByLabel('User secret', { exact: true }).focus();
    await page.keyboard.type(USER_SECRET);
    await page.keyboard.press('Tab');
    await page.keyboard.type(ORG_SECRET);
    await page.keyboard.press('Enter');
    await heading('Instances');
    assert.equal(new URL(page.url()).pathname, '/console/instances');
    assert.ok(((await page.evaluate('sessionStorage.getItem("ferry.console.secrets")')) as string).includes(USER_SECRET));
    assert.equal(await page.evaluate('localStorage.length'), 0);
    assert.deepEqual(await browser.context.cookies(), []);
  });

  it('creates a localfs instance through the form built from the element metadata', async () => {
    await page.getByRole('link', { name: 'New instance' }).click();
    await heading('New instance');
    await page.getByLabel('Element').selectOption('localfs');
    await page.getByLabel('Root folder').waitFor();
    // Required keys are marked; secret keys are password inputs.
    assert.equal(await page.getByLabel('Root folder').getAttribute('aria-required'), 'true');
    assert.equal(await page.getByLabel('Webhook signature key').getAttribute('type'), 'password');
    await page.getByLabel('Instance name').fill('Team files');
    await page.getByLabel('Root folder').fill('team');
    await check('new-instance');
    await page.getByRole('button', { name: 'Create instance' }).click();
    await heading('Instance created');
    await axeOnly('instance created');
    const list = (await (await server.api('/instances')).json()) as any[];
    assert.equal(list.length, 1);
    assert.equal(list[0].name, 'Team files');
    assert.equal(list[0].element.key, 'localfs');
    instanceId = list[0].id;
    await page.getByRole('link', { name: 'Back to instances' }).click();
    await heading('Instances');
    await page.getByRole('rowheader', { name: 'Team files' }).waitFor();
    await check('instances');
  });

  it('uploads through the file input and by drag and drop, and lists the files', async () => {
    await page.getByRole('link', { name: 'Files of Team files' }).click();
    await heading('Files of Team files');
    const hello = path.join(server.dataDir, 'files', 'team', 'hello.txt');
    await page.getByLabel('Upload files').setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('first draft') });
    await page.getByRole('rowheader', { name: 'hello.txt' }).waitFor();
    assert.equal(fs.readFileSync(hello, 'utf8'), 'first draft');
    // The same name again: refused (the API's 409 message) until "Replace" is ticked.
    await page.getByLabel('Upload files').setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the browser') });
    await page.getByRole('alert').filter({ hasText: /exists/ }).waitFor();
    assert.equal(fs.readFileSync(hello, 'utf8'), 'first draft');
    await page.getByLabel('Replace files that already exist').check();
    await page.getByLabel('Upload files').setInputFiles({ name: 'hello.txt', mimeType: 'text/plain', buffer: Buffer.from('hello from the browser') });
    await page.getByRole('alert').waitFor({ state: 'detached' });
    await page.getByRole('status').filter({ hasText: 'Uploaded hello.txt' }).waitFor();
    await page.getByRole('cell', { name: '22 B' }).waitFor();
    assert.equal(fs.readFileSync(hello, 'utf8'), 'hello from the browser');
    await page.getByLabel('Replace files that already exist').uncheck();

    await page.getByLabel('New folder name').fill('reports');
    await page.getByRole('button', { name: 'New folder' }).click();
    await page.getByRole('link', { name: 'reports' }).click();
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByText('reports').waitFor();
    assert.equal(new URL(page.url()).searchParams.get('path'), '/reports');
    // A drop of a file on the drop zone, as a user dragging it from their desktop would.
    await page.getByTestId('dropzone').evaluate((zone) => {
      const data = new DataTransfer();
      data.items.add(new File(['quarterly numbers'], 'q3.csv', { type: 'text/csv' }));
      zone.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    await page.getByRole('rowheader', { name: 'q3.csv' }).waitFor();
    assert.equal(fs.readFileSync(path.join(server.dataDir, 'files', 'team', 'reports', 'q3.csv'), 'utf8'), 'quarterly numbers');
    await page.getByRole('navigation', { name: 'Breadcrumb' }).getByRole('link', { name: 'Root' }).click();
    await page.getByRole('rowheader', { name: 'hello.txt' }).waitFor();
  });

  it('shows a file name made of markup literally and runs none of it', async () => {
    await page.getByLabel('Upload files').setInputFiles({ name: XSS_NAME, mimeType: 'text/plain', buffer: Buffer.from('x') });
    const cell = page.getByRole('rowheader', { name: XSS_NAME });
    await cell.waitFor();
    assert.equal(await cell.textContent(), XSS_NAME);
    assert.equal(await page.locator('img').count(), 0);
    assert.equal(await page.evaluate('typeof window.__pwned'), 'undefined');
    await check('files');
  });

  it('downloads a file, and pages a folder by its next-page token', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download hello.txt' }).click()]);
    assert.equal(download.suggestedFilename(), 'hello.txt');
    assert.equal(fs.readFileSync((await download.path())!, 'utf8'), 'hello from the browser');

    await page.goto(`${console_}/instances/${instanceId}/files?path=/&pageSize=2`);
    await page.getByRole('rowheader', { name: 'reports' }).waitFor();
    const names = page.getByRole('table').locator('tbody th');
    assert.equal(await names.count(), 2);
    const first = await names.allTextContents();
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.getByRole('link', { name: 'First page' }).waitFor();
    await names.first().waitFor();
    assert.ok(new URL(page.url()).searchParams.get('nextPage'));
    assert.equal(await names.count(), 1);
    const second = await names.allTextContents();
    assert.deepEqual([...first, ...second].sort(), ['hello.txt', 'reports', XSS_NAME].sort());
    assert.equal(await page.getByRole('link', { name: 'Next page' }).count(), 0);
    await page.goBack();
    await page.getByRole('link', { name: 'Next page' }).waitFor();
  });

  it('"Copy folder…" runs asynchronously and its event reaches its final state without a reload', async () => {
    await page.goto(`${console_}/instances/${instanceId}/files`);
    await heading('Files of Team files');
    copyEventId = await copyFolder('reports', '/reports-copy', receiver.url);
    await page.getByRole('link', { name: `event ${copyEventId}` }).click();
    await heading(`Event ${copyEventId}`);
    // Marks this document: a reload would lose the mark.
    await page.evaluate('window.__samePage = true');
    await page.getByTestId('event-status').filter({ hasText: 'NOTIFIED' }).waitFor({ timeout: 20_000 });
    assert.equal(await page.evaluate('window.__samePage'), true);
    const attempts = page.getByRole('table', { name: 'Delivery attempts' }).locator('tbody tr');
    assert.equal(await attempts.count(), 1);
    assert.match((await attempts.first().textContent())!, /200/);
    assert.match((await attempts.first().textContent())!, new RegExp(receiver.url.replace(/[.]/g, '\\.')));
    assert.equal(await page.getByTestId('execution-state').textContent(), 'completed');
    // The webhook body, formatted, names the copied file.
    assert.match((await page.getByLabel('Webhook body (JSON)').textContent())!, /\n {2}"eventId": \d+/);
    assert.match((await page.getByLabel('Webhook body (JSON)').textContent())!, /reports-copy\/q3\.csv/);
    const [hook] = await receiver.waitFor(1);
    assert.equal(hook.body.eventId, copyEventId);
    assert.equal(fs.readFileSync(path.join(server.dataDir, 'files', 'team', 'reports-copy', 'q3.csv'), 'utf8'), 'quarterly numbers');
    await check('event');
  });

  it('the events page lists the event, filters by status and instance, and updates live', async () => {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Events' }).click();
    await heading('Events');
    await page.getByRole('link', { name: `Event ${copyEventId}` }).waitFor();
    await page.getByLabel('Status').selectOption('DISPATCHED');
    await page.getByText('No events match these filters.').waitFor();
    assert.equal(new URL(page.url()).searchParams.get('status'), 'DISPATCHED');
    await page.getByLabel('Status').selectOption('NOTIFIED');
    await page.getByLabel('Instance').selectOption(String(instanceId));
    await page.getByRole('link', { name: `Event ${copyEventId}` }).waitFor();
    await page.getByLabel('Status').selectOption('');
    // An event accepted by another client appears without a reload.
    await page.evaluate('window.__samePage = true');
    const token = ((await page.evaluate('JSON.parse(sessionStorage.getItem("ferry.console.tokens"))')) as Record<string, string>)[String(instanceId)];
    const accepted = await fetch(`${server.base}/hubs/documents/folders/metadata?path=/reports`, {
      headers: { authorization: `User ${USER_SECRET}, Element ${token}`, 'elements-async-request': 'true', 'elements-async-callback-url': receiver.url },
    });
    assert.equal(accepted.status, 200);
    const { eventId } = (await accepted.json()) as { eventId: number };
    await page.getByRole('link', { name: `Event ${eventId}` }).waitFor({ timeout: 10_000 });
    assert.equal(await page.evaluate('window.__samePage'), true);
    await page.getByRole('row', { name: new RegExp(`^Event ${eventId} .*NOTIFIED`) }).waitFor({ timeout: 10_000 });
    await check('events');
    // Server-side paging: one event per page.
    await page.goto(`${console_}/events?pageSize=1`);
    await page.getByRole('link', { name: `Event ${eventId}` }).waitFor();
    await page.getByRole('link', { name: 'Next page' }).click();
    await page.getByRole('link', { name: `Event ${copyEventId}` }).waitFor();
    assert.equal(await page.getByRole('link', { name: `Event ${eventId}` }).count(), 0);
  });

  it('a failing receiver: the failed attempt is shown, then "Redeliver" succeeds once it is back', async () => {
    // Queue (not retry) failed webhooks, set through the settings page.
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settings' }).click();
    await heading('Settings');
    await page.getByLabel(/^Queue:/).check();
    await page.getByRole('button', { name: 'Save policy' }).click();
    await page.getByText('Failure policy saved: queue').waitFor();
    assert.equal(((await (await server.api('/accounts/settings')).json()) as any)['notification.webhook.failure.policy'], 'queue');

    flaky.respond = () => ({ status: 503 });
    await page.goto(`${console_}/instances/${instanceId}/files`);
    await heading('Files of Team files');
    failedEventId = await copyFolder('reports', '/reports-second', flaky.url);
    await page.getByRole('link', { name: `event ${failedEventId}` }).click();
    await heading(`Event ${failedEventId}`);
    await page.getByTestId('notification-status').filter({ hasText: 'queued' }).waitFor({ timeout: 20_000 });
    const attempts = page.getByRole('table', { name: 'Delivery attempts' }).locator('tbody tr');
    assert.equal(await attempts.count(), 1);
    assert.match((await attempts.first().textContent())!, /503/);

    // The settings page lists it as queued, with "Reactivate".
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Settings' }).click();
    await page.getByRole('link', { name: `Event ${failedEventId}` }).waitFor();
    await page.getByRole('button', { name: `Reactivate ${flaky.url}` }).waitFor();
    await check('settings');
    await page.goBack();
    await heading(`Event ${failedEventId}`);

    flaky.respond = () => ({ status: 200 });
    await page.getByRole('button', { name: 'Redeliver' }).click();
    await page.getByTestId('event-status').filter({ hasText: 'NOTIFIED' }).waitFor({ timeout: 20_000 });
    await page.getByRole('table', { name: 'Delivery attempts' }).locator('tbody tr').nth(1).waitFor();
    assert.match((await attempts.nth(1).textContent())!, /200/);
    const [hook] = await flaky.waitFor(1);
    assert.equal(hook.body.eventId, failedEventId);
  });

  it('reload on an event page stays there; back and forward keep the place', async () => {
    await page.reload();
    await heading(`Event ${failedEventId}`);
    assert.equal(new URL(page.url()).pathname, `/console/events/${failedEventId}`);
    await page.getByTestId('event-status').filter({ hasText: 'NOTIFIED' }).waitFor();
    // History: … event page → settings → (back) event page. Forward and back again.
    await page.goForward();
    await heading('Settings');
    await page.goBack();
    await heading(`Event ${failedEventId}`);
    await page.goBack();
    await heading('Files of Team files');
  });

  it('disables, enables and deletes (after confirming) an instance; asks for the token of one made elsewhere', async () => {
    const scratch = await server.instance('localfs', { root: 'scratch' }, 'Scratch');
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: 'Instances' }).click();
    const row = page.getByRole('row', { name: /^Scratch / });
    await page.getByRole('button', { name: 'Disable Scratch' }).click();
    await page.getByRole('button', { name: 'Enable Scratch' }).waitFor();
    assert.match((await row.textContent())!, /No/);
    assert.equal(((await (await server.api(`/instances/${scratch.id}`)).json()) as any).disabled, true);
    await page.getByRole('button', { name: 'Enable Scratch' }).click();
    await page.getByRole('button', { name: 'Disable Scratch' }).waitFor();
    assert.equal(((await (await server.api(`/instances/${scratch.id}`)).json()) as any).disabled, false);

    await page.getByRole('link', { name: 'Files of Scratch' }).click();
    await page.getByLabel('Instance token').fill('not-the-token');
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByRole('alert').filter({ hasText: 'Unknown Element token' }).waitFor();
    await axeOnly('instance token form');
    await page.getByLabel('Instance token').fill(scratch.token);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.getByText('This folder is empty.').waitFor();
    await page.goBack();

    let confirmed = '';
    page.once('dialog', (dialog) => void (confirmed = dialog.message()));
    await page.getByRole('button', { name: 'Delete Scratch' }).click();
    await page.getByRole('button', { name: 'Delete Scratch' }).waitFor({ state: 'detached' });
    assert.match(confirmed, /Delete instance "Scratch"/);
    assert.equal((await server.api(`/instances/${scratch.id}`)).status, 404);
  });

  it('"Sign out" clears sessionStorage and returns to sign-in', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate('sessionStorage.length'), 0);
    // A deep link now asks to sign in first.
    await page.goto(`${console_}/events/${failedEventId}`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(new URL(page.url()).pathname, '/console/signin');
  });

  it('nothing the console did was refused by its Content-Security-Policy', () => {
    assert.deepEqual(cspViolations, []);
  });
});

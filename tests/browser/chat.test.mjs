// Browser test of the web client compiled into parley-server.
//
// Two headless Chromium pages (alice and bob, separate contexts) chat through
// a real parley-server on 127.0.0.1. Then the server is killed (SIGKILL) and
// restarted on the same port and data dir: both pages must show the error
// mark, a message alice sends while the server is down must arrive once after
// the reconnect, and both pages must end with the same messages, each once,
// in order.
//
// Env: PARLEY_SERVER (required) the server binary; CHROMIUM (default
// /usr/bin/chromium); PARLEY_SCREENSHOT (default tests/browser/out/chat.png);
// PARLEY_WEB_ROOT (optional, for trying edits of the client without a
// rebuild: passed as --web-root; unset, the copy compiled into the server is
// tested).
// Run: tests/browser/run.sh PATH/TO/parley-server
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = process.env.PARLEY_SERVER;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = path.resolve(process.env.PARLEY_SCREENSHOT || path.join(here, 'out', 'chat.png'));
const WAIT_MS = 15000;  // bound of every wait for an expected state
const GROUP = 'room';

// ---- Server process -----------------------------------------------------------

// Starts parley-server and resolves once it prints its listening line.
// Rejects if it exits first or does not say it within WAIT_MS.
function startServer(args) {
  const proc = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  const keep = (line) => { log.push(line); if (log.length > 200) log.shift(); };
  proc.log = log;
  proc.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  let rest = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => d.split('\n').forEach((l) => l && keep(`[stderr] ${l}`)));
  proc.stdout.setEncoding('utf8');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`parley-server printed no listening line in ${WAIT_MS} ms:\n${log.join('\n')}`));
    }, WAIT_MS);
    proc.stdout.on('data', (d) => {
      rest += d;
      const lines = rest.split('\n');
      rest = lines.pop();
      for (const line of lines) {
        keep(line);
        const m = line.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//);
        if (m) { clearTimeout(timer); proc.port = Number(m[1]); resolve(proc); }
      }
    });
    proc.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`parley-server exited (code ${code}, signal ${signal}) before listening:\n${log.join('\n')}`));
    });
  });
}

async function stopServer(proc, signal) {
  if (proc.exitCode !== null || proc.signalCode !== null) return proc.exited;
  proc.kill(signal);
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`parley-server ignored ${signal} for ${WAIT_MS} ms`)), WAIT_MS);
  });
  try { return await Promise.race([proc.exited, deadline]); } finally { clearTimeout(timer); }
}

// One HTTP request with a JSON body and answer, on a connection of its own.
function httpJson(method, url, body, token) {
  const headers = { Connection: 'close' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const data = body === undefined ? undefined : JSON.stringify(body);
  if (data) headers['Content-Type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: false, timeout: WAIT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        try { resolve({ status: res.statusCode, body: text ? JSON.parse(text) : null }); } catch (e) {
          reject(new Error(`${method} ${url}: ${res.statusCode} ${text}`));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer in ${WAIT_MS} ms`)));
    req.on('error', reject);
    req.end(data);
  });
}

// ---- Page helpers -----------------------------------------------------------------

const tid = (id) => `[data-testid="${id}"]`;

// The texts of the messages shown (pending sends excluded), in DOM order.
function messageTexts(page) {
  return page.$$eval(`${tid('message-list')} [data-id]`, (els) =>
    els.map((e) => ({ id: Number(e.dataset.id), text: e.querySelector('[data-testid="message-text"]').textContent })));
}

// Waits until the page shows exactly `expected` (texts, in order).
async function waitForMessages(page, expected, who) {
  try {
    await page.waitForFunction((want) => {
      const got = [...document.querySelectorAll('[data-testid="message-list"] [data-id] [data-testid="message-text"]')]
        .map((e) => e.textContent);
      return JSON.stringify(got) === JSON.stringify(want);
    }, expected, { timeout: WAIT_MS });
  } catch (e) {
    const got = await messageTexts(page).catch(() => '(page unreadable)');
    throw new Error(`${who}: expected messages ${JSON.stringify(expected)}, page shows ${JSON.stringify(got)}`);
  }
}

async function waitVisible(page, selector, what, options = {}) {
  try {
    await page.locator(selector, options).first().waitFor({ state: 'visible', timeout: WAIT_MS });
  } catch (e) {
    throw new Error(`${what}: not visible within ${WAIT_MS} ms (${selector})`);
  }
}

async function waitHidden(page, selector, what) {
  try {
    await page.locator(selector).waitFor({ state: 'hidden', timeout: WAIT_MS });
  } catch (e) {
    throw new Error(`${what}: still visible after ${WAIT_MS} ms (${selector})`);
  }
}

async function waitState(page, who, state) {
  await waitVisible(page, `${tid('conn-status')}[data-state="${state}"]`, `${who} connection ${state}`,
    { state: 'attached' });
}

async function login(page, user) {
  await page.fill(tid('login-user'), user);
  await page.fill(tid('login-password'), 'any-password');
  await page.click(tid('login-button'));
  await page.locator(tid('me'), { hasText: user }).waitFor({ timeout: WAIT_MS });
  await page.locator(`${tid('conn-status')}[data-state="connected"]`).waitFor({ state: 'attached', timeout: WAIT_MS });
}

async function send(page, text) {
  await page.fill(tid('send-input'), text);
  await page.press(tid('send-input'), 'Enter');
}

// ---- The scenario -------------------------------------------------------------------

const cleanups = [];
let lastServer = null;  // for its log when the scenario fails
after(async () => {
  for (const fn of cleanups.reverse()) await fn().catch((e) => console.error('cleanup:', e.message));
});

// Runs a scenario; when it fails, shows the end of the server's log.
async function withServerLog(fn) {
  try {
    await fn();
  } catch (e) {
    if (lastServer) console.error(`parley-server log (last lines):\n${lastServer.log.slice(-40).join('\n')}`);
    throw e;
  }
}

test('two browsers chat through a server crash and restart', () => withServerLog(scenario));

test('two browsers edit, react and delete, and a reload shows the deleted message as deleted',
  () => withServerLog(changesScenario));

test('unread badges come from the server, reading on one device clears the other, and a notification level set on one shows on the other',
  () => withServerLog(unreadScenario));

test('with --membership-entries, joins and leaves show in the history and keep the member list live',
  () => withServerLog(membershipScenario));

test('a private group: bob is refused until alice invites him, and her change of topic reaches him as a line',
  () => withServerLog(privateGroupScenario));

test('a reply quotes its message, and a mention is marked on the message and on the group list',
  () => withServerLog(replyScenario));

// A server on a fresh data dir, and alice and bob logged in on pages of
// their own, both in GROUP.
async function twoPagesInGroup(extraArgs = []) {
  assert.ok(SERVER, 'set PARLEY_SERVER to the parley-server binary (or use run.sh)');
  assert.ok(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (set CHROMIUM)`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-browser-'));
  cleanups.push(async () => fs.rmSync(dataDir, { recursive: true, force: true }));
  const webRoot = process.env.PARLEY_WEB_ROOT ? ['--web-root', process.env.PARLEY_WEB_ROOT] : [];
  const serverArgs = (listen) => ['--dev', '--listen', listen, '--data-dir', dataDir, ...webRoot, ...extraArgs];

  const server = lastServer = await startServer(serverArgs('127.0.0.1:0'));
  cleanups.push(async () => { await stopServer(server, 'SIGKILL'); });
  const base = `http://127.0.0.1:${server.port}/`;

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  cleanups.push(() => browser.close());
  const pageErrors = [];
  const open = async (who) => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 680 } });
    context.setDefaultTimeout(WAIT_MS);
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(`${who}: ${e.message}`));
    await page.goto(base, { timeout: WAIT_MS });
    return page;
  };
  const alice = await open('alice');
  const bob = await open('bob');

  // Log in, create and join.
  await login(alice, 'alice');
  await login(bob, 'bob');
  await alice.fill(tid('group-create-input'), GROUP);
  await alice.click(tid('group-create-button'));
  await waitVisible(alice, `${tid('group-list')} [data-group="${GROUP}"]`, 'alice group list');
  await alice.locator(tid('group-title'), { hasText: `#${GROUP}` }).waitFor({ timeout: WAIT_MS });
  await bob.fill(tid('group-join-input'), GROUP);
  await bob.click(tid('group-join-button'));
  await waitVisible(bob, `${tid('group-list')} [data-group="${GROUP}"]`, 'bob group list');
  await bob.locator(tid('group-title'), { hasText: `#${GROUP}` }).waitFor({ timeout: WAIT_MS });
  return { server, serverArgs, base, alice, bob, pageErrors };
}

async function scenario() {
  let { server, serverArgs, base, alice, bob, pageErrors } = await twoPagesInGroup();

  // Exchange messages; each one is seen on both pages before the next.
  const expected = [];
  const exchange = async (page, text) => {
    await send(page, text);
    expected.push(text);
    await waitForMessages(alice, expected, 'alice');
    await waitForMessages(bob, expected, 'bob');
  };
  await exchange(alice, 'hello bob');
  await exchange(bob, 'hi alice');
  await exchange(alice, 'how are you?');

  // Each sees the other in the group's member list, online.
  await waitVisible(alice, `${tid('members')} [data-user="bob"][data-status="online"]`, 'alice sees bob online');
  await waitVisible(bob, `${tid('members')} [data-user="alice"][data-status="online"]`, 'bob sees alice online');

  // Bob sees alice typing; the draft stays with alice.
  await alice.fill(tid('send-input'), 'a draft');
  await waitVisible(bob, tid('typing'), 'bob sees alice typing', { hasText: 'alice is typing' });
  await alice.fill(tid('send-input'), '');

  // Crash the server: both pages show the toast and the error mark.
  await stopServer(server, 'SIGKILL');
  for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
    await waitVisible(page, tid('conn-error'), `${who} error mark`);
    await waitVisible(page, tid('toast'), `${who} toast`, { hasText: /connection lost/i });
    await waitState(page, who, 'lost');
  }

  // Alice sends while the server is down: it waits, unacknowledged.
  const offline = 'sent while the server was down';
  await send(alice, offline);
  await waitVisible(alice, `${tid('pending-list')} [data-testid="message-pending"]`, 'alice pending send',
    { hasText: offline });
  assert.deepEqual((await messageTexts(alice)).map((m) => m.text), expected, 'nothing new before the restart');
  expected.push(offline);

  // Restart on the same port and data dir; tokens stay valid.
  server = lastServer = await startServer(serverArgs(`127.0.0.1:${server.port}`));
  for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
    await waitHidden(page, tid('conn-error'), `${who} error mark`);
    await waitState(page, who, 'connected');
  }
  await waitForMessages(alice, expected, 'alice after reconnect');
  await waitForMessages(bob, expected, 'bob after reconnect');
  await waitHidden(alice, `${tid('pending-list')} [data-testid="message-pending"]`, 'alice pending send');

  // A message after the reconnect: anything sent twice would show before it.
  await exchange(bob, 'welcome back');

  for (const [page, who] of [[alice, 'alice'], [bob, 'bob']]) {
    const shown = await messageTexts(page);
    assert.deepEqual(shown.map((m) => m.text), expected, `${who}: every message once, in order`);
    assert.deepEqual(shown.map((m) => m.id), expected.map((_, i) => i + 1), `${who}: ids 1..n`);
  }

  // The server stored each message once too (the offline send was resent with its cid).
  const carol = await httpJson('POST', `${base}v1/login`, { user: 'carol', password: 'x' });
  assert.equal(carol.status, 200, 'carol logs in');
  const join = await httpJson('POST', `${base}v1/groups/${GROUP}/join`, undefined, carol.body.token);
  assert.equal(join.status, 200, 'carol joins');
  const hist = await httpJson('GET', `${base}v1/groups/${GROUP}/messages?after=0&limit=100`, undefined, carol.body.token);
  assert.equal(hist.status, 200, 'history');
  assert.deepEqual(hist.body.messages.map((m) => m.c), expected, 'the server history');

  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');

  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  await alice.screenshot({ path: SCREENSHOT });
  console.log(`screenshot: ${SCREENSHOT}`);

  // SIGTERM is a clean exit.
  const end = await stopServer(server, 'SIGTERM');
  assert.deepEqual(end, { code: 0, signal: null }, `clean exit on SIGTERM; server log:\n${server.log.join('\n')}`);
}

// The message element with id `id` on `page`.
const messageSel = (id) => `${tid('message-list')} [data-id="${id}"]`;

async function waitText(page, id, text, who) {
  await waitVisible(page, `${messageSel(id)} ${tid('message-text')}`, `${who}: message ${id} reads "${text}"`,
    { hasText: text });
}

async function waitReaction(page, id, label, who) {
  await waitVisible(page, `${messageSel(id)} ${tid('reaction')}`, `${who}: message ${id} shows ${label}`,
    { hasText: label });
}

// Hovers message `id` (its actions show on hover) and clicks its action `action`.
async function act(page, id, action) {
  await page.hover(messageSel(id));
  await page.click(`${messageSel(id)} ${tid(action)}`);
}

async function changesScenario() {
  const { server, alice, bob, pageErrors } = await twoPagesInGroup();
  const both = [[alice, 'alice'], [bob, 'bob']];
  await send(alice, 'helo wrld');
  for (const [page, who] of both) await waitText(page, 1, 'helo wrld', who);

  // Alice edits her message in the composer.
  await act(alice, 1, 'message-edit');
  await waitVisible(alice, tid('editing'), 'alice sees she is editing');
  assert.equal(await alice.inputValue(tid('send-input')), 'helo wrld', 'the composer holds the text to edit');
  await send(alice, 'hello world');
  for (const [page, who] of both) {
    await waitText(page, 1, 'hello world', who);
    await waitVisible(page, `${messageSel(1)} ${tid('edited')}`, `${who} sees (edited)`);
  }
  await waitHidden(alice, tid('editing'), 'the editing banner');
  // Only the author gets Edit and Delete.
  await bob.hover(messageSel(1));
  assert.equal(await bob.locator(`${messageSel(1)} ${tid('message-edit')}`).count(), 0, 'bob cannot edit it');
  assert.equal(await bob.locator(`${messageSel(1)} ${tid('message-delete')}`).count(), 0, 'bob cannot delete it');

  // Reactions: bob, then alice, then bob takes his back.
  await act(bob, 1, 'message-react');
  for (const [page, who] of both) await waitReaction(page, 1, '👍 1', who);
  await act(alice, 1, 'message-react');
  for (const [page, who] of both) await waitReaction(page, 1, '👍 2', who);
  await bob.click(`${messageSel(1)} ${tid('reaction')}`);
  for (const [page, who] of both) await waitReaction(page, 1, '👍 1', who);

  // A second message (entry 6), then alice deletes the first (entry 7).
  await send(alice, 'second');
  for (const [page, who] of both) await waitText(page, 6, 'second', who);
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  const before = SCREENSHOT.replace(/\.png$/, '-entries.png');
  await bob.screenshot({ path: before });
  await act(alice, 1, 'message-delete');
  for (const [page, who] of both) {
    await waitText(page, 1, 'message deleted', who);
    assert.equal(await page.locator(`${messageSel(1)} ${tid('reaction')}`).count(), 0, `${who}: no reactions left`);
    assert.ok(!(await page.textContent(tid('message-list'))).includes('hello world'), `${who}: the text is gone`);
  }
  // Only messages are shown: the edits, reactions and delete changed message 1.
  assert.deepEqual((await messageTexts(bob)).map((m) => m.id), [1, 6], 'bob shows messages 1 and 6');

  // A reload reads the history again: the tombstone, never the text.
  await bob.reload();
  await waitText(bob, 6, 'second', 'bob after reload');
  await waitText(bob, 1, 'message deleted', 'bob after reload');
  assert.ok(!(await bob.textContent(tid('message-list'))).includes('hello'), 'no deleted text after reload');
  const deleted = SCREENSHOT.replace(/\.png$/, '-deleted.png');
  await bob.screenshot({ path: deleted });
  console.log(`screenshots: ${before} ${deleted}`);
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  await stopServer(server, 'SIGTERM');
}

// The unread badge of `group` on `page`: its number, or 0 when there is none.
function badgeOf(page, group) {
  return page.$eval(`${tid('group-list')} [data-group="${group}"]`,
    (b) => Number((b.querySelector('[data-testid="unread-badge"]') || { textContent: '0' }).textContent));
}

// Saves the page beside SCREENSHOT as chat-NAME.png and says where.
async function screenshot(page, name) {
  const shot = SCREENSHOT.replace(/\.png$/, `-${name}.png`);
  fs.mkdirSync(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  console.log(`screenshot: ${shot}`);
}

async function waitSelect(page, level, who) {
  await page.waitForFunction((l) => document.querySelector('[data-testid="notify-select"]').value === l, level,
    { timeout: WAIT_MS }).catch(async () => {
    assert.fail(`${who}: the notification level is not ${level} but ` +
      `${await page.$eval('[data-testid="notify-select"]', (e) => e.value)}`);
  });
}

async function waitBadge(page, group, n, who) {
  try {
    await page.waitForFunction(([g, want]) => {
      const b = document.querySelector(`[data-testid="group-list"] [data-group="${g}"]`);
      const badge = b && b.querySelector('[data-testid="unread-badge"]');
      return (badge ? Number(badge.textContent) : 0) === want;
    }, [group, n], { timeout: WAIT_MS });
  } catch (e) {
    throw new Error(`${who}: badge of #${group} is ${await badgeOf(page, group).catch(() => '?')}, not ${n}`);
  }
}

// alice on two devices (pages with contexts of their own) looks at another
// group while bob writes in GROUP: both show the count; reading on one
// clears the other, through the server, and bob is shown that alice has
// seen his messages; a reload gets the count back from the server, not from
// the page.
async function unreadScenario() {
  const { server, base, alice, bob, pageErrors } = await twoPagesInGroup();
  await alice.fill(tid('group-create-input'), 'lobby');
  await alice.click(tid('group-create-button'));
  await alice.locator(tid('group-title'), { hasText: '#lobby' }).waitFor({ timeout: WAIT_MS });
  const context = await alice.context().browser().newContext({ viewport: { width: 1100, height: 680 } });
  const phone = await context.newPage();
  phone.on('pageerror', (e) => pageErrors.push(`alice's second device: ${e.message}`));
  await phone.goto(base, { timeout: WAIT_MS });
  await login(phone, 'alice');
  await phone.click(`${tid('group-list')} [data-group="lobby"]`);
  await phone.locator(tid('group-title'), { hasText: '#lobby' }).waitFor({ timeout: WAIT_MS });
  const devices = [[alice, 'alice'], [phone, "alice's second device"]];

  await send(bob, 'one');
  await send(bob, 'two');
  await send(bob, 'three');
  await waitForMessages(bob, ['one', 'two', 'three'], 'bob');
  for (const [page, who] of devices) await waitBadge(page, GROUP, 3, who);
  // A deleted unread message stops counting.
  await act(bob, 3, 'message-delete');
  for (const [page, who] of devices) await waitBadge(page, GROUP, 2, who);

  // alice opens the group on her first device: read there, and on the other.
  await alice.click(`${tid('group-list')} [data-group="${GROUP}"]`);
  await waitVisible(alice, tid('new-messages'), 'the "new messages" line');
  const lineBefore = await alice.$eval(tid('new-messages'), (e) => e.nextElementSibling.dataset.id);
  assert.equal(lineBefore, '1', 'the line is before the first unread message');
  fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
  const lineShot = SCREENSHOT.replace(/\.png$/, '-new-messages.png');
  await alice.screenshot({ path: lineShot });
  for (const [page, who] of devices) await waitBadge(page, GROUP, 0, who);
  // bob, looking at the group, is told alice has seen his messages (a read receipt).
  await waitVisible(bob, tid('seen'), 'bob sees that alice has seen it', { hasText: 'Seen by alice' });

  // One more from bob while both devices look elsewhere (a device showing
  // the group would read it at once): both count it; after a reload the
  // second still shows it, counted by the server.
  await alice.click(`${tid('group-list')} [data-group="lobby"]`);
  await alice.locator(tid('group-title'), { hasText: '#lobby' }).waitFor({ timeout: WAIT_MS });
  await send(bob, 'four');
  for (const [page, who] of devices) await waitBadge(page, GROUP, 1, who);
  await phone.reload();
  await phone.locator(`${tid('conn-status')}[data-state="connected"]`).waitFor({ state: 'attached', timeout: WAIT_MS });
  await phone.click(`${tid('group-list')} [data-group="lobby"]`);
  await waitBadge(phone, GROUP, 1, "alice's second device after a reload");
  const shot = SCREENSHOT.replace(/\.png$/, '-unread.png');
  await phone.screenshot({ path: shot });
  console.log(`screenshots: ${lineShot} ${shot}`);

  // Notification level: set on one device, shown on the other (told live,
  // and after a reload from the server's group list).
  await alice.click(`${tid('group-list')} [data-group="${GROUP}"]`);
  await alice.locator(tid('group-title'), { hasText: `#${GROUP}` }).waitFor({ timeout: WAIT_MS });
  await alice.selectOption(tid('notify-select'), 'mentions');
  await phone.click(`${tid('group-list')} [data-group="${GROUP}"]`);
  await waitSelect(phone, 'mentions', "alice's second device");
  await phone.reload();
  await phone.locator(`${tid('conn-status')}[data-state="connected"]`).waitFor({ state: 'attached', timeout: WAIT_MS });
  await phone.click(`${tid('group-list')} [data-group="${GROUP}"]`);
  await waitSelect(phone, 'mentions', "alice's second device after a reload");
  await context.close();
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  await stopServer(server, 'SIGTERM');
}

// bob's join and leave are entries of the group's log: alice's page shows
// them where they happened and its member list follows, without a reload.
async function membershipScenario() {
  const { server, alice, bob, pageErrors } = await twoPagesInGroup(['--membership-entries']);
  const line = (text) => alice.locator(tid('system-line'), { hasText: text });
  await line('bob joined').waitFor({ timeout: WAIT_MS });
  await waitVisible(alice, `${tid('members')} [data-user="bob"]`, "bob in alice's member list");
  await send(bob, 'hello, and bye');
  await waitForMessages(alice, ['hello, and bye'], 'alice');
  await bob.click(tid('group-leave-button'));
  await line('bob left').waitFor({ timeout: WAIT_MS });
  await waitHidden(alice, `${tid('members')} [data-user="bob"]`, "bob gone from alice's member list");
  const ids = await alice.$$eval(`${tid('message-list')} > li[data-id]`, (els) => els.map((e) => Number(e.dataset.id)));
  assert.deepEqual(ids, [1, 2, 3], 'the join, the message and the leave, in the log\'s order');
  await screenshot(alice, 'membership');
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  await stopServer(server, 'SIGTERM');
}

// bob answers alice's message with a reply that mentions her while she
// looks at another group: her group list shows the mention; opening the
// group shows the quote and marks the message.
async function replyScenario() {
  const { server, alice, bob, pageErrors } = await twoPagesInGroup();
  await send(alice, 'lunch at noon?');
  await waitForMessages(bob, ['lunch at noon?'], 'bob');
  await alice.fill(tid('group-create-input'), 'lobby');
  await alice.click(tid('group-create-button'));
  await alice.locator(tid('group-title'), { hasText: '#lobby' }).waitFor({ timeout: WAIT_MS });
  await waitVisible(bob, `${tid('members')} [data-user="alice"]`, "alice in bob's member list");
  await act(bob, 1, 'message-reply');
  await waitVisible(bob, tid('replying'), 'the reply bar', { hasText: 'Replying to alice' });
  await send(bob, '@alice yes, see you');
  await waitHidden(bob, tid('replying'), 'the reply bar after sending');
  await waitVisible(alice, `${tid('group-list')} [data-group="${GROUP}"] ${tid('mention-badge')}`,
    "alice's mention badge", { hasText: '@1' });
  for (const [page, who] of [[bob, 'bob'], [alice, 'alice']]) {
    if (page === alice) await alice.click(`${tid('group-list')} [data-group="${GROUP}"]`);
    await waitVisible(page, `${messageSel(2)} ${tid('quote')}`, `${who}: the quote`,
      { hasText: 'alice: lunch at noon?' });
  }
  const marked = await alice.$eval(messageSel(2), (e) => e.classList.contains('mentioned'));
  assert.ok(marked, 'the message that mentions alice is marked on her page');
  const notMarked = await bob.$eval(messageSel(2), (e) => e.classList.contains('mentioned'));
  assert.ok(!notMarked, 'and not on bob\'s');
  await waitHidden(alice, `${tid('group-list')} [data-group="${GROUP}"] ${tid('mention-badge')}`,
    "alice's mention badge once she has read it");
  await screenshot(alice, 'reply');
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  await stopServer(server, 'SIGTERM');
}

// alice makes a private group from the sidebar; bob's join is refused with
// a reason until she invites him from its settings panel; her change of
// topic reaches him as a line of the log and in the group's header.
async function privateGroupScenario() {
  const { server, alice, bob, pageErrors } = await twoPagesInGroup();
  await alice.fill(tid('group-create-input'), 'club');
  await alice.check(tid('group-create-private'));
  await alice.click(tid('group-create-button'));
  await alice.locator(tid('group-title'), { hasText: '#club' }).waitFor({ timeout: WAIT_MS });
  await waitVisible(alice, `${tid('group-sub')}[data-kind="private"]`, "alice's header says private");

  const join = async () => {
    await bob.fill(tid('group-join-input'), 'club');
    await bob.click(tid('group-join-button'));
  };
  await join();
  await waitVisible(bob, tid('toast'), "bob's refusal", { hasText: '#club is private: ask its owner for an invite.' });
  assert.equal(await bob.locator(`${tid('group-list')} [data-group="club"]`).count(), 0, 'bob is not in club');

  await alice.click(tid('group-settings-button'));
  await waitVisible(alice, tid('settings-panel'), "alice's settings panel");
  await alice.fill(tid('invite-input'), 'bob');
  await alice.click(tid('invite-button'));
  await waitVisible(alice, tid('toast'), "alice's invite", { hasText: 'bob may now join #club.' });
  await join();
  await bob.locator(tid('group-title'), { hasText: '#club' }).waitFor({ timeout: WAIT_MS });

  await alice.fill(tid('settings-topic'), 'season 2 starts Friday');
  await alice.fill(tid('settings-title'), 'The Club');
  await screenshot(alice, 'settings');
  await alice.click(tid('settings-save'));
  await waitHidden(alice, tid('settings-panel'), "alice's settings panel once saved");
  await waitVisible(bob, tid('system-line'), "the change in bob's history", { hasText: "alice changed the group's settings" });
  await waitVisible(bob, tid('group-sub'), "bob's header", { hasText: 'season 2 starts Friday' });
  await waitVisible(bob, tid('group-title'), "bob's title", { hasText: '#club — The Club' });
  // bob is no owner: he sees the settings, but cannot change them.
  await bob.click(tid('group-settings-button'));
  await waitVisible(bob, tid('settings-panel'), "bob's settings panel");
  assert.equal(await bob.inputValue(tid('settings-topic')), 'season 2 starts Friday');
  assert.ok(await bob.isDisabled(tid('settings-save')), "bob's save button is disabled");
  await screenshot(bob, 'private-group');
  assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  await stopServer(server, 'SIGTERM');
}


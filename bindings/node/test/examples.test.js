'use strict';
// The examples: host_node.js on its own, and bot.js against a real
// parley-server process (PARLEY_SERVER) started here on port 0.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');
const { httpJson, waitUntil, packageDir } = require('./helpers');

const examples = path.join(packageDir, 'examples');

// A child process whose output is collected as it comes.
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (out.stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, out, exited };
}

test('1. host_node.js: two nodes in one process with their own transport', () => {
  const r = spawnSync(process.execPath, [path.join(examples, 'host_node.js')], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /node-2 -> bob {4}general#1 from alice: "hello from node-1"/);
  assert.match(r.stdout, /node-1 -> alice  general#2 from bob: "hi alice, this is node-2"/);
  assert.match(r.stdout, /notify {2}carol {2}general#1 from alice/);
  assert.match(r.stdout, /node-1 -> bob {4}general#3 from alice: "bob, are you there\?"/, 'bob resumed on node-1');
  assert.match(r.stdout, /#3 alice: bob, are you there\?/);
});

test('2. bot.js answers "!echo" on a running parley-server', { skip: !process.env.PARLEY_SERVER && 'PARLEY_SERVER is not set' }, async (t) => {
  let WebSocket;
  try {
    WebSocket = require('ws');
  } catch {
    assert.fail('the ws package is missing: run npm ci in bindings/node (test/run.sh does)');
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-bot-'));
  const server = start(process.env.PARLEY_SERVER, ['--dev', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn']);
  let bot = null;
  t.after(async () => {
    for (const p of [bot, server]) {
      if (p && p.child.exitCode === null && p.child.signalCode === null) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const port = await waitUntil(() => server.out.stdout.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)?.[1], 'the server to listen', 15000);
  const url = `http://127.0.0.1:${port}`;

  bot = start(process.execPath, [path.join(examples, 'bot.js'), '--url', url, '--group', 'lobby', '--max-seconds', '60']);
  await waitUntil(() => /ready/.test(bot.out.stdout) || bot.child.exitCode !== null, 'the bot to be ready', 15000);
  assert.match(bot.out.stdout, /ready/, bot.out.stderr);

  // alice talks to it over the WebSocket protocol.
  const login = await httpJson(`${url}/v1/login`, { method: 'POST', body: { user: 'alice', password: '' } });
  await httpJson(`${url}/v1/groups/lobby/join`, { method: 'POST', token: login.body.token });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws?token=${login.body.token}`);
  const events = [];
  ws.on('message', (d) => events.push(JSON.parse(d.toString('utf8'))));
  await waitUntil(() => events.some((e) => e.t === 'hello'), 'hello');
  ws.send(JSON.stringify({ t: 'resume', g: 'lobby', after: 0, epoch: 0 }));
  await waitUntil(() => events.some((e) => e.t === 'resumed'), 'resumed');
  ws.send(JSON.stringify({ t: 'send', g: 'lobby', cid: 'a1', c: 'no command here' }));
  ws.send(JSON.stringify({ t: 'send', g: 'lobby', cid: 'a2', c: '!echo hello, bot' }));
  const reply = await waitUntil(() => events.find((e) => e.t === 'msg' && e.u === 'echo-bot'), 'the echo', 15000);
  assert.equal(reply.c, 'echo: hello, bot');
  ws.close();

  // Only the "!echo" message was answered.
  bot.child.kill('SIGTERM');
  const { code } = await bot.exited;
  assert.equal(code, 0, bot.out.stderr);
  const answered = bot.out.stdout.split('\n').filter((l) => l.includes('->'));
  assert.deepEqual(answered, ['#2 alice: !echo hello, bot -> echo: hello, bot']);
});

test('3. bot.js stops by itself after --max-seconds', { skip: !process.env.PARLEY_SERVER && 'PARLEY_SERVER is not set' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-bot-'));
  const server = start(process.env.PARLEY_SERVER, ['--dev', '--listen', '127.0.0.1:0', '--data-dir', dir, '--log-level', 'warn']);
  t.after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const port = await waitUntil(() => server.out.stdout.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\//)?.[1], 'the server to listen', 15000);
  const started = Date.now();
  const bot = start(process.execPath, [path.join(examples, 'bot.js'), '--url', `http://127.0.0.1:${port}`, '--max-seconds', '1']);
  const { code } = await bot.exited;
  assert.equal(code, 0, bot.out.stderr);
  assert.match(bot.out.stdout, /ready/);
  assert.ok(Date.now() - started < 20000);
});

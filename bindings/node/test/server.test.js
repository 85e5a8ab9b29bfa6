'use strict';
// Server: parley-server in-process on its own thread.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { parley, httpJson, packageDir } = require('./helpers');

const { Server, Store, ParleyError, codes } = parley;

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-server-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('1. starts on port 0, answers HTTP, and closes (twice is fine)', async (t) => {
  const server = await Server.start({ listen: '127.0.0.1:0', dev: true, dataDir: tmpDir(t), logLevel: 'warn' });
  try {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}/`);
    const health = await httpJson(`${server.url}healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    const login = await httpJson(`${server.url}v1/login`, { method: 'POST', body: { user: 'alice', password: 'x' } });
    assert.equal(login.status, 200);
    const created = await httpJson(`${server.url}v1/groups`, {
      method: 'POST',
      body: { group: 'general' },
      token: login.body.token,
    });
    assert.equal(created.status, 201);
    assert.equal(created.body.role, 'owner');
  } finally {
    await server.close();
  }
  await server.close();
  assert.equal(server.closed, true);
  assert.throws(() => server.port, (e) => e instanceof ParleyError && e.code === codes.CLOSED);
});

test('2. the in-process server and a Store share a SQLite file', async (t) => {
  const dir = tmpDir(t);
  const server = await Server.start({ listen: '127.0.0.1:0', dev: true, dataDir: dir, logLevel: 'warn' });
  const store = Store.sqlite(path.join(dir, 'parley.db'));
  try {
    store.createGroup('from-js', 'alice');
    const { body } = await httpJson(`${server.url}v1/login`, { method: 'POST', body: { user: 'alice', password: '' } });
    const groups = await httpJson(`${server.url}v1/groups`, { token: body.token });
    assert.deepEqual(groups.body.groups,
      [{ group: 'from-js', role: 'owner', epoch: 0, read: 0, head: 0, unread: 0, mentions: 0, notify: 'all' }]);
  } finally {
    store.close();
    await server.close();
  }
});

test('3. a server that cannot start rejects with a ParleyError', async (t) => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  try {
    const port = blocker.address().port;
    await assert.rejects(
      Server.start({ listen: `127.0.0.1:${port}`, dev: true, dataDir: tmpDir(t), logLevel: 'error' }),
      (e) => e instanceof ParleyError && e.code === codes.UNAVAILABLE,
    );
  } finally {
    blocker.close();
  }
  await assert.rejects(Server.start({ noSuchOption: 1 }), (e) => e instanceof ParleyError && e.name === 'invalid_argument');
  await assert.rejects(Server.start({ 'Bad Name': 1 }), (e) => e instanceof ParleyError && e.name === 'invalid_argument');
});

test('4. the process exits cleanly with a server running (exit cleanup) or unref()ed', (t) => {
  const dir = tmpDir(t);
  const run = (body) => {
    const script = `
      const { Server } = require(${JSON.stringify(packageDir)});
      (async () => {
        const server = await Server.start({ listen: '127.0.0.1:0', dev: true, dataDir: ${JSON.stringify(dir)}, logLevel: 'warn' });
        ${body}
      })();
    `;
    return spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30000 });
  };
  const exited = run(`console.log('port', server.port); process.exit(3);`);
  assert.equal(exited.status, 3, exited.stderr);
  assert.match(exited.stdout, /listening on http:\/\/127\.0\.0\.1:\d+\//);
  const unrefed = run(`server.unref(); console.log('unrefed');`);
  assert.equal(unrefed.status, 0, unrefed.stderr);
  assert.match(unrefed.stdout, /unrefed/);
  const closed = run(`await server.close(); console.log('closed');`);
  assert.equal(closed.status, 0, closed.stderr);
  assert.match(closed.stdout, /closed/);
});

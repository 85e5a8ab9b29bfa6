'use strict';
// Posting: functions posted from JavaScript, posts from a native thread
// (the wakeup callback reaching JavaScript through a thread-safe function),
// and destroying a node while posts and wakeups are pending: nothing
// crashes, every promise settles, every native object is freed.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parley, waitUntil, settle, gc, packageDir } = require('./helpers');

const { Node, Store, ParleyError, codes } = parley;
// Built without parley-server (PARLEY_BUILD_EXAMPLES=OFF): no in-process server to start.
const noServer = process.env.PARLEY_WITHOUT_SERVER === '1' && 'built without parley-server';
const testing = parley._addon.testing;

// Every native object the addon handed to the library has been freed (the
// last ones, thread-safe function contexts, a few loop turns after close).
function allFreed() {
  return waitUntil(() => testing.liveObjects() === 0, 'every native object to be freed');
}

function nodeOnMemory(options) {
  const store = Store.memory();
  const node = new Node(store, options);
  store.close();  // the node keeps it
  return node;
}

test('1. posted functions run in order at the next turn and resolve with their result', async () => {
  const node = nodeOnMemory();
  try {
    const order = [];
    const a = node.post(() => order.push('a') && 'A');
    const b = node.post(async (n) => {
      order.push('b');
      return n.sessionCount;
    });
    assert.deepEqual(order, [], 'nothing runs inside post()');
    assert.deepEqual(await Promise.all([a, b]), ['A', 0]);
    assert.deepEqual(order, ['a', 'b']);
    await assert.rejects(node.post(() => {
      throw new Error('inside');
    }), /inside/);
  } finally {
    node.close();
  }
});

test('2. a posted function may use its node, and runPosted() runs them at once', async () => {
  const node = nodeOnMemory({ autoFlush: false });
  try {
    const p = node.post((n) => n.openSession('alice'));
    assert.equal(node.runPosted(), 1);
    assert.equal(await p, 1);
    assert.equal(node.sessionCount, 1);
  } finally {
    node.close();
  }
});

test('3. closing with posts pending rejects them with "closed" and frees everything', async () => {
  await allFreed();
  const node = nodeOnMemory();
  const pending = [];
  for (let i = 0; i < 100; ++i) pending.push(node.post(() => i));
  node.close();
  const results = await Promise.allSettled(pending);
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.ok(r.reason instanceof ParleyError);
    assert.equal(r.reason.code, codes.CLOSED);
  }
  await allFreed();
});

test('4. posts from another thread wake the node up and run on the JavaScript thread', async () => {
  await allFreed();
  const start = testing.threadPosts();
  const node = nodeOnMemory();
  try {
    const { posted, refused } = await testing.postFromThread(nativeOf(node), 2000);
    assert.equal(posted, 2000);
    assert.equal(refused, 0);
    // Nobody calls flush(): the wakeup does.
    await waitUntil(() => testing.threadPosts().ran - start.ran === 2000, 'all 2000 to run');
    assert.equal(testing.threadPosts().freed - start.freed, 2000);
  } finally {
    node.close();
  }
  await allFreed();
});

test('5. destroying a node while another thread posts to it neither crashes nor leaks', async () => {
  await allFreed();
  for (let round = 0; round < 5; ++round) {
    const start = testing.threadPosts();
    const node = nodeOnMemory();
    const posting = testing.postFromThread(nativeOf(node), 20000);
    const js = Promise.allSettled([node.post(() => 1), node.post(() => 2)]);  // may run or be dropped
    await new Promise((r) => setTimeout(r, 1 + round));
    node.close();
    const { posted, refused } = await posting;
    assert.equal(posted + refused, 20000);
    for (const r of await js) assert.ok(r.status === 'fulfilled' || r.reason.name === 'closed');
    await settle();
    const now = testing.threadPosts();
    assert.equal(now.freed - start.freed, posted, `round ${round}: every accepted post freed once`);
    assert.ok(now.ran - start.ran <= posted);
  }
  await allFreed();
});

test('6. a node dropped without close() is reclaimed by the garbage collector', async () => {
  await allFreed();
  (() => {
    const node = nodeOnMemory();
    node.post(() => 1);  // never awaited
  })();
  const collect = gc();
  await waitUntil(() => {
    collect();
    return testing.liveObjects() === 0;
  }, 'the garbage collector to destroy the node');
});

test('7. an idle node does not keep the process alive; a pending post does until it runs', () => {
  const script = `
    const { Node, Store } = require(${JSON.stringify(packageDir)});
    const node = new Node(Store.memory());
    node.post(() => console.log('posted ran'));
    // no close(): the process must still exit
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /posted ran/);
});

// Each half on its own in the worker of this process; test 9 has both at
// once, test 10 the JavaScript that still runs while a worker is terminated.
for (const [name, setup] of [
  ['posts in flight', `parley._addon.testing.postFromThread(node._native, 100000);
    node.post(() => 1);
    parentPort.postMessage(1);`],
  ['a server running', `parley.Server.start({ listen: '127.0.0.1:0', store: 'memory', dataDir: workerData, dev: true, logLevel: 'warn' })
      .then((server) => parentPort.postMessage(server.port));`],
]) {
  test(`8. a worker thread terminated with ${name} tears down cleanly`, { skip: name === 'a server running' && noServer }, async (t) => {
    const { Worker } = require('node:worker_threads');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-worker-'));
    t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
    const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const parley = require(${JSON.stringify(packageDir)});
    const node = new parley.Node(parley.Store.memory());
    ${setup}
  `;
    for (let i = 0; i < 3; ++i) {
      const worker = new Worker(code, { eval: true, workerData: dataDir, stdout: true });
      const port = await new Promise((resolve, reject) => {
        worker.on('message', resolve);
        worker.on('error', reject);
      });
      assert.ok(port > 0);
      await worker.terminate();
    }
  });
}

// Runs `script` in a child process (its main thread loads no addon, so the
// last worker to end unloads it, as in an application that uses parley in
// workers only) and checks that it exits cleanly: a crash shows as a signal.
function runChild(script, what) {
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.signal, null, `${what}: the process was killed by ${r.signal}\n${r.stderr}`);
  assert.equal(r.status, 0, `${what}: exit status ${r.status}\n${r.stderr}`);
  return r.stdout;
}

test('9. a worker thread terminated with posts in flight and a server running tears down cleanly', { skip: noServer }, (t) => {
  // Both at once (this crashed at teardown in about 1 run of 4): each worker
  // starts a server, has 100000 posts from a native thread in flight (their
  // wakeups keep its JavaScript busy and allocating), drops its Server and
  // collects garbage (a running server must not be collected: that leaked
  // it, still running, its threads outliving the addon), then is
  // terminated; its server must be gone with it (the port refuses).
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-worker-'));
  t.after(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const v8 = require('node:v8');
    const vm = require('node:vm');
    const parley = require(${JSON.stringify(packageDir)});
    v8.setFlagsFromString('--expose-gc');
    const collect = vm.runInNewContext('gc');
    const tick = (ms) => new Promise((r) => setTimeout(r, ms));
    const node = new parley.Node(parley.Store.memory());
    parley._addon.testing.postFromThread(node._native, 100000);
    node.post(() => 1);
    parley.Server.start({ listen: '127.0.0.1:0', store: 'memory', dataDir: workerData, dev: true, logLevel: 'warn' })
      .then((server) => server.port)
      .then(async (port) => {
        for (let i = 0; i < 3; ++i) {  // the Server is unreachable now: finalizers run on later turns
          collect();
          await tick(10);
        }
        parentPort.postMessage(port);
      });
  `;
  const script = `
    const { Worker } = require('node:worker_threads');
    const net = require('node:net');
    const refused = (port) => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.on('connect', () => { s.destroy(); resolve(false); });
      s.on('error', () => resolve(true));
    });
    (async () => {
      for (let i = 0; i < 4; ++i) {
        const worker = new Worker(${JSON.stringify(code)}, { eval: true, workerData: ${JSON.stringify(dataDir)}, stdout: true });
        const port = await new Promise((resolve, reject) => {
          worker.on('message', resolve);
          worker.on('error', reject);
        });
        if (!(port > 0)) throw new Error('no port: ' + port);
        await worker.terminate();
        if (!(await refused(port))) throw new Error('round ' + i + ': the server still listens on ' + port + ' after its worker ended');
      }
      console.log('4 rounds');
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  `;
  for (let run = 0; run < 3; ++run) assert.match(runChild(script, `run ${run}`), /4 rounds/);
});

test('10. JavaScript calling a native object while its worker is terminated does not crash', () => {
  // worker.terminate() makes Node-API calls fail at once (from the parent
  // thread) while the worker's JavaScript keeps running until V8 acts on
  // the termination: here the worker is inside a native call when that
  // happens, and the JavaScript after it calls the node's native members
  // (as a wakeup does). Unwrapping `this` fails then; that must not be a
  // call on a null object.
  const code = `
    const { parentPort } = require('node:worker_threads');
    const parley = require(${JSON.stringify(packageDir)});
    const node = new parley.Node(parley.Store.memory());
    const native = node._native;
    parentPort.postMessage('calling');
    parley._addon.testing.sleep(500);  // terminate() arrives meanwhile
    native.closed;
    native.runPosted();
    native.flush();
    native.closed;
  `;
  const script = `
    const { Worker } = require('node:worker_threads');
    (async () => {
      for (let i = 0; i < 3; ++i) {
        const worker = new Worker(${JSON.stringify(code)}, { eval: true });
        await new Promise((resolve, reject) => {
          worker.on('message', resolve);
          worker.on('error', reject);
        });
        await worker.terminate();
      }
      console.log('3 rounds');
    })().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  `;
  assert.match(runChild(script, 'terminated mid-call'), /3 rounds/);
});

// The addon's node inside a Node (for the test helper only).
function nativeOf(node) {
  return node._native;
}

'use strict';
// Errors: ParleyError's shape, the codes, argument checks, and every object
// refusing calls after close() with a clear error.
const test = require('node:test');
const assert = require('node:assert/strict');
const { parley, waitUntil } = require('./helpers');

const { Node, Store, ParleyError, codes, codeName } = parley;

const isClosed = (what) => (e) =>
  e instanceof ParleyError && e.code === codes.CLOSED && e.name === 'closed' && e.message.includes(what) &&
  /after close\(\)|closed/.test(e.message);

test('1. ParleyError carries the stable code and its short name', () => {
  const store = Store.memory();
  try {
    store.createGroup('general', 'alice');
    let err;
    try {
      store.createGroup('general', 'bob');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ParleyError);
    assert.ok(err instanceof Error);
    assert.equal(err.code, codes.ALREADY_EXISTS);
    assert.equal(err.code, 4);
    assert.equal(err.name, 'already_exists');
    assert.match(err.message, /general/);
    assert.match(String(err), /^already_exists: /);
    assert.ok(err.stack.includes('errors.test.js'));
  } finally {
    store.close();
  }
});

test('2. the codes table matches the library', () => {
  const names = Object.fromEntries(Object.entries(codes).map(([k, v]) => [v, k.toLowerCase()]));
  for (let c = 0; c <= 13; ++c) {
    if (c === 0) continue;
    assert.equal(codeName(c), names[c], `code ${c}`);
  }
  assert.equal(codeName(0), 'ok');
  assert.equal(codeName(9999), 'unknown');
  assert.equal(parley.version, '0.1.0');
});

test('3. store errors map to codes', () => {
  const store = Store.memory();
  try {
    store.createGroup('general', 'alice');
    const code = (fn) => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof ParleyError, String(e));
        return e.name;
      }
      return 'ok';
    };
    assert.equal(code(() => store.join('nope', 'bob')), 'not_found');
    assert.equal(code(() => store.leave('general', 'bob')), 'not_found');
    assert.equal(code(() => store.history('general', { asUser: 'bob' })), 'permission_denied');
    assert.equal(code(() => store.history('nope')), 'not_found');
    assert.equal(code(() => store.history('general', { limit: 0 })), 'invalid_argument');
    assert.equal(code(() => store.createGroup('', 'alice')), 'invalid_argument');
    assert.equal(code(() => store.createGroup('a\0b', 'alice')), 'invalid_argument');  // not cut to 'a'
    assert.equal(code(() => store.join('a', 'bob')), 'not_found');
    assert.equal(code(() => store.createGroup('x'.repeat(1000), 'alice')), 'too_large');
  } finally {
    store.close();
  }
});

test('3b. a SQLite file that cannot be opened is refused, saying why', () => {
  // A file that cannot be opened is unavailable (parley.h).
  assert.throws(
    () => Store.sqlite('/nonexistent-dir/x/y.db'),
    (e) => e instanceof ParleyError && e.name === 'unavailable' && e.message.includes('y.db'),
  );
});

test('4. wrong argument types are TypeErrors', () => {
  const store = Store.memory();
  const node = new Node(store);
  try {
    assert.throws(() => new Node({}), TypeError);
    assert.throws(() => new Node(store, { codec: 'xml' }), TypeError);
    assert.throws(() => new Node(store, { clock: 5 }), TypeError);
    assert.throws(() => node.openSession(42), TypeError);
    assert.throws(() => node.openSession('alice', -1), TypeError);
    assert.throws(() => node.openSession('alice', 1.5), TypeError);
    const s = node.openSession('alice');
    assert.throws(() => node.request(s, 42), TypeError);
    assert.throws(() => node.peerBatch('text'), TypeError);
    assert.throws(() => store.createGroup(1, 2), TypeError);
    assert.throws(() => node.post('not a function'), TypeError);
    assert.throws(() => new Store(), TypeError);
  } finally {
    node.close();
    store.close();
  }
});

test('5. library-level misuse is a ParleyError', () => {
  const store = Store.memory();
  const node = new Node(store);
  try {
    assert.throws(() => node.peerBatch(Buffer.from('not a batch')), (e) => e.name === 'invalid_argument');
    // [1, <129 x "n">, []]: a node id over the limit is too_large, as from a client
    const longFrom = Buffer.concat([Buffer.from([0x93, 0x01, 0xd9, 129]), Buffer.alloc(129, 'n'), Buffer.from([0x90])]);
    assert.throws(() => node.peerBatch(longFrom), (e) => e.name === 'too_large');
    assert.throws(() => node.closeSession(1, { code: 99 }), (e) => e.name === 'invalid_argument');
    assert.throws(() => new Node(store, { nodeId: '' }), (e) => e instanceof ParleyError);
    assert.throws(() => new Node(store, { pullPolicy: { enterRate: 1, exitRate: 5 } }), (e) => e.name === 'invalid_argument');
  } finally {
    node.close();
    store.close();
  }
});

test('6. a Node refuses every call after close(); close() twice is fine', () => {
  const store = Store.memory();
  const node = new Node(store);
  const s = node.openSession('alice');
  node.close();
  node.close();
  assert.equal(node.closed, true);
  const calls = [
    () => node.openSession('bob'),
    () => node.closeSession(s),
    () => node.request(s, '{}'),
    () => node.sessionDrained(s, 10),
    () => node.peerBatch(Buffer.alloc(1)),
    () => node.peerResult('node-2', 1, true),
    () => node.memberRemoved('g', 'u'),
    () => node.timerFired(),
    () => node.flush(),
    () => node.runPosted(),
    () => node.post(() => {}),
    () => node.sessionCount,
  ];
  for (const call of calls) assert.throws(call, isClosed('Node'), call.toString());
  store.close();
});

test('7. a Store refuses calls after close(); nodes keep it alive', async () => {
  const store = Store.memory();
  store.createGroup('general', 'alice');
  const node = new Node(store);
  store.close();
  store.close();
  for (const call of [
    () => store.createGroup('g', 'u'),
    () => store.join('g', 'u'),
    () => store.leave('g', 'u'),
    () => store.history('g'),
    () => new Node(store),
  ]) {
    assert.throws(call, isClosed('Store'), call.toString());
  }
  // The node still runs on the closed store's data.
  const frames = [];
  node.on('deliver', (s, f) => frames.push(...f.map((x) => JSON.parse(x))));
  const s = node.openSession('alice');
  node.request(s, { t: 'send', g: 'general', cid: 'c1', c: 'still here' });
  await waitUntil(() => frames.some((e) => e.t === 'ack'), 'the ack');
  node.close();
});

'use strict';
// Store: memory and SQLite stores and the admin helpers.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parley, Client } = require('./helpers');

const { Node, Store } = parley;

async function sendAll(store, texts) {
  const node = new Node(store);
  const alice = new Client(node, 'alice');
  texts.forEach((t, i) => alice.send('general', t, `c${i}`));
  await alice.waitFor((e) => e.t === 'ack' && e.cid === `c${texts.length - 1}`, 'the last ack');
  node.close();
}

test('1. groups, members and paged history on the memory store', async () => {
  const store = Store.memory();
  try {
    store.createGroup('general', 'alice');
    store.join('general', 'bob');
    store.join('general', 'bob');  // joining twice is fine
    await sendAll(store, ['one', 'two', 'three', 'four', 'five']);
    const all = store.history('general');
    assert.deepEqual(all.map((m) => m.msgId), [1, 2, 3, 4, 5]);
    assert.deepEqual(all.map((m) => m.text), ['one', 'two', 'three', 'four', 'five']);
    assert.equal(all[1].prevMsgId, 1);
    assert.equal(all[0].epoch, 1);
    assert.equal(all[0].clientMsgId, 'c0');
    assert.ok(all[0].timestampMs > 1.5e12);
    const page = store.history('general', { after: 2, limit: 2 });
    assert.deepEqual(page.map((m) => m.msgId), [3, 4]);
    assert.equal(store.history('general', { asUser: 'bob' }).length, 5);
    store.leave('general', 'bob');
    assert.throws(() => store.history('general', { asUser: 'bob' }), (e) => e.name === 'permission_denied');
    assert.deepEqual(store.history('general', { after: 5 }), []);
  } finally {
    store.close();
  }
});

test('2. a SQLite store keeps its data across reopen', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-'));
  const file = path.join(dir, 'chat.db');
  try {
    const first = Store.sqlite(file, { syncNormal: true });
    first.createGroup('general', 'alice');
    await sendAll(first, ['persisted ünïcode ✓']);
    first.close();
    const again = Store.sqlite(file);
    const h = again.history('general');
    assert.equal(h.length, 1);
    assert.equal(h[0].text, 'persisted ünïcode ✓');
    assert.throws(() => again.createGroup('general', 'bob'), (e) => e.name === 'already_exists');
    again.close();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

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

test('3. read states: unread counts of the user in each group, and a read that moves forward only', async () => {
  const store = Store.memory();
  try {
    store.createGroup('general', 'alice');
    store.join('general', 'bob');
    store.createGroup('quiet', 'bob');
    await sendAll(store, ['one', 'two', 'three']);  // by alice
    const states = store.readStates('bob');
    assert.deepEqual(states.map((s) => [s.groupId, s.epoch, s.msgId, s.head, s.unread, s.mentions]),
      [['general', 1, 0, 3, 3, 0], ['quiet', 0, 0, 0, 0, 0]]);
    assert.equal(store.readStates('alice')[0].unread, 0, "alice's own messages");
    const s = store.markRead('general', 'bob', { epoch: 1, msgId: 2 });
    assert.deepEqual([s.msgId, s.unread], [2, 1]);
    assert.equal(store.markRead('general', 'bob', { epoch: 1, msgId: 1 }).msgId, 2, 'never back');
    assert.throws(() => store.markRead('general', 'bob', { epoch: 7, msgId: 1 }), (e) => e.name === 'epoch_mismatch');
    assert.throws(() => store.markRead('general', 'mallory', { epoch: 1, msgId: 1 }), (e) => e.name === 'not_found');
    assert.deepEqual(store.readStates('nobody'), []);
  } finally {
    store.close();
  }
});

test('4. group kinds and settings: private groups, invites, member limits and discovery', () => {
  const store = Store.memory();
  try {
    store.createGroup('club', 'erin', { kind: 'private', title: 'The Club', topic: 'members only', memberLimit: 3 });
    store.createGroup('club-open', 'erin');
    assert.deepEqual(store.groupInfo('club'),
      { groupId: 'club', kind: 'private', title: 'The Club', topic: 'members only', memberLimit: 3, members: 1 });
    assert.throws(() => store.askToJoin('club', 'frank'), (e) => e.name === 'permission_denied');
    store.invite('club', 'frank');
    store.askToJoin('club', 'frank');
    store.join('club', 'gus');  // the host's join needs no invite ...
    assert.throws(() => store.join('club', 'hal'), (e) => e.name === 'limit_exceeded');  // ... but keeps the limit
    const changed = store.setGroupSettings('club', { kind: 'public', topic: 'now open' });
    assert.deepEqual([changed.kind, changed.title, changed.topic, changed.members], ['public', 'The Club', 'now open', 3]);
    assert.throws(() => store.setGroupSettings('club', { kind: 'secret' }), TypeError);
    assert.throws(() => store.setGroupSettings('club', { title: 't'.repeat(201) }), (e) => e.name === 'too_large');
    assert.deepEqual(store.groupInfo('club'), changed);
    assert.deepEqual(store.publicGroups('club', { limit: 1 }).map((g) => g.groupId), ['club']);
    assert.deepEqual(store.publicGroups('club', { after: 'club' }).map((g) => g.groupId), ['club-open']);
    assert.deepEqual(store.publicGroups('zzz'), []);
    assert.throws(() => store.groupInfo('nope'), (e) => e.name === 'not_found');
    assert.throws(() => store.publicGroups('', { limit: 0 }), (e) => e.name === 'invalid_argument');
  } finally {
    store.close();
  }
});

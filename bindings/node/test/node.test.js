'use strict';
// Node: two nodes in one process joined by a JavaScript loopback transport,
// the events they emit, and the ways a host drives them.
const test = require('node:test');
const assert = require('node:assert/strict');
const { parley, linkNodes, Client, waitUntil } = require('./helpers');

const { Node, Store, ParleyError, codes } = parley;

function cluster(options = {}) {
  const store = Store.memory();
  store.createGroup('general', 'alice');
  for (const u of ['bob', 'carol']) store.join('general', u);
  const n1 = new Node(store, { nodeId: 'node-1', seed: 1, ...options });
  const n2 = new Node(store, { nodeId: 'node-2', seed: 2, ...options });
  linkNodes([n1, n2]);
  const close = () => {
    n1.close();
    n2.close();
    store.close();
  };
  return { store, n1, n2, close };
}

test('1. a message crosses from one node to the other and is stored', async () => {
  const { store, n1, n2, close } = cluster();
  try {
    const alice = new Client(n1, 'alice');
    const bob = new Client(n2, 'bob');
    alice.resume('general');
    bob.resume('general');
    await alice.waitFor((e) => e.t === 'resumed', 'resumed');
    await bob.waitFor((e) => e.t === 'resumed', 'resumed');
    alice.send('general', 'hello bob', 'a-1');
    const ack = await alice.waitFor((e) => e.t === 'ack', 'ack');
    assert.equal(ack.id, 1);
    const msg = await bob.waitFor((e) => e.t === 'msg', 'msg on node-2');
    assert.deepEqual([msg.g, msg.id, msg.u, msg.c, msg.cid], ['general', 1, 'alice', 'hello bob', 'a-1']);
    const history = store.history('general');
    assert.equal(history.length, 1);
    assert.equal(history[0].text, 'hello bob');
    assert.equal(history[0].userId, 'alice');
    assert.ok(Buffer.isBuffer(history[0].contents));
    assert.equal(n1.sessionCount, 1);
  } finally {
    close();
  }
});

test('2. a listener may call its own node (answer from inside "deliver")', async () => {
  const { n1, n2, close } = cluster();
  try {
    const alice = new Client(n1, 'alice');
    const bobSession = n2.openSession('bob');
    let bobResumed = false;
    n2.on('deliver', (session, frames, bytes) => {
      if (session !== bobSession) return;
      n2.sessionDrained(session, bytes);
      for (const f of frames) {
        const ev = JSON.parse(f);
        if (ev.t === 'resumed') bobResumed = true;
        if (ev.t === 'msg' && ev.u !== 'bob' && ev.c.startsWith('!echo ')) {
          n2.request(session, { t: 'send', g: ev.g, cid: `echo-${ev.id}`, c: ev.c.slice(6) });
        }
      }
    });
    n2.request(bobSession, { t: 'resume', g: 'general', after: 0, epoch: 0 });
    alice.resume('general');
    await alice.waitFor((e) => e.t === 'resumed');
    await waitUntil(() => bobResumed, 'bob resumed');
    alice.send('general', '!echo ping');
    const echo = await alice.waitFor((e) => e.t === 'msg' && e.u === 'bob', 'the echo');
    assert.equal(echo.c, 'ping');
  } finally {
    close();
  }
});

test('3. an offline member is notified', async () => {
  const { n1, close } = cluster();
  try {
    const notes = [];
    n1.on('notify', (n) => notes.push(n));
    const alice = new Client(n1, 'alice');
    alice.resume('general');
    alice.send('general', 'are you there, carol?');
    await waitUntil(() => notes.find((n) => n.userId === 'carol'), 'a notification for carol');
    const n = notes.find((x) => x.userId === 'carol');
    assert.equal(n.groupId, 'general');
    assert.equal(n.senderId, 'alice');
    assert.equal(n.msgId, 1);
    assert.equal(n.preview, 'are you there, carol?');
    assert.equal(typeof n.reason, 'string');
  } finally {
    close();
  }
});

test('3b. notification levels decide who is notified, and a notification says who was mentioned', async () => {
  const { store, n1, close } = cluster();
  try {
    assert.equal(store.notifyLevel('general', 'carol'), 'all');
    store.setNotifyLevel('general', 'carol', 'mentions');
    assert.equal(store.notifyLevel('general', 'carol'), 'mentions');
    assert.throws(() => store.setNotifyLevel('general', 'carol', 'loud'), TypeError);
    assert.throws(() => store.setNotifyLevel('general', 'mallory', 'none'), (e) => e.name === 'not_found');
    assert.throws(() => store.notifyLevel('general', 'mallory'), (e) => e.name === 'not_found');
    const notes = [];
    n1.on('notify', (n) => notes.push(n));
    const alice = new Client(n1, 'alice');
    alice.send('general', 'plain');
    alice.request({ t: 'send', g: 'general', cid: 'm1', c: '@carol', mn: ['carol'] });
    await waitUntil(() => notes.find((n) => n.userId === 'carol'), 'a notification for carol');
    assert.deepEqual(notes.filter((n) => n.userId === 'carol').map((n) => [n.msgId, n.mentioned]), [[2, true]]);
  } finally {
    close();
  }
});

test('3c. a recorded membership change and a system notice are pushed like messages', async () => {
  const { store, n1, close } = cluster();
  try {
    const alice = new Client(n1, 'alice');
    alice.resume('general');
    await alice.waitFor((e) => e.t === 'resumed');
    store.join('general', 'dave');
    n1.recordMembership('general', 'join', 'dave');
    const join = await alice.waitFor((e) => e.t === 'msg' && e.k === 'join', 'the join');
    assert.deepEqual([join.id, join.u, join.c], [1, 'dave', '']);
    assert.throws(() => n1.recordMembership('general', 'created', 'dave'), TypeError);
    assert.throws(() => n1.recordMembership('general', 'removed', 'alice'), (e) => e.name === 'invalid_argument');
    n1.recordSystem('general', 'game', 'alice won', { cid: 's1', meta: { score: [3, 1] } });
    const notice = await alice.waitFor((e) => e.t === 'msg' && e.k === 'system', 'the notice');
    assert.deepEqual([notice.id, notice.u, notice.c, notice.meta], [2, 'game', 'alice won', { score: [3, 1] }]);
    assert.throws(() => n1.recordSystem('general', 'game', ''), (e) => e.name === 'invalid_argument');
  } finally {
    close();
  }
});

test('3d. entries carry every field, and a folded page folds edits, reactions and replies', async () => {
  const { store, n1, close } = cluster();
  try {
    const alice = new Client(n1, 'alice');
    const bob = new Client(n1, 'bob');
    alice.request({ t: 'send', g: 'general', cid: 'a1', c: 'hello' });
    await alice.waitFor((e) => e.t === 'ack' && e.cid === 'a1', 'the first ack');
    alice.request({ t: 'edit', g: 'general', cid: 'a2', to: 1, c: 'hello!' });
    bob.request({ t: 'react', g: 'general', cid: 'b1', to: 1, c: '👍' });
    bob.request({ t: 'send', g: 'general', cid: 'b2', c: '@alice hi', re: 1, mn: ['alice'], meta: { x: [1] } });
    await bob.waitFor((e) => e.t === 'ack' && e.cid === 'b2', 'the answer\'s ack');
    const page = store.entries('general', { asUser: 'bob' });
    assert.deepEqual([page.head, page.to], [4, 4]);
    assert.deepEqual(page.entries.map((e) => e.kind), ['message', 'edit', 'reaction', 'message']);
    assert.deepEqual([page.entries[1].target, page.entries[1].text], [1, 'hello!']);
    const answer = page.entries[3];
    assert.deepEqual([answer.replyTo, answer.mentions, answer.meta], [1, ['alice'], { x: [1] }]);
    const folded = store.entries('general', { asUser: 'bob', fold: true });
    assert.deepEqual(folded.entries.map((e) => e.msgId), [1, 4]);
    const first = folded.entries[0];
    assert.deepEqual([first.text, first.edited, first.replies], ['hello!', 2, 1]);
    assert.deepEqual(first.reactions, [{ key: '👍', count: 1, mine: true }]);
    assert.equal(store.entries('general', { asUser: 'alice', fold: true }).entries[0].reactions[0].mine, false);
    assert.throws(() => store.entries('general', { asUser: 'mallory', fold: true }), (e) => e.name === 'permission_denied');
  } finally {
    close();
  }
});

test('4. a refused request is an error event, not an exception', async () => {
  const { store, n1, close } = cluster();
  try {
    store.createGroup('ops', 'carol');
    const bob = new Client(n1, 'bob');
    bob.send('ops', 'let me in');
    const err = await bob.waitFor((e) => e.t === 'error', 'error');
    assert.equal(err.name, 'permission_denied');
    assert.equal(err.code, codes.PERMISSION_DENIED);
    bob.request({ t: 'no-such-request' });
    await bob.waitFor((e) => e.t === 'error' && e.name === 'invalid_argument', 'invalid_argument');
    n1.request(bob.session, 'not json at all');
    await waitUntil(() => bob.events.filter((e) => e.t === 'error').length >= 3, 'three errors');
  } finally {
    close();
  }
});

test('5. sessions: ids, duplicates, unknown sessions, close', () => {
  const { n1, close } = cluster();
  try {
    assert.equal(n1.openSession('bob', 1), 1);
    const s = n1.openSession('alice');
    assert.equal(s, 2, 'a new id skips the ones the host chose');
    assert.equal(n1.openSession('bob', 1000), 1000);
    assert.equal(n1.sessionCount, 3);
    assert.throws(() => n1.openSession('carol', 1000), (e) => e instanceof ParleyError && e.name === 'already_exists');
    assert.throws(() => n1.request(999, '{"t":"typing","g":"general"}'), (e) => e.code === codes.NOT_FOUND);
    n1.closeSession(s);
    n1.closeSession(1000, { code: codes.UNAVAILABLE, message: 'connection reset' });
    n1.closeSession(1);
    assert.equal(n1.sessionCount, 0);
    assert.equal(n1.openSession('alice', 2n ** 60n), 2n ** 60n, 'a BigInt session id');
  } finally {
    close();
  }
});

test('6. a node on a virtual clock, driving its own timer', async () => {
  let now = 1_000_000;
  const timers = [];
  const store = Store.memory();
  store.createGroup('general', 'alice');
  const node = new Node(store, { clock: () => now, timers: false, autoFlush: false });
  try {
    node.on('timer', (at) => timers.push(at));
    await new Promise((r) => process.nextTick(r));
    assert.ok(timers.length >= 1, 'start() asked for a timer');
    assert.ok(timers[0] >= now);
    const alice = new Client(node, 'alice');
    alice.resume('general');
    alice.send('general', 'tick');
    assert.equal(alice.events.length, 0, 'nothing before the turn ends');
    node.flush();
    const ack = alice.events.find((e) => e.t === 'ack');
    assert.ok(ack, 'flush() delivered the ack');
    assert.equal(ack.ts, now, 'stamped with the virtual clock');
    now = timers[timers.length - 1] + 1;
    node.timerFired();
  } finally {
    node.close();
    store.close();
  }
});

test('7. a member removed stops receiving the group at once', async () => {
  const { store, n1, n2, close } = cluster();
  try {
    const alice = new Client(n1, 'alice');
    const bob = new Client(n2, 'bob');
    const carol = new Client(n2, 'carol');
    for (const c of [alice, bob, carol]) {
      c.resume('general');
      await c.waitFor((e) => e.t === 'resumed');
    }
    store.leave('general', 'bob');
    n1.memberRemoved('general', 'bob');
    n2.memberRemoved('general', 'bob');
    alice.send('general', 'bob is gone');
    // carol, on bob's node, gets it in the same fan-out; bob does not.
    await carol.waitFor((e) => e.t === 'msg', 'the message at carol');
    assert.equal(bob.messages('general').length, 0);
  } finally {
    close();
  }
});

test('8. the msgpack codec delivers Buffers', async () => {
  const store = Store.memory();
  const node = new Node(store, { codec: 'msgpack' });
  try {
    const got = [];
    node.on('deliver', (s, frames) => got.push(...frames));
    const s = node.openSession('alice');
    node.request(s, Buffer.from([0xc1]));  // never valid msgpack: answered with an error event
    await waitUntil(() => got.length > 0, 'an error frame');
    assert.ok(Buffer.isBuffer(got[0]));
    assert.ok(got[0].includes(Buffer.from('invalid_argument')), 'an invalid_argument error, in msgpack');
  } finally {
    node.close();
    store.close();
  }
});

test('9. a listener that throws leaves the rest of the events queued', async () => {
  const store = Store.memory();
  store.createGroup('general', 'alice');
  const node = new Node(store, { autoFlush: false });
  try {
    const s1 = node.openSession('alice');
    const s2 = node.openSession('alice');
    const seen = [];
    let boom = true;
    node.on('deliver', (s) => {
      seen.push(s);
      if (boom) {
        boom = false;
        throw new Error('listener failed');
      }
    });
    node.request(s1, { t: 'resume', g: 'general', after: 0, epoch: 0 });
    node.request(s2, { t: 'resume', g: 'general', after: 0, epoch: 0 });
    assert.throws(() => node.flush(), /listener failed/);
    assert.equal(seen.length, 1);
    node.flush();  // emits what was left
    assert.deepEqual(seen.sort(), [s1, s2].sort());
  } finally {
    node.close();
    store.close();
  }
});

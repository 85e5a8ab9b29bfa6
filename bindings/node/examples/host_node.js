#!/usr/bin/env node
'use strict';
// Hosts two Parley nodes in one process, joined by a transport of its own
// (batches handed over after a simulated network latency), with a few
// users in one group. Prints every delivery and notification, then shows a
// user reconnecting to the other node and resuming without loss.
//
//   node examples/host_node.js
//
// A real host does the same with its own sockets: open a session per
// client connection, feed it the client's frames with request(), write what
// 'deliver' hands over, and carry 'sendBatch' data to the peer node.

const { Node, Store } = require('parley');

const LATENCY_MS = 2;

const store = Store.memory();  // or Store.sqlite('chat.db'); both nodes share it
store.createGroup('general', 'alice');
store.join('general', 'bob');
store.join('general', 'carol');  // carol stays offline: she is notified

const nodes = new Map();
for (const id of ['node-1', 'node-2']) nodes.set(id, new Node(store, { nodeId: id }));

// The transport between nodes: a batch reaches its peer after LATENCY_MS,
// and the outcome comes back after as long again.
for (const node of nodes.values()) {
  node.on('sendBatch', (peerId, callId, data) => {
    setTimeout(() => {
      const peer = nodes.get(peerId);
      let ok = false;
      if (peer && !peer.closed) {
        try {
          peer.peerBatch(data);
          ok = true;
        } catch (e) {
          console.error(`${peerId} refused a batch: ${e.message}`);
        }
      }
      setTimeout(() => node.closed || node.peerResult(peerId, callId, ok), LATENCY_MS);
    }, LATENCY_MS);
  });
  node.on('notify', (n) =>
    console.log(`  notify  ${n.userId.padEnd(6)} ${n.groupId}#${n.msgId} from ${n.senderId}: "${n.preview}" (${n.reason})`));
}

const started = Date.now();

function show(nodeId, user, ev) {
  const at = `[${String(Date.now() - started).padStart(4)} ms] ${nodeId} -> ${user.padEnd(6)}`;
  if (ev.t === 'msg') console.log(`  ${at} ${ev.g}#${ev.id} from ${ev.u}: "${ev.c}"`);
  else if (ev.t === 'ack') console.log(`  ${at} ack ${ev.cid} = ${ev.g}#${ev.id}`);
  else if (ev.t === 'resumed') console.log(`  ${at} resumed ${ev.g} at #${ev.head}`);
  else if (ev.t === 'error') console.log(`  ${at} error ${ev.name}: ${ev.msg}`);
}

// A client connection: a session on one node; what the node delivers is
// "written" (printed) at once and reported drained.
function connect(nodeId, user) {
  const node = nodes.get(nodeId);
  const session = node.openSession(user);
  const waiters = [];
  const onDeliver = (s, frames, bytes) => {
    if (s !== session) return;
    for (const frame of frames) {
      const ev = JSON.parse(frame);
      show(nodeId, user, ev);
      for (const w of waiters.filter((x) => x.match(ev))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(ev);
      }
    }
    node.sessionDrained(s, bytes);
  };
  node.on('deliver', onDeliver);
  let rid = 0;
  return {
    request: (frame) => node.request(session, { rid: ++rid, ...frame }),
    // Resolves with the next event that matches.
    next: (match) =>
      new Promise((resolve, reject) => {
        waiters.push({ match, resolve });
        setTimeout(() => reject(new Error(`${user} on ${nodeId}: nothing arrived in time`)), 5000).unref();
      }),
    close: () => {
      node.off('deliver', onDeliver);
      node.closeSession(session);
    },
  };
}

const isMsg = (id) => (ev) => ev.t === 'msg' && ev.id === id;

async function main() {
  console.log("two nodes, group 'general' (alice, bob, carol); alice on node-1, bob on node-2\n");
  const alice = connect('node-1', 'alice');
  let bob = connect('node-2', 'bob');
  const resumed = (ev) => ev.t === 'resumed';
  const ready = [alice.next(resumed), bob.next(resumed)];
  alice.request({ t: 'resume', g: 'general', after: 0, epoch: 0 });
  bob.request({ t: 'resume', g: 'general', after: 0, epoch: 0 });
  await Promise.all(ready);

  console.log('\nalice and bob talk (carol is offline: she is notified):');
  let got = bob.next(isMsg(1));
  alice.request({ t: 'send', g: 'general', cid: 'a1', c: 'hello from node-1' });
  await got;
  got = alice.next(isMsg(2));
  bob.request({ t: 'send', g: 'general', cid: 'b1', c: 'hi alice, this is node-2' });
  await got;

  console.log('\nbob disconnects; alice writes; bob comes back on node-1 and resumes after #2:');
  bob.close();
  got = alice.next(isMsg(3));
  alice.request({ t: 'send', g: 'general', cid: 'a2', c: 'bob, are you there?' });
  await got;
  bob = connect('node-1', 'bob');
  got = bob.next(isMsg(3));
  bob.request({ t: 'resume', g: 'general', after: 2, epoch: 1 });
  await got;

  console.log('\nhistory of general:');
  for (const m of store.history('general')) console.log(`  #${m.msgId} ${m.userId}: ${m.text}`);
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(() => {
    for (const node of nodes.values()) node.close();
    store.close();
  });

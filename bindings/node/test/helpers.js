'use strict';
// Shared by the tests: the package, a JavaScript loopback transport between
// nodes of this process, a client session that records what it is
// delivered, waiting with a deadline, and HTTP without keep-alive
// (parley-server closes every HTTP connection after its answer).

const http = require('node:http');
const path = require('node:path');
const v8 = require('node:v8');
const vm = require('node:vm');

const parley = require('..');

// A full mesh between `nodes`: a batch is handed to its peer on a later
// turn of the event loop and the outcome is reported back to the sender.
function linkNodes(nodes) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const node of nodes) {
    node.on('sendBatch', (peerId, callId, data) => {
      setImmediate(() => {
        const peer = byId.get(peerId);
        let ok = false;
        if (peer && !peer.closed) {
          try {
            peer.peerBatch(data);
            ok = true;
          } catch {
            ok = false;
          }
        }
        if (!node.closed) node.peerResult(peerId, callId, ok);
      });
    });
  }
}

// A client connected to `node` as `user`, on the JSON codec: records the
// events delivered to it and reports them written at once.
class Client {
  constructor(node, user) {
    this.node = node;
    this.user = user;
    this.events = [];
    this.session = node.openSession(user);
    this.rid = 0;
    this.listener = (session, frames, bytes) => {
      if (session !== this.session) return;
      for (const f of frames) this.events.push(JSON.parse(f));
      node.sessionDrained(session, bytes);
    };
    node.on('deliver', this.listener);
  }

  request(frame) {
    const rid = ++this.rid;
    this.node.request(this.session, { rid, ...frame });
    return rid;
  }

  resume(group, after = 0) {
    return this.request({ t: 'resume', g: group, after, epoch: 0 });
  }

  send(group, text, cid = `${this.user}-${this.rid + 1}`) {
    return this.request({ t: 'send', g: group, cid, c: text });
  }

  messages(group) {
    return this.events.filter((e) => e.t === 'msg' && e.g === group);
  }

  // Resolves with the first recorded event matching `pred`.
  waitFor(pred, what = 'an event', timeoutMs = 10000) {
    return waitUntil(() => this.events.find(pred), `${this.user}: ${what}`, timeoutMs);
  }

  close() {
    this.node.off('deliver', this.listener);
    if (!this.node.closed) this.node.closeSession(this.session);
  }
}

// Resolves with check()'s first truthy value, polling every 5 ms.
async function waitUntil(check, what, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// A few turns of the event loop (immediates and timers), so that finalizers
// and thread-safe function teardowns queued on the loop run.
async function settle(turns = 5) {
  for (let i = 0; i < turns; ++i) await new Promise((r) => setTimeout(r, 2));
}

function gc() {
  v8.setFlagsFromString('--expose_gc');
  return vm.runInNewContext('gc');
}

// One HTTP request, JSON in and out, on its own connection.
function httpJson(url, { method = 'GET', body, token } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { connection: 'close' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const req = http.request(url, { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json = null;
        try {
          json = text ? JSON.parse(text) : null;
        } catch {
          json = null;
        }
        resolve({ status: res.statusCode, body: json, text });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

module.exports = {
  parley,
  linkNodes,
  Client,
  waitUntil,
  settle,
  gc,
  httpJson,
  packageDir: path.join(__dirname, '..'),
  repoDir: path.join(__dirname, '..', '..', '..'),
};

#!/usr/bin/env node
'use strict';
// An echo bot for a running parley-server: logs in over HTTP, joins a group
// (creating it if it does not exist), connects to the WebSocket chat
// protocol (docs/protocol.md) and answers every message "!echo TEXT" with
// "echo: TEXT".
//
//   node examples/bot.js [--url http://127.0.0.1:8080/] [--user echo-bot]
//                        [--password ''] [--group general] [--max-seconds N]
//
// With the server of scripts/run.sh (development login) no password is
// needed. It prints "ready" once it listens, and stops after --max-seconds
// (0, the default: run until Ctrl-C). Uses the `ws` package (npm ci).

const http = require('node:http');
const WebSocket = require('ws');

function parseArgs(argv) {
  const args = { url: 'http://127.0.0.1:8080/', user: 'echo-bot', password: '', group: 'general', maxSeconds: 0 };
  const names = { '--url': 'url', '--user': 'user', '--password': 'password', '--group': 'group', '--max-seconds': 'maxSeconds' };
  for (let i = 0; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key || argv[i + 1] === undefined) {
      console.error(`usage: bot.js [--url URL] [--user NAME] [--password PW] [--group G] [--max-seconds N] (bad: ${argv[i]})`);
      process.exit(2);
    }
    args[key] = key === 'maxSeconds' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return args;
}

// One HTTP request with a JSON body and answer. parley-server closes the
// connection after each answer, so no keep-alive agent.
function api(base, method, path, { body, token } = {}) {
  return new Promise((resolve, reject) => {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token) headers.authorization = `Bearer ${token}`;
    const req = http.request(new URL(path, base), { method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        const json = text ? JSON.parse(text) : {};
        if (res.statusCode >= 400) reject(new Error(`${method} ${path}: ${res.statusCode} ${json.name}: ${json.msg}`));
        else resolve(json);
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function joinOrCreate(base, token, group) {
  try {
    await api(base, 'POST', `/v1/groups/${encodeURIComponent(group)}/join`, { token });
  } catch (e) {
    if (!/ 404 /.test(e.message)) throw e;
    await api(base, 'POST', '/v1/groups', { body: { group }, token });
  }
}

class Bot {
  constructor(args, token) {
    this.args = args;
    this.token = token;
    this.last = 0;   // the last message id we hold in the group
    this.epoch = 0;
    this.seq = 0;
    this.ws = null;
    this.stopping = false;
  }

  // Starts after the group's current head: old messages are not answered.
  async start() {
    const page = await api(this.args.url, 'GET', `/v1/groups/${encodeURIComponent(this.args.group)}/messages?limit=1`, { token: this.token });
    this.last = page.head;
    this.epoch = page.epoch;
    this.connect();
  }

  connect() {
    const wsUrl = new URL('/v1/ws', this.args.url);
    wsUrl.protocol = wsUrl.protocol === 'https:' ? 'wss:' : 'ws:';
    wsUrl.searchParams.set('token', this.token);
    const ws = new WebSocket(wsUrl);
    this.ws = ws;
    ws.on('message', (data) => this.onFrame(JSON.parse(data.toString('utf8'))));
    ws.on('error', (e) => console.error(`websocket: ${e.message}`));
    ws.on('close', () => {
      if (this.stopping) return;
      console.error('disconnected; reconnecting in 1 s');
      setTimeout(() => this.connect(), 1000);
    });
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  resume() {
    this.send({ t: 'resume', g: this.args.group, after: this.last, epoch: this.epoch });
  }

  pull() {
    this.send({ t: 'pull', g: this.args.group, after: this.last, limit: 100, epoch: this.epoch });
  }

  onFrame(ev) {
    switch (ev.t) {
      case 'hello':
        this.resume();
        break;
      case 'resumed':
        if (ev.epoch) this.epoch = ev.epoch;
        console.log(`ready: ${this.args.user} answers "!echo ..." in ${this.args.group} (from #${this.last})`);
        if (ev.mode === 'pull') this.pull();
        break;
      case 'msg':
        this.onMessage(ev);
        break;
      case 'pulled':
        for (const m of ev.msgs) this.onMessage(m);
        if (this.last < ev.head) this.pull();
        break;
      case 'mode':
        if (ev.mode === 'pull') this.pull();
        else this.resume();
        break;
      case 'hint':
        if (this.last < ev.head) this.pull();
        break;
      case 'epoch':  // the history was reset: carry on from its new head
        this.epoch = ev.epoch;
        this.last = ev.head;
        this.resume();
        break;
      case 'error':
        console.error(`error ${ev.name}: ${ev.msg}`);
        break;
      default:
        break;
    }
  }

  onMessage(m) {
    if (m.g !== this.args.group || m.id <= this.last) return;
    this.last = m.id;
    if (m.u === this.args.user || !m.c.startsWith('!echo')) return;
    const reply = `echo: ${m.c.slice('!echo'.length).trim()}`;
    console.log(`#${m.id} ${m.u}: ${m.c} -> ${reply}`);
    this.send({ t: 'send', g: this.args.group, cid: `${this.args.user}-${process.pid}-${++this.seq}`, c: reply });
  }

  stop() {
    this.stopping = true;
    if (this.ws) this.ws.close(1000);
  }
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const login = await api(args.url, 'POST', '/v1/login', { body: { user: args.user, password: args.password } });
  await joinOrCreate(args.url, login.token, args.group);
  const bot = new Bot(args, login.token);
  await bot.start();
  const stop = () => {
    bot.stop();
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (args.maxSeconds > 0) setTimeout(stop, args.maxSeconds * 1000);
}

main().catch((e) => {
  console.error(`bot: ${e.message}`);
  process.exit(1);
});

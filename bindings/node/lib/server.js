'use strict';
// Server: parley-server in this process, on a thread of its own.

const addon = require('./addon');
const { closedError } = require('./errors');
const { MAX_TIMEOUT_MS } = require('./node');

// {listen: '127.0.0.1:0', dev: true, dataDir: 'd', peer: ['a', 'b']} ->
// [['listen', '127.0.0.1:0'], ['dev', null], ['data-dir', 'd'], ['peer', 'a'], ['peer', 'b']]
function serverArgs(options) {
  const args = [];
  for (const [key, value] of Object.entries(options)) {
    const name = key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      if (v === undefined || v === false || v === null) continue;
      args.push([name, v === true ? null : String(v)]);
    }
  }
  return args;
}

/**
 * parley-server (WebSocket chat, HTTP web service, web client) running in
 * this process on a thread of its own. While it runs it keeps the process
 * alive (like a listening net.Server); unref() undoes that.
 */
class Server {
  #native;
  #closing = null;
  #keepAlive;

  /** @private Use Server.start(). */
  constructor(native) {
    if (!(native instanceof addon.NativeServer)) throw new TypeError('use Server.start(options)');
    this.#native = native;
    this.#keepAlive = setInterval(() => {}, MAX_TIMEOUT_MS);
  }

  /**
   * Starts a server; resolves once it listens. Options are parley-server's
   * command-line options (`parley-server --help`), in camelCase or as
   * spelled there: {listen: '127.0.0.1:0', dev: true, dataDir: './d',
   * store: 'memory', logLevel: 'warn', peer: ['n2=127.0.0.1:9002']}.
   * `true` is a flag without value; arrays repeat an option.
   * @returns {Promise<Server>}
   */
  static async start(options = {}) {
    if (options === null || typeof options !== 'object') throw new TypeError('Server.start(options): options must be an object');
    return new Server(await addon.startServer(serverArgs(options)));
  }

  /** The bound HTTP/WebSocket port. */
  get port() {
    if (this.#native.closed) throw closedError('Server');
    return this.#native.port;
  }

  /** http://127.0.0.1:PORT/ (the web client; WebSocket chat at url + 'v1/ws') */
  get url() {
    return `http://127.0.0.1:${this.port}/`;
  }

  get closed() {
    return this.#native.closed;
  }

  /** Lets the process exit while the server runs. */
  unref() {
    this.#keepAlive.unref();
    return this;
  }

  ref() {
    this.#keepAlive.ref();
    return this;
  }

  /** Shuts the server down cleanly (a few seconds at most). Safe to call twice. */
  close() {
    if (!this.#closing) {
      clearInterval(this.#keepAlive);
      this.#closing = this.#native.close();
    }
    return this.#closing;
  }
}

module.exports = { Server };

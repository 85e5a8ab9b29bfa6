'use strict';
// Parley for Node.js: an idiomatic layer over parley_node.node, the Node-API
// addon that wraps the C API (include/parley/parley.h).
//
//   Store   the stores a node runs on (memory or SQLite) and the admin
//           helpers: createGroup, join, leave, history. Synchronous.
//   Node    the engine of one chat server, embedded: your code owns the
//           sockets and feeds it events; it emits 'deliver', 'sendBatch',
//           'notify', 'closeSession'. Runs on the JavaScript thread.
//   Server  parley-server (WebSocket + HTTP) in-process, on a thread of its
//           own: `await Server.start({...})`, `await server.close()`.
//
// Every object has close(), which is safe to call twice; any other call
// after close() throws ParleyError 'closed'. Failures of the library throw
// ParleyError with the C API's stable code (`.code`, a number) and its
// short name (`.name`, e.g. 'not_found'); bad argument types throw
// TypeError.

//
// The parts live in lib/: addon.js (loading the addon), errors.js, store.js,
// node.js, server.js.

const addon = require('./lib/addon');
const { codes, codeName, ParleyError } = require('./lib/errors');
const { Store } = require('./lib/store');
const { Node } = require('./lib/node');
const { Server } = require('./lib/server');

module.exports = {
  Node,
  Store,
  Server,
  ParleyError,
  codes,
  codeName,
  version: addon.version,
  /** @internal for the tests: the addon itself */
  _addon: addon,
};

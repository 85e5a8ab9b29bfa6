'use strict';
// Node: one Parley node embedded in this process, driven from the JavaScript
// thread.

const { EventEmitter } = require('node:events');
const addon = require('./addon');
const { codes, ParleyError, closedError } = require('./errors');
const { Store } = require('./store');

// PARLEY_ENTRY_* (parley.h).
const MEMBERSHIP_KINDS = Object.freeze({ __proto__: null, join: 4, leave: 5, removed: 6 });

const CODECS = { msgpack: 0, json: 1 };
const FORWARD = { adaptive: 0, fixed: 1 };
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

function nodeOptions(o) {
  if (o === null || typeof o !== 'object') throw new TypeError('options must be an object');
  const codec = o.codec ?? 'json';
  if (!(codec in CODECS)) throw new TypeError(`codec must be 'json' or 'msgpack', not ${String(codec)}`);
  const out = { codec: CODECS[codec] };
  if (o.nodeId !== undefined) out.nodeId = o.nodeId;
  if (o.forward !== undefined) {
    const mode = o.forward.mode ?? 'adaptive';
    if (!(mode in FORWARD)) throw new TypeError(`forward.mode must be 'adaptive' or 'fixed'`);
    out.forwardMode = FORWARD[mode];
    out.forwardPeriodMs = o.forward.periodMs ?? 0;
  }
  if (o.limits !== undefined) {
    const l = o.limits;
    out.limits = [l.maxIdBytes ?? 0, l.maxContentsBytes ?? 0, l.maxBatchMessages ?? 0, l.maxReadLimit ?? 0];
  }
  if (o.sessionQueueBytes !== undefined) out.sessionQueueBytes = o.sessionQueueBytes;
  if (o.pullPolicy !== undefined) {
    const p = o.pullPolicy;
    out.pullPolicy = [p.minMembers ?? 100, p.enterRate ?? 20, p.exitRate ?? 5];
  }
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.clock !== undefined) {
    if (typeof o.clock !== 'function') throw new TypeError('clock must be a function returning milliseconds');
    out.clock = o.clock;
  }
  return out;
}

/**
 * One Parley node embedded in this process, driven from the JavaScript
 * thread. It does no I/O: feed it what your transports receive and act on
 * what it emits.
 *
 * Events (emitted after the call that caused them has returned, so a
 * listener may call any method of the node):
 *   'deliver'      (session, frames, bytes)  write the frames, in order, to the
 *                  client's connection; report written bytes with sessionDrained
 *   'sendBatch'    (nodeId, callId, data)    send `data` to peer node `nodeId`;
 *                  there: peer.peerBatch(data); here: peerResult(nodeId, callId, ok)
 *   'notify'       (notification)            a member missed a message
 *   'closeSession' (session, error)          the node gave up on a session
 *                                            (it fell behind): close the connection
 *   'timer'        (atMs)                    only with {timers: false}
 *   'error'        (error)                   a failure in a turn the node ran by itself
 *   'close'        ()                        after close()
 *
 * By default the node runs its own turns: a flush at the end of the current
 * turn of the event loop after any input (autoFlush), and its timer
 * (timers). Neither keeps the process alive.
 */
class Node extends EventEmitter {
  #native;
  #events = [];
  #draining = false;
  #json;
  #nodeId;
  #clock;
  #autoFlush;
  #timers;
  #timer = null;
  #flushQueued = false;
  #posts = new Map();
  #nextPost = 1;
  #nextSession = 1;
  #onWakeup = () => this.#wakeup();

  /**
   * @param {Store} store
   * @param {NodeOptions} [options]
   */
  constructor(store, options = {}) {
    super();
    if (!(store instanceof Store)) throw new TypeError('new Node(store, options): store must be a Store');
    const native = nodeOptions(options);
    this.#json = native.codec === CODECS.json;
    this.#nodeId = options.nodeId ?? 'node-1';
    this.#clock = options.clock ?? Date.now;
    this.#autoFlush = options.autoFlush ?? true;
    this.#timers = options.timers ?? true;
    this.#native = new addon.NativeNode(store._native, native, this.#events, this.#onWakeup);
    try {
      this.#native.start();
    } catch (e) {
      this.#native.close();
      throw e;
    }
    // What start() asked for (its timer) is handled once listeners can be attached.
    if (this.#events.length > 0) process.nextTick(() => this.#drainSafely());
  }

  /** @internal the addon's object, for the tests */
  get _native() {
    return this.#native;
  }

  /** This node's id in the cluster. */
  get id() {
    return this.#nodeId;
  }

  get closed() {
    return this.#native.closed;
  }

  /** The number of open sessions. */
  get sessionCount() {
    return this.#call((n) => n.sessionCount());
  }

  /**
   * A client authenticated as `userId` connected. Returns its session id:
   * `session` if given (unique on this node), else a new one.
   * @returns {number}
   */
  openSession(userId, session) {
    if (session !== undefined) {
      this.#call((n) => n.sessionOpen(session, userId));
      return session;
    }
    for (;;) {  // the next id not taken by one the host chose
      const id = this.#nextSession++;
      try {
        this.#call((n) => n.sessionOpen(id, userId));
        return id;
      } catch (e) {
        if (!(e instanceof ParleyError && e.code === codes.ALREADY_EXISTS)) throw e;
      }
    }
  }

  /**
   * The session's connection ended: cleanly without `error`, or because of
   * it (its undelivered messages are then notified).
   * @param {number} session
   * @param {{code?: number, message?: string}} [error]
   */
  closeSession(session, error) {
    const code = error ? (error.code ?? codes.UNAVAILABLE) : codes.OK;
    this.#feed((n) => n.sessionClose(session, code, error ? String(error.message ?? '') : null));
  }

  /**
   * One frame from the session's client: a string or bytes in the node's
   * codec; with the JSON codec also an object (sent as JSON).
   */
  request(session, frame) {
    let f = frame;
    if (this.#json && f !== null && typeof f === 'object' && !ArrayBuffer.isView(f) && !(f instanceof ArrayBuffer)) {
      f = JSON.stringify(f);
    }
    this.#feed((n) => n.clientRequest(session, f));
  }

  /** The host wrote `bytes` of what 'deliver' handed it for the session. */
  sessionDrained(session, bytes) {
    this.#feed((n) => n.sessionDrained(session, bytes));
  }

  /**
   * A batch from a peer node (the `data` of its 'sendBatch'). Throws ParleyError invalid_argument if
   * malformed (text that is not UTF-8 included), too_large for an id or contents over this node's limits;
   * nothing of a refused batch is applied.
   */
  peerBatch(data) {
    this.#feed((n) => n.peerBatch(data));
  }

  /** The outcome of this node's 'sendBatch' call `callId` to `nodeId`. */
  peerResult(nodeId, callId, ok) {
    this.#feed((n) => n.peerResult(nodeId, callId, Boolean(ok)));
  }

  /** `userId` left `groupId` (see Store.leave): its sessions here stop receiving it. */
  memberRemoved(groupId, userId) {
    this.#feed((n) => n.memberRemoved(groupId, userId));
  }

  /**
   * Records a membership change made in the store as an entry of the group's
   * log: 'join' / 'leave' (`userId` joined or left) or 'removed' (`userId`
   * removed `subject`). Pushed to the members' sessions in order; a node
   * delivering a leave or removal also does memberRemoved for it.
   */
  recordMembership(groupId, kind, userId, subject) {
    if (!(kind in MEMBERSHIP_KINDS)) {
      throw new TypeError(`kind must be one of ${Object.keys(MEMBERSHIP_KINDS).join(', ')}, not ${String(kind)}`);
    }
    this.#feed((n) => n.recordMembership(groupId, MEMBERSHIP_KINDS[kind], userId, subject));
  }

  /**
   * Records a notice from the app itself as a 'system' entry of the group's
   * log, pushed to the members' sessions in order; unread for nobody,
   * notifies nobody. `author` names the app's voice; `meta` an optional
   * object; a `cid` makes a resend a duplicate, stored once.
   */
  recordSystem(groupId, author, text, { cid = null, meta = null } = {}) {
    this.#feed((n) => n.recordSystem(groupId, author, text, cid, meta === null ? null : JSON.stringify(meta)));
  }

  /** The time the 'timer' event asked for has come (with {timers: false}). */
  timerFired() {
    this.#call((n) => n.timerFired());
  }

  /** Ends a turn: runs posted functions, commits queued sends, fans out, delivers. */
  flush() {
    this.#call((n) => n.flush());
  }

  /**
   * Queues `fn(node)` to run at the node's next turn, in order with other
   * posted functions; resolves with what it returns. Rejected with
   * ParleyError 'closed' if the node is closed first.
   * @template T
   * @param {(node: Node) => T | Promise<T>} fn
   * @returns {Promise<T>}
   */
  post(fn) {
    if (typeof fn !== 'function') throw new TypeError('post(fn): fn must be a function');
    const native = this.#open();
    const id = this.#nextPost++;
    return new Promise((resolve, reject) => {
      this.#posts.set(id, { fn, resolve, reject });
      try {
        native.post(id);
      } catch (e) {
        this.#posts.delete(id);
        reject(e);
      }
    });
  }

  /** Runs what was posted so far; returns how many ran. */
  runPosted() {
    return this.#call((n) => n.runPosted());
  }

  /**
   * Destroys the node: drops pending events and posted functions (their
   * promises reject with 'closed'), without closing sessions or flushing
   * (flush() first to end the turn). Safe to call twice.
   */
  close() {
    if (this.#native.closed) return;
    this.#native.close();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#events.length = 0;
    const pending = [...this.#posts.values()];
    this.#posts.clear();
    for (const p of pending) p.reject(new ParleyError(codes.CLOSED, 'the Node was closed before the posted function ran'));
    this.emit('close');
  }

  // ---- internals ----

  #open() {
    if (this.#native.closed) throw closedError('Node');
    return this.#native;
  }

  // Calls the addon, then emits what the call produced.
  #call(fn) {
    const result = fn(this.#open());
    this.#drain();
    return result;
  }

  // An input: also schedules the end of the turn.
  #feed(fn) {
    this.#call(fn);
    this.#queueFlush();
  }

  #queueFlush() {
    if (!this.#autoFlush || this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      this.#flushQueued = false;
      this.#background((n) => n.flush());
    });
  }

  // A turn the node runs by itself (flush, timer, wakeup): a failure of the
  // library becomes an 'error' event; a listener's exception propagates.
  #background(fn) {
    if (this.#native.closed) return;
    try {
      fn(this.#native);
    } catch (e) {
      this.#drainSafely();
      if (e instanceof ParleyError) {
        this.emit('error', e);
        return;
      }
      throw e;
    }
    this.#drain();
  }

  #wakeup() {
    this.#background((n) => n.runPosted());
  }

  #drainSafely() {
    if (!this.#native.closed) this.#drain();
  }

  // Emits queued events in order. Not re-entered: events caused by a
  // listener's calls are emitted by the outer loop, after the current one.
  // If a listener throws, the rest stay queued for the next drain.
  #drain() {
    if (this.#draining) return;
    this.#draining = true;
    const q = this.#events;
    let i = 0;
    try {
      while (i < q.length) this.#dispatch(q[i++]);
    } finally {
      q.splice(0, i);
      this.#draining = false;
    }
  }

  #dispatch(ev) {
    switch (ev[0]) {
      case 'deliver':
        this.emit('deliver', ev[1], ev[2], ev[3]);
        break;
      case 'batch':
        this.emit('sendBatch', ev[1], ev[2], ev[3]);
        break;
      case 'notify':
        this.emit('notify', ev[1]);
        break;
      case 'close':
        this.emit('closeSession', ev[1], new ParleyError(ev[2], ev[3]));
        break;
      case 'timer':
        this.#setTimer(ev[1]);
        break;
      case 'posted':
        this.#runPost(ev[1]);
        break;
      default:
        throw new Error(`parley: unknown event ${ev[0]}`);
    }
  }

  #setTimer(atMs) {
    if (!this.#timers) {
      this.emit('timer', atMs);
      return;
    }
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!(atMs < Number.MAX_SAFE_INTEGER)) return;  // nothing due
    const delay = Math.min(Math.max(atMs - this.#clock(), 0), MAX_TIMEOUT_MS);
    // The timer holds the node weakly, so that a node dropped without
    // close() can still be garbage-collected (which destroys it).
    const self = new WeakRef(this);
    this.#timer = setTimeout(() => self.deref()?.#onTimer(), delay);
    this.#timer.unref();
  }

  #onTimer() {
    this.#timer = null;
    this.#background((n) => n.timerFired());
  }

  #runPost(id) {
    const p = this.#posts.get(id);
    if (!p) return;
    this.#posts.delete(id);
    try {
      p.resolve(p.fn(this));
    } catch (e) {
      p.reject(e);
    }
  }
}

module.exports = { Node, MAX_TIMEOUT_MS };

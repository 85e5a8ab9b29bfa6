'use strict';
// Store: the stores a node runs on, and the admin helpers.

const addon = require('./addon');
const { closedError } = require('./errors');

// PARLEY_NOTIFY_* order (parley.h).
const NOTIFY_LEVELS = ['all', 'mentions', 'none'];
// PARLEY_GROUP_* order (parley.h).
const GROUP_KINDS = ['public', 'private'];

function kindNumber(kind) {
  const n = GROUP_KINDS.indexOf(kind);
  if (n < 0) throw new TypeError(`kind must be one of ${GROUP_KINDS.join(', ')}, not ${String(kind)}`);
  return n;
}

/**
 * The stores a node runs on: messages, membership and the session directory.
 * Use Store.memory() or Store.sqlite(path). Several nodes may share a store.
 * A store stays open while a node uses it, even after close().
 */
class Store {
  #native;

  /** @private Use Store.memory() or Store.sqlite(). */
  constructor(native) {
    if (!(native instanceof addon.NativeStore)) {
      throw new TypeError('use Store.memory() or Store.sqlite(path)');
    }
    this.#native = native;
  }

  /** In-memory stores, lost when the last user closes them. */
  static memory() {
    return new Store(new addon.NativeStore());
  }

  /**
   * Opens (creating or migrating) the SQLite database at `file`.
   * @param {string} file
   * @param {{syncNormal?: boolean}} [options] syncNormal: no fsync per commit
   */
  static sqlite(file, options = {}) {
    if (typeof file !== 'string') throw new TypeError('Store.sqlite(path): path must be a string');
    return new Store(new addon.NativeStore(file, options.syncNormal ? 1 : 0));
  }

  #open() {
    if (this.#native.closed) throw closedError('Store');
    return this.#native;
  }

  /** @internal the addon's handle, for Node */
  get _native() {
    return this.#open();
  }

  get closed() {
    return this.#native.closed;
  }

  /**
   * Creates `groupId` with `ownerId` as its owner and first member, with its
   * settings (docs/protocol.md 3, "Groups"): kind 'public' (the default;
   * anyone joins by asking) or 'private' (by invite, or the host's join).
   * @param {{kind?: 'public'|'private', title?: string, topic?: string, memberLimit?: number}} [settings]
   */
  createGroup(groupId, ownerId, { kind = 'public', title = '', topic = '', memberLimit = 0 } = {}) {
    this.#open().createGroupWith(groupId, ownerId, kindNumber(kind), title, topic, memberLimit);
  }

  /**
   * Makes `userId` a member of `groupId` as the host: no invite needed, even
   * to a private group (a member already stays as is); limit_exceeded at the
   * group's member limit.
   */
  join(groupId, userId) {
    this.#open().join(groupId, userId);
  }

  /**
   * `userId` joins by the group's rules: permission_denied for a private
   * group without an invite, limit_exceeded at its member limit.
   */
  askToJoin(groupId, userId) {
    this.#open().askToJoin(groupId, userId);
  }

  /** Lets `userId` join the (private) group by asking, once. */
  invite(groupId, userId) {
    this.#open().invite(groupId, userId);
  }

  /**
   * The group's settings and member count.
   * @returns {{groupId: string, kind: 'public'|'private', title: string, topic: string, memberLimit: number, members: number}}
   */
  groupInfo(groupId) {
    return this.#open().groupInfo(groupId);
  }

  /**
   * Changes the settings named (the rest are kept) and returns them as in
   * force. The store records no log entry: record one with
   * node.recordSystem (docs/c-api.md).
   */
  setGroupSettings(groupId, { kind, title, topic, memberLimit } = {}) {
    const now = this.groupInfo(groupId);
    this.#open().setGroupSettings(groupId, kindNumber(kind ?? now.kind), title ?? now.title, topic ?? now.topic,
      memberLimit ?? now.memberLimit);
    return this.groupInfo(groupId);
  }

  /**
   * Discovery: public groups whose id starts with `prefix`, after `after`,
   * in id order, at most `limit` (1..1000).
   */
  publicGroups(prefix = '', { after = '', limit = 50 } = {}) {
    return this.#open().publicGroups(prefix, after, limit);
  }

  /** Removes `userId` from `groupId` (then call node.memberRemoved on each node). */
  leave(groupId, userId) {
    this.#open().leave(groupId, userId);
  }

  /**
   * Up to `limit` messages of `groupId` after `after`, oldest first. With
   * `asUser` only a member may read; without it reads as an administrator.
   * @returns {Message[]}
   */
  history(groupId, { after = 0, limit = 100, asUser = null } = {}) {
    const rows = this.#open().history(groupId, asUser, after, limit);
    return rows.map((m) => ({ ...m, text: m.contents.toString('utf8') }));
  }

  /**
   * The entries of `groupId` with ids in (after, after + limit] with every
   * field (kind, target, replyTo, mentions, meta, deleted, removed). With
   * `fold`, only messages and membership entries are listed, each message
   * with its latest contents, `edited`, `replies` and `reactions` ({key,
   * count, mine}) as of the page's head (docs/protocol.md 2.1, "Folded
   * history"). Read on from `to` while to < head.
   * @returns {EntryPage}
   */
  entries(groupId, { after = 0, limit = 100, asUser = null, fold = false } = {}) {
    const page = this.#open().entries(groupId, asUser, after, limit, fold);
    page.entries = page.entries.map((e) => ({
      ...e,
      text: e.contents.toString('utf8'),
      meta: e.meta === '' ? null : JSON.parse(e.meta),
    }));
    return page;
  }

  /**
   * The read state of `userId` in each of its groups, sorted by group id.
   * @returns {ReadState[]}
   */
  readStates(userId) {
    return this.#open().readStates(userId);
  }

  /**
   * Moves the read position of `userId` in `groupId` forward to `msgId` of
   * `epoch` (never back; past the head counts as the head). The user's live
   * sessions are not told (clients report reads with the "read" request).
   * @returns {ReadState}
   */
  markRead(groupId, userId, { epoch, msgId }) {
    return this.#open().markRead(groupId, userId, epoch, msgId);
  }

  /**
   * Sets which offline notifications `userId` gets for `groupId`: 'all' (the
   * default), 'mentions' or 'none'. Kept across a role change, forgotten on
   * leaving; not_found if the user is not a member. The user's live sessions
   * are not told (clients set it with the "notify" request, which tells them).
   */
  setNotifyLevel(groupId, userId, level) {
    const n = NOTIFY_LEVELS.indexOf(level);
    if (n < 0) throw new TypeError(`level must be one of ${NOTIFY_LEVELS.join(', ')}, not ${String(level)}`);
    this.#open().setNotifyLevel(groupId, userId, n);
  }

  /**
   * The notification level of `userId` in `groupId`; not_found if not a member.
   * @returns {'all' | 'mentions' | 'none'}
   */
  notifyLevel(groupId, userId) {
    return NOTIFY_LEVELS[this.#open().notifyLevel(groupId, userId)];
  }

  close() {
    this.#native.close();
  }
}

module.exports = { Store };

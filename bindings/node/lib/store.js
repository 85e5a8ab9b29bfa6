'use strict';
// Store: the stores a node runs on, and the admin helpers.

const addon = require('./addon');
const { closedError } = require('./errors');

// PARLEY_NOTIFY_* order (parley.h).
const NOTIFY_LEVELS = ['all', 'mentions', 'none'];

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

  /** Creates `groupId` with `ownerId` as its owner and first member. */
  createGroup(groupId, ownerId) {
    this.#open().createGroup(groupId, ownerId);
  }

  /** Makes `userId` a member of `groupId` (a member already stays as is). */
  join(groupId, userId) {
    this.#open().join(groupId, userId);
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

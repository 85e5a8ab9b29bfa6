// TypeScript declarations of the Parley Node.js binding (index.js).
/// <reference types="node" />

import { EventEmitter } from 'node:events';

/** A uint64 id: a Number when below 2^53, else a BigInt. Either is accepted. */
export type Id = number | bigint;

/** The stable error codes of the C API (never renumbered). */
export declare const codes: Readonly<{
  OK: 0;
  INVALID_ARGUMENT: 1;
  NOT_FOUND: 2;
  PERMISSION_DENIED: 3;
  ALREADY_EXISTS: 4;
  TOO_LARGE: 5;
  UNAVAILABLE: 6;
  TIMEOUT: 7;
  EPOCH_MISMATCH: 8;
  BACKPRESSURE: 9;
  CORRUPTION: 10;
  INTERNAL: 11;
  UNAUTHENTICATED: 12;
  CLOSED: 13;
  HISTORY_TRIMMED: 14;
  LIMIT_EXCEEDED: 15;
  DELETED: 16;
}>;

export type ErrorName =
  | 'ok'
  | 'invalid_argument'
  | 'not_found'
  | 'permission_denied'
  | 'already_exists'
  | 'too_large'
  | 'unavailable'
  | 'timeout'
  | 'epoch_mismatch'
  | 'backpressure'
  | 'corruption'
  | 'internal'
  | 'unauthenticated'
  | 'closed'
  | 'history_trimmed'
  | 'limit_exceeded'
  | 'deleted'
  | 'unknown';

/** The short name of a code, as the chat protocol spells it ('not_found'). */
export declare function codeName(code: number): ErrorName;

/** The library's version, e.g. "0.1.0". */
export declare const version: string;

/**
 * A failure reported by the library. `code` is one of `codes`; `name` its
 * short name ('not_found', 'closed', ...). Bad argument types throw
 * TypeError instead.
 */
export declare class ParleyError extends Error {
  constructor(code: number, message: string);
  readonly code: number;
  name: ErrorName;
}

/** One stored message. */
export interface Message {
  groupId: string;
  epoch: Id;
  msgId: Id;
  prevMsgId: Id;
  /** Server clock at append, Unix ms. */
  timestampMs: number;
  /** The sender. */
  userId: string;
  contents: Buffer;
  /** `contents` decoded as UTF-8. */
  text: string;
  /** "" when the sender gave none. */
  clientMsgId: string;
}

/**
 * A user's read state in one group (docs/protocol.md 2.1): read up to
 * `msgId` of `epoch` (0: nothing read, or a position of an older epoch);
 * `unread` messages after it from others and not deleted, `mentions` of
 * them naming the user; counted up to `head`.
 */
export interface ReadState {
  groupId: string;
  epoch: Id;
  msgId: Id;
  head: Id;
  unread: Id;
  mentions: Id;
}

/** What a log entry is (docs/protocol.md 2.1). */
export type EntryKind = 'message' | 'edit' | 'delete' | 'reaction' | 'join' | 'leave' | 'removed' | 'system';

/** One reaction key on a message of a folded read. */
export interface Reaction {
  key: string;
  count: Id;
  /** The reader is one of those who gave it. */
  mine: boolean;
}

/** A log entry with every field (Store.entries). */
export interface Entry extends Message {
  kind: EntryKind;
  /** Edit, delete, reaction: the message it changes (else 0). */
  target: Id;
  /** A message: the message it answers (0: none). */
  replyTo: Id;
  mentions: string[];
  /** The app's JSON object, null for none. */
  meta: Record<string, unknown> | null;
  /** A tombstone: erased by a delete. */
  deleted: boolean;
  /** A reaction taken back. */
  removed: boolean;
  /** Folded reads only: the latest edit's id (0: never edited). */
  edited: Id;
  /** Folded reads only: messages answering it, not deleted. */
  replies: Id;
  /** Folded reads only: the reactions in force, sorted by key. */
  reactions: Reaction[];
}

/** A page of a group's log: it covers ids (after, to]; a folded page is folded as of `head`. */
export interface EntryPage {
  epoch: Id;
  head: Id;
  to: Id;
  entries: Entry[];
}

export interface EntriesOptions extends HistoryOptions {
  /** Fold edits, deletes and reactions into their messages (default false). */
  fold?: boolean;
}

export interface HistoryOptions {
  /** Messages with msgId > after (default 0). */
  after?: Id;
  /** 1..1000 (default 100). */
  limit?: number;
  /** Read as this user (members only); omitted: as an administrator. */
  asUser?: string | null;
}

/**
 * The stores a node runs on (messages, membership, session directory) and
 * the admin helpers. Synchronous; use it on the thread of the nodes using it.
 */
export type GroupKind = 'public' | 'private';
export interface GroupSettings {
  kind: GroupKind;
  title: string;
  topic: string;
  /** 0: none. */
  memberLimit: number;
}
export interface GroupInfo extends GroupSettings {
  groupId: string;
  members: number;
}

export declare class Store {
  private constructor();
  /** In-memory stores, lost when the last user closes them. */
  static memory(): Store;
  /** Opens (creating or migrating) a SQLite database. syncNormal: no fsync per commit. */
  static sqlite(path: string, options?: { syncNormal?: boolean }): Store;
  readonly closed: boolean;
  /** Creates a group with its settings (public, untitled, unlimited unless given). */
  createGroup(groupId: string, ownerId: string, settings?: Partial<GroupSettings>): void;
  /** The host's join: no invite needed; ParleyError limit_exceeded at the member limit. */
  join(groupId: string, userId: string): void;
  /** A join by the group's rules: ParleyError permission_denied (private, no invite) or limit_exceeded. */
  askToJoin(groupId: string, userId: string): void;
  /** Lets `userId` join the (private) group by asking, once. */
  invite(groupId: string, userId: string): void;
  /** The group's settings and member count. ParleyError not_found for none. */
  groupInfo(groupId: string): GroupInfo;
  /** Changes the settings named (the rest are kept); returns them as in force. */
  setGroupSettings(groupId: string, settings: Partial<GroupSettings>): GroupInfo;
  /** Discovery: public groups whose id starts with `prefix`, in id order. */
  publicGroups(prefix?: string, options?: { after?: string; limit?: number }): GroupInfo[];
  leave(groupId: string, userId: string): void;
  history(groupId: string, options?: HistoryOptions): Message[];
  /** The entries with ids in (after, after + limit] with every field; folded with `fold`. */
  entries(groupId: string, options?: EntriesOptions): EntryPage;
  /** The read state of `userId` in each of its groups, sorted by group id. */
  readStates(userId: string): ReadState[];
  /**
   * Moves `userId`'s read position in `groupId` forward to `msgId` of `epoch`
   * (never back). ParleyError epoch_mismatch / not_found.
   */
  markRead(groupId: string, userId: string, position: { epoch: Id; msgId: Id }): ReadState;
  /**
   * Sets which offline notifications `userId` gets for `groupId` (kept across
   * a role change, forgotten on leaving). ParleyError not_found if not a
   * member; TypeError for another level.
   */
  setNotifyLevel(groupId: string, userId: string, level: NotifyLevel): void;
  /** The notification level of `userId` in `groupId`. ParleyError not_found if not a member. */
  notifyLevel(groupId: string, userId: string): NotifyLevel;
  /** Safe to call twice. Nodes created on the store keep it open. */
  close(): void;
}

export interface Notification {
  userId: string;
  groupId: string;
  epoch: Id;
  msgId: Id;
  senderId: string;
  /** The first bytes of the contents (never a cut UTF-8 character). */
  preview: string;
  /** "offline" or why the user's session failed. */
  reason: string;
  /** The message mentions the user. */
  mentioned: boolean;
}

/**
 * Which offline notifications a member gets for a group: every message from
 * others, only those mentioning it, or none (docs/protocol.md 2.1).
 */
export type NotifyLevel = 'all' | 'mentions' | 'none';

export interface NodeOptions {
  /** This node's id in the cluster (default "node-1"). */
  nodeId?: string;
  /** Client frames: 'json' (strings, docs/protocol.md section 2; the default) or 'msgpack' (Buffers). */
  codec?: 'json' | 'msgpack';
  forward?: { mode?: 'adaptive' | 'fixed'; periodMs?: number };
  /** Input limits; 0 or omitted keeps the default. */
  limits?: { maxIdBytes?: number; maxContentsBytes?: number; maxBatchMessages?: number; maxReadLimit?: number };
  /** Unwritten bytes a session may have before it is closed (default 1 MiB). */
  sessionQueueBytes?: number;
  pullPolicy?: { minMembers?: number; enterRate?: number; exitRate?: number };
  seed?: Id;
  /** The node's clock in ms (default Date.now). Called synchronously; must not call the node. */
  clock?: () => number;
  /** Flush at the end of each event-loop turn with input (default true). */
  autoFlush?: boolean;
  /** Run the node's timer with setTimeout (default true); false: handle the 'timer' event. */
  timers?: boolean;
}

export interface NodeEvents {
  /** Write the frames, in order, to the session's client; report written bytes with sessionDrained. */
  deliver: [session: Id, frames: Array<string | Buffer>, bytes: number];
  /** Send `data` to peer `nodeId`: there peerBatch(data), here peerResult(nodeId, callId, ok). */
  sendBatch: [nodeId: string, callId: Id, data: Buffer];
  notify: [notification: Notification];
  /** The node gave up on the session (it fell behind): close the connection. */
  closeSession: [session: Id, error: ParleyError];
  /** Only with {timers: false}: call timerFired() at or soon after atMs. */
  timer: [atMs: number];
  /** A failure in a turn the node ran by itself (auto flush, timer, wakeup). */
  error: [error: ParleyError];
  close: [];
}

/** The listener of each Node event. */
export type NodeListeners = { [K in keyof NodeEvents]: (...args: NodeEvents[K]) => void };

/**
 * One Parley node embedded in this process, driven from the JavaScript
 * thread. Events are emitted after the call that caused them returns, so a
 * listener may call any method of its node.
 */
export declare class Node extends EventEmitter {
  constructor(store: Store, options?: NodeOptions);
  readonly id: string;
  readonly closed: boolean;
  readonly sessionCount: number;

  /** A client authenticated as userId connected; returns its session id (given or new). */
  openSession(userId: string, session?: Id): Id;
  /** The connection ended: cleanly, or because of `error` (then its missed messages are notified). */
  closeSession(session: Id, error?: { code?: number; message?: string }): void;
  /** One client frame in the node's codec (with JSON, an object is stringified). */
  request(session: Id, frame: string | Buffer | ArrayBufferView | ArrayBuffer | object): void;
  sessionDrained(session: Id, bytes: number): void;
  peerBatch(data: Buffer | ArrayBufferView | ArrayBuffer): void;
  peerResult(nodeId: string, callId: Id, ok: boolean): void;
  memberRemoved(groupId: string, userId: string): void;
  /**
   * Records a membership change made in the store as an entry of the group's
   * log ('removed': `userId` removed `subject`). TypeError for another kind.
   */
  recordMembership(groupId: string, kind: 'join' | 'leave' | 'removed', userId: string, subject?: string): void;
  /**
   * Records a notice from the app as a 'system' entry of the group's log
   * (`author`: the app's voice); unread for nobody, notifies nobody.
   */
  recordSystem(groupId: string, author: string, text: string,
               options?: { cid?: string | null; meta?: Record<string, unknown> | null }): void;
  timerFired(): void;
  flush(): void;
  /** Runs fn(node) at the node's next turn; rejected with 'closed' if the node closes first. */
  post<T>(fn: (node: Node) => T | Promise<T>): Promise<T>;
  /** Runs what was posted so far; returns how many ran. */
  runPosted(): number;
  /** Destroys the node, dropping pending events and posts. Safe to call twice. */
  close(): void;

  on<K extends keyof NodeEvents>(event: K, listener: NodeListeners[K]): this;
  once<K extends keyof NodeEvents>(event: K, listener: NodeListeners[K]): this;
  off<K extends keyof NodeEvents>(event: K, listener: NodeListeners[K]): this;
  addListener<K extends keyof NodeEvents>(event: K, listener: NodeListeners[K]): this;
  removeListener<K extends keyof NodeEvents>(event: K, listener: NodeListeners[K]): this;
  emit<K extends keyof NodeEvents>(event: K, ...args: NodeEvents[K]): boolean;
}

/**
 * parley-server's command-line options (`parley-server --help`), camelCase
 * or as spelled there. `true` is a flag without value; arrays repeat.
 */
export interface ServerOptions {
  listen?: string;
  nodeId?: string;
  dataDir?: string;
  db?: string;
  store?: 'sqlite' | 'memory';
  sync?: 'full' | 'normal';
  dev?: boolean;
  users?: string;
  secret?: string;
  tokenTtl?: number;
  peerListen?: string;
  peer?: string | string[];
  clusterSecret?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  [option: string]: string | number | boolean | Array<string | number> | undefined | null;
}

/** parley-server running in this process on a thread of its own. */
export declare class Server {
  private constructor();
  /** Resolves once the server listens; rejects with ParleyError (unavailable, invalid_argument). */
  static start(options?: ServerOptions): Promise<Server>;
  readonly port: number;
  /** http://127.0.0.1:PORT/ (the web client; WebSocket chat at url + 'v1/ws') */
  readonly url: string;
  readonly closed: boolean;
  /** Lets the process exit while the server runs. */
  unref(): this;
  ref(): this;
  /** Shuts down cleanly (a few seconds at most). Safe to call twice. */
  close(): Promise<void>;
}

// A small, framework-free client for the InsightHub status stream.
//
//   import { StatusClient } from "/static/status-client.js";
//   const client = new StatusClient({ token, scopes: ["workspaces", "workspace:7"] });
//   client.addEventListener("change", () => render(client.documents, client.workspaces));
//   client.addEventListener("state", (e) => showConnection(e.detail.state, e.detail.transport));
//   client.connect();
//
// With `scopes` it speaks protocol 2: it says what it shows and the cursor it holds, and the
// server answers with only what changed in those scopes since (or, when it cannot, a first
// page, saying so), then live deltas. A reconnect therefore costs what changed, and the
// entities held are merged, never dropped and reloaded. Without `scopes` it speaks protocol
// 1: a snapshot of everything the user owns on every connect. A delta whose version is not
// newer than the one held is ignored, so the state never goes back in time. A dropped
// connection is retried with exponential backoff and jitter; a refused token ends in the
// "unauthorized" state. When a WebSocket cannot be opened (or does not exist), it falls
// back to Server-Sent Events on /events by itself; `transport` says which one it is on.
const DOCUMENT_FIELDS = {
  document_id: "id",
  status: "processing_status",
  error: "processing_error",
};
const WORKSPACE_FIELDS = {
  workspace_id: "id",
  message: "status_message",
};

function rename(data, fields) {
  const out = {};
  for (const [key, value] of Object.entries(data)) {
    out[fields[key] ?? key] = value;
  }
  return out;
}

/** A document from an event message or an API body, in the API's field names. */
export function normalizeDocument(data) {
  return "document_id" in data ? rename(data, DOCUMENT_FIELDS) : { ...data };
}

/** A workspace from an event message or an API body, in the API's field names. */
export function normalizeWorkspace(data) {
  return "workspace_id" in data && !("id" in data) ? rename(data, WORKSPACE_FIELDS) : { ...data };
}

export function defaultSocketUrl(token, location = globalThis.location) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws?token=${encodeURIComponent(token)}`;
}

/**
 * The Server-Sent Events URL of this page's host for `token`.
 * @param {string} token
 * @param {Location} [location]
 * @returns {string}
 */
export function defaultEventsUrl(token, location = globalThis.location) {
  return `${location.protocol}//${location.host}/events?token=${encodeURIComponent(token)}`;
}

/**
 * A cursor's parts, or null when it is not one ("<epoch>:<position>").
 * @param {string | null | undefined} cursor
 * @returns {{ epoch: string, position: number } | null}
 */
export function parseCursor(cursor) {
  if (typeof cursor !== "string") return null;
  const at = cursor.lastIndexOf(":");
  if (at < 1) return null;
  const position = Number(cursor.slice(at + 1));
  return Number.isSafeInteger(position) ? { epoch: cursor.slice(0, at), position } : null;
}

/**
 * The later of two cursors of one epoch; a cursor of another epoch replaces the one held.
 * @param {string | null} held
 * @param {string | null} offered
 * @returns {string | null}
 */
export function laterCursor(held, offered) {
  const a = parseCursor(held);
  const b = parseCursor(offered);
  if (!b) return held;
  if (!a || a.epoch !== b.epoch || b.position > a.position) return offered;
  return held;
}

/**
 * Whether an entity (in API field names) belongs to a scope.
 * @param {string} scope  "workspaces", "workspace:<id>" or "documents:<id>,<id>…"
 * @param {"document" | "workspace"} kind
 * @param {object} entity
 */
export function inScope(scope, kind, entity) {
  if (scope === "workspaces") return kind === "workspace";
  if (kind !== "document") return false;
  const [name, rest] = scope.split(":");
  if (name === "workspace") return entity.workspace_id === Number(rest);
  return name === "documents" && rest.split(",").map(Number).includes(entity.id);
}

function withQuery(url, pairs) {
  const query = pairs.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&");
  if (!query) return url;
  return url + (url.includes("?") ? "&" : "?") + query;
}

export class StatusClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.token            bearer token of the user
   * @param {string[]} [options.scopes]       what to show (protocol 2); none: everything (protocol 1)
   * @param {string} [options.cursor]         a cursor held from an earlier session, to resume from
   * @param {"auto" | "websocket" | "sse"} [options.transport]  "auto": WebSocket, else SSE
   * @param {string} [options.url]            WebSocket URL (default: this page's host, /ws)
   * @param {string} [options.eventsUrl]      SSE URL (default: this page's host, /events)
   * @param {number} [options.minDelay]       first reconnect delay in ms
   * @param {number} [options.maxDelay]       longest reconnect delay in ms
   * @param {() => Promise<boolean>} [options.verifyToken]  asked after a failed handshake;
   *        resolving false (the token is no longer accepted) stops reconnecting
   */
  constructor({
    token,
    scopes,
    cursor = null,
    transport = "auto",
    url,
    eventsUrl,
    minDelay = 500,
    maxDelay = 15000,
    verifyToken,
  } = {}) {
    super();
    this.url = url ?? defaultSocketUrl(token);
    this.eventsUrl = eventsUrl ?? defaultEventsUrl(token);
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.verifyToken = verifyToken;
    /** @type {Map<number, object>} */
    this.documents = new Map();
    /** @type {Map<number, object>} */
    this.workspaces = new Map();
    this.state = "idle";
    this.attempt = 0;
    /** @type {string[] | null} the scopes shown (null: protocol 1) */
    this.scopes = scopes ? [...scopes] : null;
    /** @type {string | null} the cursor held: everything up to it has been applied */
    this.cursor = cursor;
    /** @type {"websocket" | "sse" | null} the transport of the current connection */
    this.transport = null;
    /** @type {Map<string, string | null>} per scope, the HTTP page key after its first page */
    this.more = new Map();
    /** @type {Map<string, "snapshot" | "resumed">} per scope, how it was last answered */
    this.answeredAs = new Map();
    this._preferred = transport;
    this._failedOpens = 0;
    this._socket = null;
    this._source = null;
    this._parts = new Map();
    this._refusedCursor = false;
    this._timer = null;
    this._stopped = false;
  }

  connect() {
    this._stopped = false;
    this._open();
  }

  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this._socket) this._socket.close(1000, "client closed");
    if (this._source) this._source.close();
    this._socket = null;
    this._source = null;
    this._setState("closed");
  }

  /**
   * Show other scopes; on a live WebSocket without reconnecting. Scopes not shown before are
   * answered with a first page; the ones kept go on as they were.
   * @param {string[]} scopes
   */
  subscribe(scopes) {
    const fresh = scopes.filter((scope) => !(this.scopes ?? []).includes(scope));
    this.scopes = [...scopes];
    for (const scope of fresh) this.answeredAs.delete(scope);
    if (this._socket?.readyState === 1) {
      this._socket.send(JSON.stringify({ type: "subscribe", scopes, cursor: null }));
    } else if (this._source) {
      // An event stream cannot be told anything: it is opened anew with the new scopes.
      this._source.close();
      this._source = null;
      this._open();
    }
  }

  /** Ask the server for a fresh first answer (a snapshot) of what is shown. */
  requestResync() {
    if (this._socket?.readyState === 1) {
      this._socket.send(JSON.stringify({ type: "resync" }));
    }
  }

  /** Merge a document (e.g. from an API response); false when it is not newer than held. */
  upsertDocument(data) {
    return this._upsert(this.documents, normalizeDocument(data), "document");
  }

  /** Merge a workspace (e.g. from an API response); false when it is not newer than held. */
  upsertWorkspace(data) {
    return this._upsert(this.workspaces, normalizeWorkspace(data), "workspace");
  }

  _upsert(map, entity, kind) {
    const held = map.get(entity.id);
    if (held && held.version >= entity.version) return false;
    map.set(entity.id, entity);
    this._emit(kind, entity);
    this._emit("change", { kind, entity });
    return true;
  }

  _applySnapshot(frame) {
    const documents = new Map();
    const workspaces = new Map();
    for (const item of frame.documents ?? []) {
      const fresh = normalizeDocument(item);
      const held = this.documents.get(fresh.id);
      documents.set(fresh.id, held && held.version > fresh.version ? held : fresh);
    }
    for (const item of frame.workspaces ?? []) {
      const fresh = normalizeWorkspace(item);
      const held = this.workspaces.get(fresh.id);
      workspaces.set(fresh.id, held && held.version > fresh.version ? held : fresh);
    }
    this.documents = documents;
    this.workspaces = workspaces;
    this._emit("snapshot", { documents, workspaces });
    this._emit("change", { kind: "snapshot" });
  }

  _applySync(frame) {
    // The parts of one answer are applied together, when the last arrives: no flicker.
    const parts = this._parts.get(frame.scope) ?? [];
    if (frame.part === 0) parts.length = 0;
    parts.push(...(frame.entities ?? []));
    if (!frame.last) {
      this._parts.set(frame.scope, parts);
      return;
    }
    this._parts.delete(frame.scope);
    const kind = frame.kind === "workspace" ? "workspace" : "document";
    const map = kind === "workspace" ? this.workspaces : this.documents;
    const normalize = kind === "workspace" ? normalizeWorkspace : normalizeDocument;
    const fresh = new Map();
    for (const item of parts) {
      const entity = normalize(item);
      const held = map.get(entity.id);
      fresh.set(entity.id, held && held.version > entity.version ? held : entity);
    }
    if (frame.mode === "snapshot") {
      // What the scope held and the answer does not name is gone or beyond the first page.
      for (const [id, entity] of map) {
        if (!fresh.has(id) && inScope(frame.scope, kind, entity)) map.delete(id);
      }
    }
    for (const [id, entity] of fresh) map.set(id, entity);
    this.more.set(frame.scope, frame.more ?? null);
    this.answeredAs.set(frame.scope, frame.mode);
    // A cursor the server refused is dropped for the one it answered with, once per connection.
    const refused = frame.reason && frame.reason !== "no cursor" && !this._refusedCursor;
    if (refused) this._refusedCursor = true;
    this.cursor = laterCursor(refused ? null : this.cursor, frame.cursor);
    this.attempt = 0;
    this._failedOpens = 0;
    this._emit("sync", { scope: frame.scope, mode: frame.mode, reason: frame.reason, count: fresh.size });
    this._emit("change", { kind: "sync", scope: frame.scope });
    this._setState("live");
  }

  _onFrame(raw) {
    let frame;
    try {
      frame = JSON.parse(raw);
    } catch {
      return;
    }
    if (frame.type === "sync") {
      this._applySync(frame);
    } else if (frame.type === "snapshot") {
      this.attempt = 0;
      this._failedOpens = 0;
      this._applySnapshot(frame);
      this._setState("live");
    } else if (frame.type === "document_status" || frame.type === "workspace_status") {
      if (frame.type === "document_status") this.upsertDocument(frame.data);
      else this.upsertWorkspace(frame.data);
      if (frame.cursor) this.cursor = laterCursor(this.cursor, frame.cursor);
    }
  }

  // The cursor covers only scopes that were answered: a scope subscribed but not answered yet
  // (the link dropped first) must get a first page, never a resume it has no base for.
  _resumable() {
    const answered = this.scopes.filter((scope) => this.answeredAs.has(scope));
    return answered.length ? answered : this.scopes;
  }

  _subscriptionQuery(scopes, cursor) {
    if (!scopes) return [];
    const pairs = scopes.map((scope) => ["scope", scope]);
    if (cursor) pairs.push(["cursor", cursor]);
    return pairs;
  }

  _useEvents() {
    if (!this.scopes) return false; // protocol 1 exists only on the WebSocket
    if (this._preferred === "sse") return true;
    if (this._preferred === "websocket") return false;
    return typeof globalThis.WebSocket !== "function" || this._failedOpens >= 2;
  }

  _open() {
    clearTimeout(this._timer);
    this._refusedCursor = false;
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    if (this._useEvents()) this._openEvents();
    else this._openSocket();
  }

  _openSocket() {
    let opened = false;
    this._setTransport("websocket");
    let socket;
    const scopes = this.scopes ? this._resumable() : null;
    const asked = String(scopes);
    try {
      socket = new WebSocket(withQuery(this.url, this._subscriptionQuery(scopes, this.cursor)));
    } catch {
      this._failedOpens += 1;
      this._closed(1006, false);
      return;
    }
    this._socket = socket;
    socket.addEventListener("open", () => {
      opened = true;
      // Scopes changed while the socket was opening, or were never answered: say so now.
      if (this.scopes && String(this.scopes) !== asked) {
        socket.send(JSON.stringify({ type: "subscribe", scopes: this.scopes, cursor: null }));
      }
    });
    socket.addEventListener("message", (message) => this._onFrame(message.data));
    socket.addEventListener("close", (event) => {
      if (this._socket !== socket || this._stopped) return;
      this._socket = null;
      if (!opened) this._failedOpens += 1;
      this._closed(event.code, opened);
    });
  }

  _openEvents() {
    this._setTransport("sse");
    let opened = false;
    // One cursor for the whole stream: unless every scope was answered, start afresh.
    const whole = this._resumable().length === this.scopes.length;
    const query = this._subscriptionQuery(this.scopes, whole ? this.cursor : null);
    const source = new EventSource(withQuery(this.eventsUrl, query));
    this._source = source;
    source.addEventListener("open", () => {
      opened = true;
    });
    source.addEventListener("message", (message) => this._onFrame(message.data));
    source.addEventListener("error", () => {
      if (this._source !== source || this._stopped) return;
      // Reconnected by us, not by EventSource, so that the backoff and the cursor are ours.
      source.close();
      this._source = null;
      this._closed(1006, opened);
    });
  }

  async _closed(code, opened) {
    // 1008: the server refused the token (expired or revoked) on an open socket.
    let refused = code === 1008;
    if (!refused && !opened && this.verifyToken) {
      try {
        refused = !(await this.verifyToken());
      } catch {
        refused = false; // the server is unreachable: keep trying
      }
    }
    if (this._stopped) return;
    if (refused) {
      this._setState("unauthorized");
      return;
    }
    this.attempt += 1;
    const ceiling = Math.min(this.maxDelay, this.minDelay * 2 ** (this.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this._setState("reconnecting");
    this._timer = setTimeout(() => this._open(), delay);
  }

  _setTransport(transport) {
    if (this.transport === transport) return;
    this.transport = transport;
    this._emit("transport", { transport });
  }

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", { state, attempt: this.attempt, transport: this.transport });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

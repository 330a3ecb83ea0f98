// A small, framework-free client for the InsightHub status WebSocket.
//
//   import { StatusClient } from "/static/status-client.js";
//   const client = new StatusClient({ token });
//   client.addEventListener("change", () => render(client.documents, client.workspaces));
//   client.addEventListener("state", (e) => showConnection(e.detail.state));
//   client.connect();
//
// It keeps the user's documents and workspaces as the server last described them: a snapshot
// first (on every connect and reconnect), then live deltas. A delta whose version is not newer
// than the one held is ignored, so the state never goes back in time. A dropped connection is
// retried with exponential backoff and jitter; a refused token ends in the "unauthorized" state.

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

export class StatusClient extends EventTarget {
  /**
   * @param {object} options
   * @param {string} options.token            bearer token of the user
   * @param {string} [options.url]            WebSocket URL (default: this page's host, /ws)
   * @param {number} [options.minDelay]       first reconnect delay in ms
   * @param {number} [options.maxDelay]       longest reconnect delay in ms
   * @param {() => Promise<boolean>} [options.verifyToken]  asked after a failed handshake;
   *        resolving false (the token is no longer accepted) stops reconnecting
   */
  constructor({ token, url, minDelay = 500, maxDelay = 15000, verifyToken } = {}) {
    super();
    this.url = url ?? defaultSocketUrl(token);
    this.minDelay = minDelay;
    this.maxDelay = maxDelay;
    this.verifyToken = verifyToken;
    /** @type {Map<number, object>} */
    this.documents = new Map();
    /** @type {Map<number, object>} */
    this.workspaces = new Map();
    this.state = "idle";
    this.attempt = 0;
    this._socket = null;
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
    this._socket = null;
    this._setState("closed");
  }

  /** Ask the server for a fresh snapshot. */
  requestResync() {
    if (this._socket?.readyState === WebSocket.OPEN) {
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

  _open() {
    clearTimeout(this._timer);
    this._setState(this.attempt === 0 ? "connecting" : "reconnecting");
    let opened = false;
    const socket = new WebSocket(this.url);
    this._socket = socket;
    socket.addEventListener("open", () => {
      opened = true;
    });
    socket.addEventListener("message", (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === "snapshot") {
        this.attempt = 0;
        this._applySnapshot(frame);
        this._setState("live");
      } else if (frame.type === "document_status") {
        this.upsertDocument(frame.data);
      } else if (frame.type === "workspace_status") {
        this.upsertWorkspace(frame.data);
      }
    });
    socket.addEventListener("close", (event) => {
      if (this._socket !== socket || this._stopped) return;
      this._socket = null;
      this._closed(event.code, opened);
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

  _setState(state) {
    if (this.state === state) return;
    this.state = state;
    this._emit("state", { state, attempt: this.attempt });
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

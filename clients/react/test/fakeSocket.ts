import { vi } from "vitest";

/** A WebSocket the test plays the server of: it opens, sends frames and closes on command. */
export class FakeWebSocket extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;
  static instances: FakeWebSocket[] = [];

  readyState = FakeWebSocket.CONNECTING;
  readonly sent: unknown[] = [];
  closedByClient: { code: number; reason: string } | null = null;

  constructor(readonly url: string) {
    super();
    FakeWebSocket.instances.push(this);
  }

  static latest(): FakeWebSocket {
    const socket = FakeWebSocket.instances.at(-1);
    if (!socket) throw new Error("no socket was opened");
    return socket;
  }

  send(data: string): void {
    if (this.readyState !== FakeWebSocket.OPEN) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState === FakeWebSocket.CLOSED) return;
    this.closedByClient = { code, reason };
    this.finish(code);
  }

  // The server's side.

  accept(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.dispatchEvent(new Event("open"));
  }

  deliver(frame: unknown): void {
    const data = typeof frame === "string" ? frame : JSON.stringify(frame);
    this.dispatchEvent(new MessageEvent("message", { data }));
  }

  drop(code: number): void {
    this.finish(code);
  }

  private finish(code: number): void {
    this.readyState = FakeWebSocket.CLOSED;
    this.dispatchEvent(Object.assign(new Event("close"), { code }));
  }
}

export function installFakeWebSocket(): void {
  FakeWebSocket.instances = [];
  vi.stubGlobal("WebSocket", FakeWebSocket);
}

export function documentMessage(
  id: number,
  version: number,
  status: string,
  extra: Record<string, unknown> = {},
) {
  return {
    document_id: id,
    user_id: 1,
    workspace_id: 10,
    filename: `doc-${id}.md`,
    status,
    error: null,
    chunk_count: 0,
    metadata: {},
    progress: [],
    version,
    ...extra,
  };
}

export function apiDocument(id: number, version: number, status: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    user_id: 1,
    workspace_id: 10,
    filename: `doc-${id}.md`,
    processing_status: status,
    processing_error: null,
    chunk_count: 0,
    metadata: {},
    progress: [],
    version,
    ...extra,
  };
}

export function apiWorkspace(id: number, version: number, status: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    user_id: 1,
    name: `Workspace ${id}`,
    status,
    status_message: null,
    version,
    ...extra,
  };
}

export function workspaceMessage(id: number, version: number, status: string, message: string | null = null) {
  return { workspace_id: id, user_id: 1, name: `Workspace ${id}`, status, message, version };
}

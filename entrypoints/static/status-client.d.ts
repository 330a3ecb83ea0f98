// Types of status-client.js, for TypeScript consumers (the React package imports the module
// itself). The page loads the .js directly and never asks for this file.

/** A document or workspace as the HTTP API names its fields; `id` and `version` always. */
export interface VersionedEntity {
  id: number;
  version: number;
  [field: string]: unknown;
}

/** A `document_status` or `workspace_status` frame, as the server sends it. */
export interface StatusFrame {
  type: "document_status" | "workspace_status";
  /** The event message (its `traceparent` included). */
  data: { [field: string]: unknown };
  /** The change cursor (`<epoch>:<position>`), on scoped connections. */
  cursor?: string;
  /** The change's W3C trace context, beside `data`; absent when it has none. */
  traceparent?: string;
}

/** A document from an event message (`document_id`, `status`, `error`) or an API body. */
export function normalizeDocument(data: object): VersionedEntity;

/** A workspace from an event message (`workspace_id`, `message`) or an API body. */
export function normalizeWorkspace(data: object): VersionedEntity;

export function defaultSocketUrl(token: string, location?: { protocol: string; host: string }): string;

/** The Server-Sent Events URL of this page's host (`/events`) for `token`. */
export function defaultEventsUrl(token: string, location?: { protocol: string; host: string }): string;

/** A cursor's parts, or null when it is not one (`<epoch>:<position>`). */
export function parseCursor(cursor: string | null | undefined): { epoch: string; position: number } | null;

/** The later of two cursors of one epoch; a cursor of another epoch replaces the one held. */
export function laterCursor(held: string | null, offered: string | null): string | null;

/** Whether an entity (in API field names) belongs to a scope. */
export function inScope(scope: string, kind: "document" | "workspace", entity: object): boolean;

/** `workspaces`, `workspace:<id>` (its documents) or `documents:<id>,<id>…`. */
export type Scope = string;

/** How the server last answered a scope: only what changed after the cursor, or a first page. */
export type Answer = "resumed" | "snapshot";

export interface StatusClientOptions {
  /** Bearer token of the user. */
  token: string;
  /** What to show; none: everything in one snapshot (protocol 1). */
  scopes?: Scope[];
  /** A cursor held from an earlier session, to resume from. */
  cursor?: string | null;
  /** `auto` (default): the WebSocket, falling back to Server-Sent Events when it cannot open. */
  transport?: "auto" | "websocket" | "sse";
  /** WebSocket URL (default: this page's host, /ws). */
  url?: string;
  /** Server-Sent Events URL (default: this page's host, /events). */
  eventsUrl?: string;
  /** First reconnect delay in ms. */
  minDelay?: number;
  /** Longest reconnect delay in ms. */
  maxDelay?: number;
  /** Asked after a failed handshake; resolving false stops reconnecting. */
  verifyToken?: () => Promise<boolean>;
  /** Options later versions of the client take are passed through unchanged. */
  [option: string]: unknown;
}

/** `idle`, `connecting`, `live`, `reconnecting`, `unauthorized`, `closed`, or a newer one. */
export type StatusClientState = string;

export interface StatusClientEventDetails {
  /** One document became newer: the merged entity. */
  document: VersionedEntity;
  /** One workspace became newer: the merged entity. */
  workspace: VersionedEntity;
  /** A snapshot replaced the held documents and workspaces. */
  snapshot: { documents: Map<number, VersionedEntity>; workspaces: Map<number, VersionedEntity> };
  /** A scope was answered: resumed from the cursor or with a first page (and why not resumed). */
  sync: { scope: Scope; mode: Answer; reason: string | null; count: number };
  /** Anything changed: a snapshot, a scope's answer, or one entity. */
  change:
    | { kind: "snapshot" }
    | { kind: "sync"; scope: Scope }
    | { kind: "document" | "workspace"; entity: VersionedEntity };
  /** The connection state changed. */
  state: { state: StatusClientState; attempt: number; transport: "websocket" | "sse" | null };
  /** The connection now runs over this transport. */
  transport: { transport: "websocket" | "sse" };
}

export class StatusClient extends EventTarget {
  constructor(options: StatusClientOptions);
  url: string;
  eventsUrl: string;
  documents: Map<number, VersionedEntity>;
  workspaces: Map<number, VersionedEntity>;
  state: StatusClientState;
  attempt: number;
  /** The scopes shown; null: everything (protocol 1). */
  scopes: Scope[] | null;
  /** The cursor held: every change up to it has been applied. */
  cursor: string | null;
  /** The transport of the current connection. */
  transport: "websocket" | "sse" | null;
  /** Per scope, the HTTP page key after its first page (null: nothing more). */
  more: Map<Scope, string | null>;
  /** Per scope, how it was last answered. */
  answeredAs: Map<Scope, Answer>;
  connect(): void;
  /** Show other scopes; on a live WebSocket without reconnecting. */
  subscribe(scopes: Scope[]): void;
  close(): void;
  /** Ask the server for a fresh snapshot. */
  requestResync(): void;
  /** Merge a document (e.g. from an API response); false when it is not newer than held. */
  upsertDocument(data: object): boolean;
  /** Merge a workspace (e.g. from an API response); false when it is not newer than held. */
  upsertWorkspace(data: object): boolean;
  addEventListener<K extends keyof StatusClientEventDetails>(
    type: K,
    listener: (event: CustomEvent<StatusClientEventDetails[K]>) => void,
    options?: boolean | AddEventListenerOptions,
  ): void;
  addEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions,
  ): void;
  removeEventListener<K extends keyof StatusClientEventDetails>(
    type: K,
    listener: (event: CustomEvent<StatusClientEventDetails[K]>) => void,
    options?: boolean | EventListenerOptions,
  ): void;
  removeEventListener(
    type: string,
    listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions,
  ): void;
}

// Types of status-client.js, for TypeScript consumers (the React package imports the module
// itself). The page loads the .js directly and never asks for this file.

/** A document or workspace as the HTTP API names its fields; `id` and `version` always. */
export interface VersionedEntity {
  id: number;
  version: number;
  [field: string]: unknown;
}

/** A document from an event message (`document_id`, `status`, `error`) or an API body. */
export function normalizeDocument(data: object): VersionedEntity;

/** A workspace from an event message (`workspace_id`, `message`) or an API body. */
export function normalizeWorkspace(data: object): VersionedEntity;

export function defaultSocketUrl(token: string, location?: { protocol: string; host: string }): string;

export interface StatusClientOptions {
  /** Bearer token of the user. */
  token: string;
  /** WebSocket URL (default: this page's host, /ws). */
  url?: string;
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
  /** Anything changed: a snapshot, or one entity. */
  change: { kind: "snapshot" } | { kind: "document" | "workspace"; entity: VersionedEntity };
  /** The connection state changed. */
  state: { state: StatusClientState; attempt: number };
}

export class StatusClient extends EventTarget {
  constructor(options: StatusClientOptions);
  url: string;
  documents: Map<number, VersionedEntity>;
  workspaces: Map<number, VersionedEntity>;
  state: StatusClientState;
  attempt: number;
  connect(): void;
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

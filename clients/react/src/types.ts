import type { DocumentProcessingStatus, WorkspaceStatus } from "./status";

/** `pending`, `active`, `completed` or `failed`: a step of a document's processing. */
export type StepState = "pending" | "active" | "completed" | "failed";

/** One step: the seed's `{label, completed}`, with the server's finer `state` when known. */
export interface ProgressStep {
  label: string;
  completed: boolean;
  state?: StepState;
}

/** A document as the HTTP API and the snapshot describe it. */
export interface StatusDocument {
  id: number;
  user_id: number;
  workspace_id: number;
  filename: string;
  processing_status: DocumentProcessingStatus;
  processing_error: string | null;
  chunk_count: number;
  metadata: Record<string, unknown>;
  progress: ProgressStep[];
  version: number;
  created_at?: string;
  updated_at?: string;
  event_id?: string;
  occurred_at?: string;
}

/** A workspace as the HTTP API and the snapshot describe it. */
export interface StatusWorkspace {
  id: number;
  user_id: number;
  name: string;
  status: WorkspaceStatus;
  status_message: string | null;
  version: number;
  created_at?: string;
  updated_at?: string;
  event_id?: string;
  occurred_at?: string;
}

/** The `data` of a `document_status` frame: the event message. */
export interface DocumentStatusMessage {
  document_id: number;
  user_id: number;
  workspace_id: number;
  status: DocumentProcessingStatus;
  error: string | null;
  filename: string;
  chunk_count: number;
  metadata: Record<string, unknown>;
  progress: ProgressStep[];
  version: number;
  event_id?: string;
  occurred_at?: string;
  /** The W3C trace context of the work that caused the change; null when none. */
  traceparent?: string | null;
}

/** The `data` of a `workspace_status` frame: the event message. */
export interface WorkspaceStatusMessage {
  workspace_id: number;
  user_id: number;
  name: string;
  status: WorkspaceStatus;
  message: string | null;
  version: number;
  event_id?: string;
  occurred_at?: string;
  /** The W3C trace context of the work that caused the change; null when none. */
  traceparent?: string | null;
}

/** A status frame as the server sends it on `/ws` and `/events`. */
interface StatusFrame<Type extends string, Message> {
  type: Type;
  data: Message;
  /** The change cursor (`<epoch>:<position>`); on scoped connections (protocol 2) only. */
  cursor?: string;
  /** The change's W3C trace context (as `data.traceparent`); absent when it has none. */
  traceparent?: string;
}

/** `{"type": "document_status", "traceparent"?, "cursor"?, "data": {...}}`. */
export type DocumentStatusFrame = StatusFrame<"document_status", DocumentStatusMessage>;

/** `{"type": "workspace_status", "traceparent"?, "cursor"?, "data": {...}}`. */
export type WorkspaceStatusFrame = StatusFrame<"workspace_status", WorkspaceStatusMessage>;

/** The connection to the server: `live` once a snapshot has arrived; or a newer state. */
export type ConnectionState =
  | "idle"
  | "connecting"
  | "live"
  | "reconnecting"
  | "unauthorized"
  | "closed"
  | (string & {});

/** Settings of the status client besides its token and URL; newer ones pass through as given. */
export interface StatusClientSettings {
  /** First reconnect delay in ms. */
  minDelay?: number;
  /** Longest reconnect delay in ms. */
  maxDelay?: number;
  /** Asked after a failed handshake; resolving false (token refused) stops reconnecting. */
  verifyToken?: () => Promise<boolean>;
  [setting: string]: unknown;
}

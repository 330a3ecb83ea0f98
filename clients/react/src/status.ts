// The status vocabulary of the server (domain/status.py): the seed's values and nothing else.

export const DocumentProcessingStatus = {
  PENDING: "pending",
  PROCESSING: "processing",
  READY: "ready",
  FAILED: "failed",
} as const;
export type DocumentProcessingStatus =
  (typeof DocumentProcessingStatus)[keyof typeof DocumentProcessingStatus];

export const WorkspaceStatus = {
  PROVISIONING: "provisioning",
  READY: "ready",
  ERROR: "error",
} as const;
export type WorkspaceStatus = (typeof WorkspaceStatus)[keyof typeof WorkspaceStatus];

/** Every value a badge can show. */
export type Status = DocumentProcessingStatus | WorkspaceStatus;

export const STATUSES: readonly Status[] = [
  "pending",
  "processing",
  "provisioning",
  "ready",
  "failed",
  "error",
];

/** How each status reads on screen; the icon keeps statuses apart without colour. */
export const STATUS_APPEARANCE: Readonly<
  Record<Status, { label: string; icon: string; busy: boolean; problem: boolean }>
> = {
  pending: { label: "Pending", icon: "○", busy: false, problem: false },
  processing: { label: "Processing", icon: "◐", busy: true, problem: false },
  provisioning: { label: "Provisioning", icon: "◑", busy: true, problem: false },
  ready: { label: "Ready", icon: "✓", busy: false, problem: false },
  failed: { label: "Failed", icon: "✕", busy: false, problem: true },
  error: { label: "Error", icon: "!", busy: false, problem: true },
};

export function isStatus(value: unknown): value is Status {
  return typeof value === "string" && Object.hasOwn(STATUS_APPEARANCE, value);
}

/** A document has settled when no worker will change it again without a retry. */
export function isSettled(status: DocumentProcessingStatus): boolean {
  return status === "ready" || status === "failed";
}

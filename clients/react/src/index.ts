import "./styles.css";

export { LoadingSpinner, type LoadingSpinnerProps, type SpinnerSize } from "./components/LoadingSpinner";
export { StatusBadge, type StatusBadgeProps } from "./components/StatusBadge";
export { ProgressIndicator, type ProgressIndicatorProps } from "./components/ProgressIndicator";
export {
  StatusProvider,
  useStatus,
  useStatusClient,
  type StatusProviderProps,
  type StatusSource,
  type StatusState,
} from "./client";
export {
  DocumentProcessingStatus,
  WorkspaceStatus,
  STATUSES,
  STATUS_APPEARANCE,
  isSettled,
  isStatus,
  type Status,
} from "./status";
export type {
  ConnectionState,
  DocumentStatusFrame,
  DocumentStatusMessage,
  ProgressStep,
  StatusClientSettings,
  StatusDocument,
  StatusWorkspace,
  StepState,
  WorkspaceStatusFrame,
  WorkspaceStatusMessage,
} from "./types";

export {
  statusSlice,
  statusReducer,
  initialStatusState,
  updateDocumentStatus,
  updateWorkspaceStatus,
  statusSnapshotReceived,
  connectionStateChanged,
  selectDocuments,
  selectWorkspaces,
  selectConnection,
  type StatusSliceState,
  type StatusSnapshot,
} from "./statusSlice";
export { useStatusUpdates, type StatusUpdatesOptions } from "./useStatusUpdates";

import { createSlice, type PayloadAction } from "@reduxjs/toolkit";
import { normalizeDocument, normalizeWorkspace } from "@insighthub/status-client";
import type {
  ConnectionState,
  DocumentStatusMessage,
  StatusDocument,
  StatusWorkspace,
  WorkspaceStatusMessage,
} from "../types";

export interface StatusSliceState {
  documents: Record<number, StatusDocument>;
  workspaces: Record<number, StatusWorkspace>;
  connection: ConnectionState;
}

export interface StatusSnapshot {
  documents: ReadonlyArray<StatusDocument | DocumentStatusMessage>;
  workspaces: ReadonlyArray<StatusWorkspace | WorkspaceStatusMessage>;
}

export const initialStatusState: StatusSliceState = {
  documents: {},
  workspaces: {},
  connection: "idle",
};

/** Stores `entity` unless what is held has the same version or a newer one. */
function keepNewer<T extends { id: number; version: number }>(held: Record<number, T>, entity: T) {
  const current = held[entity.id];
  if (!current || current.version < entity.version) held[entity.id] = entity;
}

/** The fresh list, each entry unless the held one is newer (an event overtook the snapshot). */
function replaceKeepingNewer<T extends { id: number; version: number }>(
  held: Record<number, T>,
  fresh: readonly T[],
): Record<number, T> {
  const out: Record<number, T> = {};
  for (const entity of fresh) {
    const current = held[entity.id];
    out[entity.id] = current && current.version > entity.version ? current : entity;
  }
  return out;
}

const asDocument = (data: object) => normalizeDocument(data) as unknown as StatusDocument;
const asWorkspace = (data: object) => normalizeWorkspace(data) as unknown as StatusWorkspace;

export const statusSlice = createSlice({
  name: "status",
  initialState: initialStatusState,
  reducers: {
    /** A `document_status` message or an API document; ignored unless its version is newer. */
    updateDocumentStatus(
      state,
      action: PayloadAction<DocumentStatusMessage | StatusDocument>,
    ) {
      keepNewer(state.documents as Record<number, StatusDocument>, asDocument(action.payload));
    },
    /** A `workspace_status` message or an API workspace; ignored unless its version is newer. */
    updateWorkspaceStatus(
      state,
      action: PayloadAction<WorkspaceStatusMessage | StatusWorkspace>,
    ) {
      keepNewer(state.workspaces as Record<number, StatusWorkspace>, asWorkspace(action.payload));
    },
    /** The server's full account of the user's entities: replaces what is held. */
    statusSnapshotReceived(state, action: PayloadAction<StatusSnapshot>) {
      state.documents = replaceKeepingNewer(
        state.documents as Record<number, StatusDocument>,
        action.payload.documents.map(asDocument),
      );
      state.workspaces = replaceKeepingNewer(
        state.workspaces as Record<number, StatusWorkspace>,
        action.payload.workspaces.map(asWorkspace),
      );
    },
    connectionStateChanged(state, action: PayloadAction<ConnectionState>) {
      state.connection = action.payload;
    },
  },
  selectors: {
    selectDocuments: (state) => state.documents,
    selectWorkspaces: (state) => state.workspaces,
    selectConnection: (state) => state.connection,
  },
});

export const {
  updateDocumentStatus,
  updateWorkspaceStatus,
  statusSnapshotReceived,
  connectionStateChanged,
} = statusSlice.actions;

export const statusReducer = statusSlice.reducer;

/** Selectors of a store that mounts `statusReducer` under `status`. */
export const { selectDocuments, selectWorkspaces, selectConnection } = statusSlice.selectors;

import { useEffect } from "react";
import { useDispatch } from "react-redux";
import { useStatusClient, type StatusSource } from "../client";
import type { StatusDocument, StatusWorkspace } from "../types";
import {
  connectionStateChanged,
  statusSnapshotReceived,
  updateDocumentStatus,
  updateWorkspaceStatus,
} from "./statusSlice";

export interface StatusUpdatesOptions {
  /** A client made elsewhere; by default the one of the nearest `StatusProvider`. */
  client?: StatusSource | null;
}

function detail<T>(event: Event): T {
  return (event as CustomEvent<T>).detail;
}

/**
 * Keeps the Redux store in step with the server: `updateDocumentStatus` on every
 * `document_status`, `updateWorkspaceStatus` on every `workspace_status`, the snapshot on
 * every (re)connect, and the connection state.
 */
export function useStatusUpdates(options: StatusUpdatesOptions = {}): void {
  const dispatch = useDispatch();
  const client = useStatusClient(options.client);

  useEffect(() => {
    if (!client) return undefined;
    const listeners: Record<string, (event: Event) => void> = {
      document: (event) => dispatch(updateDocumentStatus(detail<StatusDocument>(event))),
      workspace: (event) => dispatch(updateWorkspaceStatus(detail<StatusWorkspace>(event))),
      snapshot: (event) => {
        const { documents, workspaces } = detail<{
          documents: Map<number, StatusDocument>;
          workspaces: Map<number, StatusWorkspace>;
        }>(event);
        dispatch(
          statusSnapshotReceived({
            documents: [...documents.values()],
            workspaces: [...workspaces.values()],
          }),
        );
      },
      state: (event) => dispatch(connectionStateChanged(detail<{ state: string }>(event).state)),
    };
    for (const [type, listener] of Object.entries(listeners)) {
      client.addEventListener(type, listener);
    }
    // The client may have been live before this component mounted: start from what it holds.
    if (client.state === "live") {
      dispatch(
        statusSnapshotReceived({
          documents: [...client.documents.values()] as StatusDocument[],
          workspaces: [...client.workspaces.values()] as StatusWorkspace[],
        }),
      );
    }
    dispatch(connectionStateChanged(client.state));
    return () => {
      for (const [type, listener] of Object.entries(listeners)) {
        client.removeEventListener(type, listener);
      }
    };
  }, [client, dispatch]);
}

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
    const mirrorHeld = () =>
      dispatch(
        statusSnapshotReceived({
          documents: [...client.documents.values()] as StatusDocument[],
          workspaces: [...client.workspaces.values()] as StatusWorkspace[],
        }),
      );
    // Only the client's documented events: "change" (a snapshot, or one entity that became
    // newer) and "state"; after a snapshot the store mirrors what the client then holds.
    const listeners: Record<string, (event: Event) => void> = {
      change: (event) => {
        const change = detail<{ kind: string; entity?: object }>(event);
        if (change.kind === "document" && change.entity) {
          dispatch(updateDocumentStatus(change.entity as StatusDocument));
        } else if (change.kind === "workspace" && change.entity) {
          dispatch(updateWorkspaceStatus(change.entity as StatusWorkspace));
        } else {
          mirrorHeld();
        }
      },
      state: (event) => dispatch(connectionStateChanged(detail<{ state: string }>(event).state)),
    };
    for (const [type, listener] of Object.entries(listeners)) {
      client.addEventListener(type, listener);
    }
    // The client may have been live before this component mounted: start from what it holds.
    if (client.state === "live") mirrorHeld();
    dispatch(connectionStateChanged(client.state));
    return () => {
      for (const [type, listener] of Object.entries(listeners)) {
        client.removeEventListener(type, listener);
      }
    };
  }, [client, dispatch]);
}

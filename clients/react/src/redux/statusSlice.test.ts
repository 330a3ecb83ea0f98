import { configureStore } from "@reduxjs/toolkit";
import { describe, expect, it } from "vitest";
import { apiDocument, apiWorkspace, documentMessage, workspaceMessage } from "../../test/fakeSocket";
import type { DocumentStatusMessage, StatusDocument, WorkspaceStatusMessage } from "../types";
import {
  connectionStateChanged,
  selectConnection,
  selectDocuments,
  selectWorkspaces,
  statusReducer,
  statusSnapshotReceived,
  updateDocumentStatus,
  updateWorkspaceStatus,
} from "./statusSlice";

function store() {
  return configureStore({ reducer: { status: statusReducer } });
}

const doc = (id: number, version: number, status: string, extra = {}) =>
  documentMessage(id, version, status, extra) as DocumentStatusMessage;

describe("statusSlice", () => {
  it("names its action creators as the seed does", () => {
    expect(updateDocumentStatus.type).toBe("status/updateDocumentStatus");
    expect(updateWorkspaceStatus.type).toBe("status/updateWorkspaceStatus");
  });

  it("stores a document_status message in the API's field names", () => {
    const s = store();
    s.dispatch(updateDocumentStatus(doc(7, 2, "failed", { error: "Parsing failed: the file is empty" })));
    const held = selectDocuments(s.getState())[7];
    expect(held).toMatchObject({
      id: 7,
      processing_status: "failed",
      processing_error: "Parsing failed: the file is empty",
      version: 2,
    });
    expect(held).not.toHaveProperty("document_id");
  });

  it("takes an API document too", () => {
    const s = store();
    s.dispatch(updateDocumentStatus(apiDocument(3, 1, "pending") as StatusDocument));
    expect(selectDocuments(s.getState())[3]?.processing_status).toBe("pending");
  });

  it("ignores a stale or repeated version", () => {
    const s = store();
    s.dispatch(updateDocumentStatus(doc(1, 3, "processing")));
    const before = s.getState();
    s.dispatch(updateDocumentStatus(doc(1, 2, "pending")));
    s.dispatch(updateDocumentStatus(doc(1, 3, "ready")));
    expect(s.getState()).toBe(before);
    expect(selectDocuments(s.getState())[1]?.processing_status).toBe("processing");
  });

  it("ends at the newest version whatever order events arrive in", () => {
    const events = [
      doc(1, 1, "pending"),
      doc(1, 2, "processing"),
      doc(1, 3, "processing"),
      doc(1, 4, "ready", { chunk_count: 5 }),
    ];
    for (const order of [
      [0, 1, 2, 3],
      [3, 2, 1, 0],
      [1, 3, 0, 2],
      [2, 0, 3, 1],
    ]) {
      const s = store();
      for (const index of order) s.dispatch(updateDocumentStatus(events[index]!));
      expect(selectDocuments(s.getState())[1]).toMatchObject({
        processing_status: "ready",
        chunk_count: 5,
        version: 4,
      });
    }
  });

  it("keeps documents apart", () => {
    const s = store();
    s.dispatch(updateDocumentStatus(doc(1, 5, "ready")));
    s.dispatch(updateDocumentStatus(doc(2, 1, "pending")));
    expect(Object.keys(selectDocuments(s.getState()))).toEqual(["1", "2"]);
  });

  it("applies workspace messages by version, with the status message", () => {
    const s = store();
    s.dispatch(updateWorkspaceStatus(workspaceMessage(4, 2, "error", "quota exceeded") as WorkspaceStatusMessage));
    s.dispatch(updateWorkspaceStatus(workspaceMessage(4, 1, "provisioning") as WorkspaceStatusMessage));
    expect(selectWorkspaces(s.getState())[4]).toMatchObject({
      id: 4,
      status: "error",
      status_message: "quota exceeded",
      version: 2,
    });
    s.dispatch(updateWorkspaceStatus(apiWorkspace(4, 3, "provisioning") as never));
    expect(selectWorkspaces(s.getState())[4]?.status).toBe("provisioning");
  });

  it("replaces what it holds with a snapshot, keeping an entry an event made newer", () => {
    const s = store();
    s.dispatch(updateDocumentStatus(doc(1, 4, "ready")));
    s.dispatch(updateDocumentStatus(doc(2, 1, "pending")));
    s.dispatch(
      statusSnapshotReceived({
        documents: [apiDocument(1, 3, "processing"), apiDocument(3, 2, "processing")] as StatusDocument[],
        workspaces: [apiWorkspace(9, 1, "ready")] as never,
      }),
    );
    const documents = selectDocuments(s.getState());
    expect(Object.keys(documents)).toEqual(["1", "3"]);
    expect(documents[1]?.version).toBe(4);
    expect(documents[3]?.processing_status).toBe("processing");
    expect(selectWorkspaces(s.getState())[9]?.status).toBe("ready");
  });

  it("records the connection state", () => {
    const s = store();
    expect(selectConnection(s.getState())).toBe("idle");
    s.dispatch(connectionStateChanged("live"));
    expect(selectConnection(s.getState())).toBe("live");
  });
});

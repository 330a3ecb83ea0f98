import { configureStore } from "@reduxjs/toolkit";
import { act, render, screen, waitFor } from "@testing-library/react";
import { StrictMode } from "react";
import { Provider, useSelector } from "react-redux";
import { StatusClient } from "@insighthub/status-client";
import { beforeEach, describe, expect, it } from "vitest";
import { StatusProvider } from "../client";
import { StatusBadge } from "../components/StatusBadge";
import {
  FakeWebSocket,
  apiDocument,
  apiWorkspace,
  documentMessage,
  installFakeWebSocket,
  workspaceMessage,
} from "../../test/fakeSocket";
import { selectConnection, selectDocuments, statusReducer } from "./statusSlice";
import { useStatusUpdates } from "./useStatusUpdates";

type Store = ReturnType<typeof makeStore>;
const makeStore = () => configureStore({ reducer: { status: statusReducer } });

function Documents() {
  useStatusUpdates();
  const documents = useSelector(selectDocuments);
  const connection = useSelector(selectConnection);
  return (
    <div>
      <p data-testid="connection">{connection}</p>
      <ul>
        {Object.values(documents).map((document) => (
          <li key={document.id} data-testid={`doc-${document.id}`}>
            {document.filename}
            <StatusBadge status={document.processing_status} message={document.processing_error} />
          </li>
        ))}
      </ul>
    </div>
  );
}

function mount(store: Store = makeStore()) {
  const view = render(
    <Provider store={store}>
      <StatusProvider token="t0k/en" url="ws://server.test/ws?token=t0k%2Fen" options={{ minDelay: 1, maxDelay: 1 }}>
        <Documents />
      </StatusProvider>
    </Provider>,
  );
  return { store, view };
}

function live(socket = FakeWebSocket.latest(), snapshot = {}) {
  act(() => {
    socket.accept();
    socket.deliver({ type: "snapshot", documents: [], workspaces: [], ...snapshot });
  });
  return socket;
}

const send = (socket: FakeWebSocket, frame: unknown) => act(() => socket.deliver(frame));

beforeEach(installFakeWebSocket);

describe("useStatusUpdates", () => {
  it("connects once to the server with the token", () => {
    mount();
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(FakeWebSocket.latest().url).toBe("ws://server.test/ws?token=t0k%2Fen");
  });

  it("fills the store from the snapshot and goes live", () => {
    const { store } = mount();
    expect(screen.getByTestId("connection")).toHaveTextContent("connecting");
    live(undefined, {
      documents: [apiDocument(1, 2, "processing")],
      workspaces: [apiWorkspace(10, 2, "ready")],
    });
    expect(screen.getByTestId("connection")).toHaveTextContent("live");
    expect(screen.getByTestId("doc-1")).toHaveTextContent("Processing");
    expect(store.getState().status.workspaces[10]?.status).toBe("ready");
  });

  it("dispatches updateDocumentStatus on document_status and updateWorkspaceStatus on workspace_status", () => {
    const { store } = mount();
    const socket = live();
    send(socket, { type: "document_status", data: documentMessage(5, 1, "pending") });
    expect(screen.getByTestId("doc-5")).toHaveTextContent("Pending");
    send(socket, { type: "document_status", data: documentMessage(5, 2, "processing") });
    expect(screen.getByTestId("doc-5")).toHaveTextContent("Processing");
    send(socket, {
      type: "document_status",
      data: documentMessage(5, 3, "failed", { error: "Parsing failed: the PDF is encrypted" }),
    });
    expect(screen.getByTestId("doc-5")).toHaveTextContent("FailedParsing failed: the PDF is encrypted");
    send(socket, { type: "workspace_status", data: workspaceMessage(10, 2, "error", "no space left") });
    expect(store.getState().status.workspaces[10]).toMatchObject({
      status: "error",
      status_message: "no space left",
    });
  });

  it("never shows an older version than it has shown", () => {
    const { store } = mount();
    const socket = live();
    send(socket, { type: "document_status", data: documentMessage(5, 4, "ready") });
    send(socket, { type: "document_status", data: documentMessage(5, 2, "processing") });
    send(socket, { type: "document_status", data: documentMessage(5, 3, "processing") });
    expect(screen.getByTestId("doc-5")).toHaveTextContent("Ready");
    expect(store.getState().status.documents[5]?.version).toBe(4);
  });

  it("ignores frames that are not JSON or of an unknown type", () => {
    const { store } = mount();
    const socket = live();
    const before = store.getState();
    send(socket, "not json {");
    send(socket, { type: "something_new", data: {} });
    expect(store.getState()).toBe(before);
  });

  it("reconnects after the server restarts, and the new snapshot brings the store up to date", async () => {
    mount();
    const first = live(undefined, { documents: [apiDocument(1, 1, "pending")] });
    act(() => first.drop(1012));
    expect(screen.getByTestId("connection")).toHaveTextContent("reconnecting");
    await waitFor(() => expect(FakeWebSocket.instances).toHaveLength(2));
    live(FakeWebSocket.latest(), { documents: [apiDocument(1, 3, "ready")] });
    expect(screen.getByTestId("connection")).toHaveTextContent("live");
    expect(screen.getByTestId("doc-1")).toHaveTextContent("Ready");
  });

  it("stops when the server refuses the token", () => {
    mount();
    const socket = live();
    act(() => socket.drop(1008));
    expect(screen.getByTestId("connection")).toHaveTextContent("unauthorized");
  });

  it("closes the socket and stops dispatching when unmounted", () => {
    const { store, view } = mount();
    const socket = live();
    view.unmount();
    expect(socket.closedByClient?.code).toBe(1000);
    const before = store.getState().status.documents;
    socket.deliver({ type: "document_status", data: documentMessage(8, 1, "pending") });
    expect(store.getState().status.documents).toBe(before);
  });

  it("starts from what a client made elsewhere already holds", () => {
    const client = new StatusClient({ token: "t", url: "ws://server.test/ws?token=t" });
    client.connect();
    live(FakeWebSocket.latest(), { documents: [apiDocument(2, 6, "ready")] });
    const store = makeStore();
    render(
      <Provider store={store}>
        <StatusProvider client={client}>
          <Documents />
        </StatusProvider>
      </Provider>,
    );
    expect(screen.getByTestId("connection")).toHaveTextContent("live");
    expect(screen.getByTestId("doc-2")).toHaveTextContent("Ready");
    expect(FakeWebSocket.instances).toHaveLength(1);
    act(() => client.close());
  });

  it("keeps one open socket under StrictMode's double effects", () => {
    render(
      <StrictMode>
        <Provider store={makeStore()}>
          <StatusProvider token="t" url="ws://server.test/ws?token=t">
            <Documents />
          </StatusProvider>
        </Provider>
      </StrictMode>,
    );
    const open = FakeWebSocket.instances.filter((socket) => socket.closedByClient === null);
    expect(open).toHaveLength(1);
    live(open[0], { documents: [apiDocument(3, 1, "pending")] });
    expect(screen.getByTestId("doc-3")).toHaveTextContent("Pending");
  });
});

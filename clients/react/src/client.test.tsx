import { act, render, screen } from "@testing-library/react";
import { beforeEach, describe, expect, it } from "vitest";
import { StatusProvider, useStatus, useStatusClient } from "./client";
import { StatusBadge } from "./components/StatusBadge";
import {
  FakeWebSocket,
  apiDocument,
  apiWorkspace,
  documentMessage,
  installFakeWebSocket,
  workspaceMessage,
} from "../test/fakeSocket";

function Workspaces() {
  const { workspaces, documents, connection } = useStatus();
  const client = useStatusClient();
  return (
    <div>
      <p data-testid="connection">{connection}</p>
      <p data-testid="documents">{documents.map((d) => `${d.id}:${d.processing_status}`).join(",")}</p>
      {workspaces.map((workspace) => (
        <section key={workspace.id} data-testid={`ws-${workspace.id}`}>
          <StatusBadge status={workspace.status} message={workspace.status_message} />
        </section>
      ))}
      <button type="button" onClick={() => client?.upsertDocument(apiDocument(9, 1, "pending"))}>
        add
      </button>
    </div>
  );
}

function mount() {
  return render(
    <StatusProvider token="abc">
      <Workspaces />
    </StatusProvider>,
  );
}

beforeEach(installFakeWebSocket);

describe("useStatus, without Redux", () => {
  it("connects to this page's host by default", () => {
    mount();
    expect(FakeWebSocket.latest().url).toBe(`ws://${window.location.host}/ws?token=abc`);
  });

  it("returns the snapshot, then every newer change", () => {
    mount();
    const socket = FakeWebSocket.latest();
    act(() => {
      socket.accept();
      socket.deliver({
        type: "snapshot",
        documents: [apiDocument(1, 1, "pending")],
        workspaces: [apiWorkspace(10, 1, "provisioning")],
      });
    });
    expect(screen.getByTestId("connection")).toHaveTextContent("live");
    expect(screen.getByTestId("ws-10")).toHaveTextContent("Provisioning");
    act(() => socket.deliver({ type: "workspace_status", data: workspaceMessage(10, 2, "ready") }));
    expect(screen.getByTestId("ws-10")).toHaveTextContent("Ready");
    act(() => socket.deliver({ type: "workspace_status", data: workspaceMessage(10, 1, "provisioning") }));
    expect(screen.getByTestId("ws-10")).toHaveTextContent("Ready");
    act(() => socket.deliver({ type: "document_status", data: documentMessage(1, 2, "processing") }));
    expect(screen.getByTestId("documents")).toHaveTextContent("1:processing");
  });

  it("shows what the page merges from API responses", () => {
    mount();
    act(() => screen.getByRole("button", { name: "add" }).click());
    expect(screen.getByTestId("documents")).toHaveTextContent("9:pending");
  });

  it("is empty and idle outside a provider", () => {
    render(<Workspaces />);
    expect(screen.getByTestId("connection")).toHaveTextContent("idle");
    expect(FakeWebSocket.instances).toHaveLength(0);
  });

  it("opens a new connection for a new token and closes the old one", () => {
    const view = mount();
    const first = FakeWebSocket.latest();
    view.rerender(
      <StatusProvider token="def">
        <Workspaces />
      </StatusProvider>,
    );
    expect(first.closedByClient).not.toBeNull();
    expect(FakeWebSocket.latest().url).toContain("token=def");
  });
});

import type { StatusDocument, StatusWorkspace } from "@insighthub/status-react";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The server's HTTP API (docs/api.md), as the signed-in user. */
export class Api {
  constructor(private readonly token: string) {}

  private async call<T>(method: string, path: string, body?: BodyInit, json = false): Promise<T> {
    const headers: Record<string, string> = { Authorization: `Bearer ${this.token}` };
    if (json) headers["Content-Type"] = "application/json";
    const answer = await fetch(path, { method, headers, ...(body === undefined ? {} : { body }) });
    const payload = (await answer.json().catch(() => ({}))) as { error?: string };
    if (!answer.ok) throw new ApiError(answer.status, payload.error ?? `HTTP ${answer.status}`);
    return payload as T;
  }

  session() {
    return this.call<{ user_id: number; expires_at: number }>("GET", "/api/session");
  }

  async workspaces() {
    return (await this.call<{ workspaces: StatusWorkspace[] }>("GET", "/api/workspaces")).workspaces;
  }

  workspace(id: number) {
    return this.call<StatusWorkspace>("GET", `/api/workspaces/${id}`);
  }

  createWorkspace(name: string) {
    return this.call<StatusWorkspace>("POST", "/api/workspaces", JSON.stringify({ name }), true);
  }

  retryWorkspace(id: number) {
    return this.call<StatusWorkspace>("POST", `/api/workspaces/${id}/retry`);
  }

  async documents(workspaceId: number) {
    const path = `/api/workspaces/${workspaceId}/documents`;
    return (await this.call<{ documents: StatusDocument[] }>("GET", path)).documents;
  }

  upload(workspaceId: number, file: File) {
    const form = new FormData();
    form.append("file", file);
    return this.call<StatusDocument>("POST", `/api/workspaces/${workspaceId}/documents`, form);
  }

  retryDocument(id: number) {
    return this.call<StatusDocument>("POST", `/api/documents/${id}/retry`);
  }
}

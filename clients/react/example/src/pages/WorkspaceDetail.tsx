import { useEffect, useRef, useState, type DragEvent } from "react";
import { useDispatch, useSelector } from "react-redux";
import {
  LoadingSpinner,
  ProgressIndicator,
  StatusBadge,
  type StatusDocument,
} from "@insighthub/status-react";
import {
  selectDocuments,
  selectWorkspaces,
  updateDocumentStatus,
  updateWorkspaceStatus,
} from "@insighthub/status-react/redux";
import type { Api } from "../api";
import { Link } from "../router";
import { useNotice } from "../useNotice";

const ACCEPTED = ".pdf,.md,.txt,.html,.htm";

export function WorkspaceDetail({ api, workspaceId }: { api: Api; workspaceId: number }) {
  const dispatch = useDispatch();
  const workspace = useSelector(selectWorkspaces)[workspaceId];
  const all = useSelector(selectDocuments);
  const documents = Object.values(all)
    .filter((document) => document.workspace_id === workspaceId)
    .sort((a, b) => a.id - b.id);
  const [notice, report] = useNotice();
  const [missing, setMissing] = useState(false);
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  useEffect(() => {
    setMissing(false);
    api.workspace(workspaceId).then(
      (found) => dispatch(updateWorkspaceStatus(found)),
      () => setMissing(true),
    );
    api.documents(workspaceId).then(
      (listed) => listed.forEach((document) => dispatch(updateDocumentStatus(document))),
      report,
    );
  }, [api, workspaceId, dispatch, report]);

  const upload = (files: FileList | null) => {
    for (const file of files ?? []) {
      api.upload(workspaceId, file).then((created) => dispatch(updateDocumentStatus(created)), report);
    }
    if (input.current) input.current.value = "";
  };
  const drop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    upload(event.dataTransfer.files);
  };

  if (missing) return <p className="notice">No such workspace. <Link to="/">All workspaces</Link></p>;
  if (!workspace) return <LoadingSpinner size="lg" label="Loading workspace" />;
  const ready = workspace.status === "ready";
  return (
    <section aria-labelledby="workspace-title">
      <p>
        <Link to="/">← All workspaces</Link>
      </p>
      <div className="title-row">
        <h2 id="workspace-title">{workspace.name}</h2>
        <span id="workspace-badge">
          <StatusBadge status={workspace.status} message={workspace.status_message} />
        </span>
      </div>
      {workspace.status === "provisioning" ? (
        <LoadingSpinner label="Provisioning the workspace" />
      ) : null}
      {workspace.status === "error" ? (
        <button type="button" className="retry" onClick={() => api.retryWorkspace(workspaceId).then((w) => dispatch(updateWorkspaceStatus(w)), report)}>
          Retry provisioning
        </button>
      ) : null}
      <div
        className={`drop-zone${dragging ? " drop-zone--over" : ""}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={drop}
      >
        <label htmlFor="file-input">
          {ready ? "Upload documents (PDF, Markdown, text, HTML) — choose or drop files" : "Uploads open once the workspace is ready"}
        </label>
        <input
          id="file-input"
          ref={input}
          type="file"
          multiple
          accept={ACCEPTED}
          disabled={!ready}
          onChange={(event) => upload(event.target.files)}
        />
      </div>
      {notice}
      <ul className="cards" id="document-list">
        {documents.map((document) => (
          <DocumentCard key={document.id} document={document} onRetry={() => api.retryDocument(document.id).then((d) => dispatch(updateDocumentStatus(d)), report)} />
        ))}
      </ul>
    </section>
  );
}

function DocumentCard({ document, onRetry }: { document: StatusDocument; onRetry: () => void }) {
  const status = document.processing_status;
  return (
    <li
      className="card document"
      data-filename={document.filename}
      data-status={status}
      data-version={document.version}
    >
      <div className="title-row">
        <span className="document-name">{document.filename}</span>
        <StatusBadge status={status} size="sm" />
      </div>
      {status === "pending" || status === "processing" ? (
        <ProgressIndicator
          title={status === "pending" ? "Waiting for a worker..." : "Processing document..."}
          description="This may take a few minutes"
          steps={document.progress}
        />
      ) : null}
      {status === "ready" ? <p className="document-detail">{document.chunk_count} chunks indexed</p> : null}
      {status === "failed" ? (
        <>
          <p className="document-error">{document.processing_error ?? "Processing failed"}</p>
          <button type="button" className="retry" onClick={onRetry}>
            Retry
          </button>
        </>
      ) : null}
    </li>
  );
}

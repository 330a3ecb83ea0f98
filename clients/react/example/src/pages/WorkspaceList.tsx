import { useEffect, useState, type FormEvent } from "react";
import { useDispatch, useSelector } from "react-redux";
import { StatusBadge } from "@insighthub/status-react";
import { selectWorkspaces, updateWorkspaceStatus } from "@insighthub/status-react/redux";
import type { Api } from "../api";
import { Link } from "../router";
import { useNotice } from "../useNotice";

export function WorkspaceList({ api }: { api: Api }) {
  const dispatch = useDispatch();
  const workspaces = Object.values(useSelector(selectWorkspaces)).sort((a, b) => a.id - b.id);
  const [name, setName] = useState("");
  const [notice, report] = useNotice();

  useEffect(() => {
    api.workspaces().then(
      (listed) => listed.forEach((workspace) => dispatch(updateWorkspaceStatus(workspace))),
      report,
    );
  }, [api, dispatch, report]);

  const create = (event: FormEvent) => {
    event.preventDefault();
    api.createWorkspace(name).then((created) => {
      dispatch(updateWorkspaceStatus(created));
      setName("");
    }, report);
  };

  return (
    <section aria-labelledby="workspaces-title">
      <h2 id="workspaces-title">Workspaces</h2>
      <form id="workspace-form" className="inline-form" onSubmit={create}>
        <label htmlFor="workspace-name">New workspace</label>
        <input id="workspace-name" value={name} maxLength={200} required onChange={(e) => setName(e.target.value)} />
        <button type="submit">Create</button>
      </form>
      {notice}
      {workspaces.length === 0 ? <p className="empty">No workspaces yet.</p> : null}
      <ul className="cards" id="workspace-list">
        {workspaces.map((workspace) => (
          <li key={workspace.id} className="card workspace" data-status={workspace.status} data-version={workspace.version}>
            <Link to={`/workspaces/${workspace.id}`}>{workspace.name}</Link>
            <StatusBadge status={workspace.status} message={workspace.status_message} size="sm" />
            {workspace.status === "error" ? (
              <button
                type="button"
                className="retry"
                onClick={() => api.retryWorkspace(workspace.id).then((w) => dispatch(updateWorkspaceStatus(w)), report)}
              >
                Retry
              </button>
            ) : null}
          </li>
        ))}
      </ul>
    </section>
  );
}

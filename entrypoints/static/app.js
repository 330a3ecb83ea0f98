// The live status page: sign in, workspaces, uploads, and every status change as it happens.
import { StatusClient } from "./status-client.js";

const TOKEN_KEY = "insighthub.token";
const PAGE_SIZE = 100;
const TRANSPORT_LABELS = { websocket: "WebSocket", sse: "SSE" };
const WORKING = new Set(["pending", "processing", "provisioning"]);
const CONNECTION_LABELS = {
  idle: "Not connected",
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  unauthorized: "Signed out",
  closed: "Not connected",
};

const $ = (id) => document.getElementById(id);
let client = null;
let token = null;
let selectedWorkspace = null;
const documentCards = new Map();
// Per workspace, the link to its next page of documents (null: every page is loaded).
const nextPages = new Map();

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function badge(status) {
  const node = el("span", { class: "badge", "data-status": status });
  if (WORKING.has(status)) node.append(el("span", { class: "spinner", "aria-hidden": "true" }));
  node.append(status);
  return node;
}

// ---- API -------------------------------------------------------------------------------------

async function api(path, { method = "GET", body, json } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const response = await fetch(path, { method, headers, body });
  const payload = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signOut("Your session has ended. Sign in again.");
    throw new Error(payload.error ?? "unauthorized");
  }
  if (!response.ok) throw new Error(payload.error ?? `request failed (${response.status})`);
  return payload;
}

function notify(message) {
  const notice = el("div", { class: "notice", role: "alert" }, el("span", { text: message }));
  const dismiss = el("button", { type: "button", "aria-label": "Dismiss", text: "×" });
  dismiss.addEventListener("click", () => notice.remove());
  notice.append(dismiss);
  $("notices").append(notice);
  setTimeout(() => notice.remove(), 8000);
}

// ---- Session ---------------------------------------------------------------------------------

function tokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const fromUrl = params.get("token");
  if (fromUrl) {
    // The token must not linger in the address bar, history or a copied link.
    history.replaceState(null, "", location.pathname + location.search);
  }
  return fromUrl;
}

async function verifyToken() {
  const response = await fetch("/api/session", { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) return false;
  if (!response.ok) throw new Error(`session check failed (${response.status})`);
  return true;
}

async function signIn(candidate) {
  token = candidate.trim();
  let session;
  try {
    const response = await fetch("/api/session", { headers: { Authorization: `Bearer ${token}` } });
    session = await response.json();
    if (!response.ok) throw new Error(session.error ?? "the token was refused");
  } catch (error) {
    token = null;
    showSignIn(`Sign-in failed: ${error.message}`);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in").hidden = true;
  $("app").hidden = false;
  $("user").hidden = false;
  $("user").textContent = `User ${session.user_id}`;
  $("sign-out").hidden = false;
  connect();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  token = null;
  if (client) client.close();
  client = null;
  selectedWorkspace = null;
  documentCards.clear();
  nextPages.clear();
  $("document-list").replaceChildren();
  $("workspace-list").replaceChildren();
  showConnection(message ? "unauthorized" : "idle");
  showSignIn(message);
}

function showSignIn(message) {
  $("app").hidden = true;
  $("user").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").hidden = !message;
  $("sign-in-error").textContent = message ?? "";
}

// ---- Live state ------------------------------------------------------------------------------

function connect() {
  client = new StatusClient({ token, verifyToken, scopes: ["workspaces"] });
  client.addEventListener("state", (event) => {
    showConnection(event.detail.state, event.detail.transport);
    if (event.detail.state === "unauthorized") signOut("Your session has ended. Sign in again.");
  });
  client.addEventListener("transport", (event) => showConnection(client.state, event.detail.transport));
  client.addEventListener("sync", (event) => {
    const { scope, mode } = event.detail;
    $("connection").dataset.answer = mode;
    // A first page replaces what was loaded of the scope; a resume only adds to it.
    if (mode === "snapshot" && scope.startsWith("workspace:")) {
      const id = Number(scope.slice("workspace:".length));
      const key = client.more.get(scope);
      nextPages.set(id, key ? documentsPath(id, key) : null);
    }
  });
  // Rendered at every change, so that each state a document passes through is shown; only
  // the loaded pages are rendered, however large the workspace.
  client.addEventListener("change", render);
  client.connect();
}

function documentsPath(workspaceId, after) {
  return `/api/workspaces/${workspaceId}/documents?limit=${PAGE_SIZE}&after=${encodeURIComponent(after)}`;
}

function showConnection(state, transport) {
  const node = $("connection");
  node.dataset.state = state;
  node.dataset.transport = transport ?? "";
  const label = CONNECTION_LABELS[state] ?? state;
  const via = state === "live" && transport ? ` · ${TRANSPORT_LABELS[transport] ?? transport}` : "";
  node.querySelector(".connection-label").textContent = label + via;
}

function showWorkspace(id) {
  selectedWorkspace = id;
  const scopes = id === null ? ["workspaces"] : ["workspaces", `workspace:${id}`];
  if (client && String(client.scopes) !== String(scopes)) client.subscribe(scopes);
}

async function loadMore() {
  const workspaceId = selectedWorkspace;
  const path = nextPages.get(workspaceId);
  if (!path) return;
  const button = $("document-more");
  button.disabled = true;
  try {
    const page = await api(path);
    for (const document of page.documents) client.upsertDocument(document);
    nextPages.set(workspaceId, page.next);
    render();
  } catch (error) {
    notify(`Could not load more documents: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

function sortedWorkspaces() {
  return [...client.workspaces.values()].sort((a, b) => a.id - b.id);
}

function render() {
  if (!client) return;
  const workspaces = sortedWorkspaces();
  if (selectedWorkspace === null || !client.workspaces.has(selectedWorkspace)) {
    if (client.answeredAs.has("workspaces")) {
      showWorkspace(workspaces.length ? workspaces[workspaces.length - 1].id : null);
    }
  }
  renderWorkspaceList(workspaces);
  renderWorkspaceDetail(client.workspaces.get(selectedWorkspace));
}

function renderWorkspaceList(workspaces) {
  $("workspace-empty").hidden = workspaces.length > 0;
  const items = workspaces.map((workspace) => {
    const item = el(
      "li",
      {
        class: "workspace-item",
        role: "option",
        "data-workspace-id": String(workspace.id),
        "aria-selected": String(workspace.id === selectedWorkspace),
      },
      el("span", { class: "workspace-item-name", text: workspace.name }),
      badge(workspace.status),
    );
    item.addEventListener("click", () => {
      showWorkspace(workspace.id);
      render();
    });
    return item;
  });
  $("workspace-list").replaceChildren(...items);
}

function renderWorkspaceDetail(workspace) {
  $("workspace-detail").hidden = !workspace;
  $("no-workspace").hidden = Boolean(workspace);
  if (!workspace) return;
  $("workspace-detail").dataset.workspaceId = String(workspace.id);
  $("workspace-title").textContent = workspace.name;
  $("workspace-message").textContent =
    workspace.status_message ?? (workspace.status === "provisioning" ? "Preparing the workspace…" : "");
  $("workspace-badge").replaceChildren(badge(workspace.status));
  $("workspace-retry").hidden = workspace.status !== "error";
  $("workspace-cancel").hidden = workspace.status !== "provisioning";
  const ready = workspace.status === "ready";
  $("file-input").disabled = !ready;
  $("dropzone").classList.toggle("disabled", !ready);
  $("dropzone-hint").textContent = ready
    ? "PDF, Markdown, HTML or plain text"
    : "Uploads open once the workspace is ready";

  const documents = [...client.documents.values()]
    .filter((document) => document.workspace_id === workspace.id)
    .sort((a, b) => a.id - b.id);
  const answered = client.answeredAs.has(`workspace:${workspace.id}`);
  $("document-empty").hidden = documents.length > 0 || !answered;
  $("document-loading").hidden = answered;
  const cards = documents.map((document) => documentCard(document));
  $("document-list").replaceChildren(...cards);
  $("document-count").textContent = documents.length ? `${documents.length} shown` : "";
  $("document-more").hidden = !nextPages.get(workspace.id);
}

/** "about 5 s", "about 40 s", "about 2 min", "about 1 h 20 min": as precise as is honest. */
function aboutText(seconds) {
  if (seconds < 10) return `about ${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 60) return `about ${Math.round(seconds / 5) * 5} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min`;
  const rest = minutes % 60;
  return `about ${Math.floor(minutes / 60)} h${rest ? ` ${rest} min` : ""}`;
}

/** How long a finished step took: "0.4 s", "12 s", "3 min 5 s". */
function durationText(seconds) {
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const whole = Math.round(seconds);
  return `${Math.floor(whole / 60)} min ${whole % 60} s`;
}

function stepSeconds(step) {
  if (!step.started_at || !step.finished_at) return null;
  const seconds = (Date.parse(step.finished_at) - Date.parse(step.started_at)) / 1000;
  return Number.isFinite(seconds) && seconds >= 0 ? seconds : null;
}

function documentCard(document) {
  // Cards are kept and updated in place, so spinners and focus survive each update.
  let card = documentCards.get(document.id);
  if (card && card.dataset.version === String(document.version)) return card;
  if (!card) {
    card = el("li", { class: "document", "data-document-id": String(document.id) });
    documentCards.set(document.id, card);
  }
  card.dataset.status = document.processing_status;
  card.dataset.version = String(document.version);

  const steps = document.progress ?? [];
  const done = steps.filter((step) => step.completed).length;
  const meta = [];
  if (document.processing_status === "ready") meta.push(`${document.chunk_count} chunks`);
  else if (steps.length) meta.push(`${done} of ${steps.length} steps`);
  if (document.processing_status === "processing" && typeof document.eta_seconds === "number") {
    meta.push(`${aboutText(document.eta_seconds)} left`);
  }
  meta.push(`version ${document.version}`);

  const side = el("div", { class: "document-side" }, badge(document.processing_status));
  if (document.processing_status === "failed") {
    const retry = el("button", { class: "button small retry", type: "button", text: "Retry" });
    retry.addEventListener("click", () => retryDocument(document.id, retry));
    side.append(retry);
  }
  if (document.processing_status === "pending" || document.processing_status === "processing") {
    const cancel = el("button", { class: "button small cancel", type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => cancelDocument(document.id, cancel));
    side.append(cancel);
  }
  const head = el(
    "div",
    { class: "document-head" },
    el(
      "div",
      {},
      el("div", { class: "document-name", text: document.filename }),
      el("div", { class: "document-meta", text: meta.join(" · ") }),
    ),
    side,
  );
  const stepList = el("ol", { class: "steps", "aria-label": "Processing steps" });
  for (const step of steps) {
    const state = step.state ?? (step.completed ? "completed" : "pending");
    const item = el(
      "li",
      { class: "step", "data-state": state },
      el("span", { class: "step-icon", "aria-hidden": "true" }),
      el("span", { text: step.label }),
    );
    const seconds = stepSeconds(step);
    if (seconds !== null) item.append(el("span", { class: "step-duration", text: durationText(seconds) }));
    stepList.append(item);
  }
  const parts = [head, stepList];
  if (document.processing_status === "failed" && document.processing_error) {
    parts.push(el("p", { class: "document-error", role: "alert", text: document.processing_error }));
  }
  parts.push(historyPanel(document.id));
  card.replaceChildren(...parts);
  return card;
}

// Documents whose timeline is open: it stays open, and is read again, as the card updates.
const openHistories = new Set();

function historyPanel(documentId) {
  const list = el("ol", { class: "history", "aria-label": "Status history" });
  const panel = el(
    "details",
    { class: "document-history" },
    el("summary", { text: "History" }),
    list,
  );
  panel.open = openHistories.has(documentId);
  panel.addEventListener("toggle", () => {
    if (panel.open) {
      openHistories.add(documentId);
      loadHistory(documentId, list);
    } else {
      openHistories.delete(documentId);
    }
  });
  if (panel.open) loadHistory(documentId, list);
  return panel;
}

async function loadHistory(documentId, list) {
  const entries = [];
  let next = `/api/documents/${documentId}/history?limit=200`;
  try {
    while (next) {
      const page = await api(next);
      entries.push(...page.history);
      next = page.next;
    }
  } catch (error) {
    list.replaceChildren(el("li", { class: "history-entry", text: `Could not load: ${error.message}` }));
    return;
  }
  list.replaceChildren(
    ...entries.map((entry) =>
      el(
        "li",
        { class: "history-entry", "data-status": entry.to_status },
        el("time", { datetime: entry.at, text: new Date(entry.at).toLocaleTimeString() }),
        el("span", { class: "history-status", text: entry.to_status }),
        el("span", { class: "history-step", text: entry.step ?? "" }),
        el("span", {
          class: "history-duration",
          text: entry.step_seconds == null ? "" : `${entry.step_seconds.toFixed(2)} s`,
        }),
        el("span", { class: "history-error", text: entry.error ?? "" }),
      ),
    ),
  );
}

// ---- Actions ---------------------------------------------------------------------------------

async function createWorkspace(event) {
  event.preventDefault();
  const input = $("workspace-name");
  const name = input.value.trim();
  if (!name) return;
  try {
    const workspace = await api("/api/workspaces", { method: "POST", json: { name } });
    input.value = "";
    client.upsertWorkspace(workspace);
    showWorkspace(workspace.id);
    render();
  } catch (error) {
    notify(`Could not create the workspace: ${error.message}`);
  }
}

async function upload(files) {
  const workspaceId = selectedWorkspace;
  for (const file of files) {
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const document = await api(`/api/workspaces/${workspaceId}/documents`, {
        method: "POST",
        body: form,
      });
      client.upsertDocument(document);
    } catch (error) {
      notify(`${file.name}: ${error.message}`);
    }
  }
}

async function retryDocument(id, button) {
  button.disabled = true;
  try {
    client.upsertDocument(await api(`/api/documents/${id}/retry`, { method: "POST" }));
  } catch (error) {
    notify(`Could not retry: ${error.message}`);
    button.disabled = false;
  }
}

async function cancelDocument(id, button) {
  button.disabled = true;
  try {
    client.upsertDocument(await api(`/api/documents/${id}/cancel`, { method: "POST" }));
  } catch (error) {
    notify(`Could not cancel: ${error.message}`);
    button.disabled = false;
  }
}

async function cancelWorkspace() {
  try {
    client.upsertWorkspace(await api(`/api/workspaces/${selectedWorkspace}/cancel`, { method: "POST" }));
  } catch (error) {
    notify(`Could not cancel: ${error.message}`);
  }
}

async function retryWorkspace() {
  try {
    client.upsertWorkspace(await api(`/api/workspaces/${selectedWorkspace}/retry`, { method: "POST" }));
  } catch (error) {
    notify(`Could not retry: ${error.message}`);
  }
}

function wireUp() {
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("token-input").value);
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("workspace-form").addEventListener("submit", createWorkspace);
  $("workspace-retry").addEventListener("click", retryWorkspace);
  $("workspace-cancel").addEventListener("click", cancelWorkspace);
  $("document-more").addEventListener("click", loadMore);
  $("file-input").addEventListener("change", (event) => {
    const files = [...event.target.files];
    event.target.value = "";
    upload(files);
  });
  const dropzone = $("dropzone");
  dropzone.addEventListener("dragover", (event) => {
    event.preventDefault();
    dropzone.classList.add("dragging");
  });
  dropzone.addEventListener("dragleave", () => dropzone.classList.remove("dragging"));
  dropzone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    if (!$("file-input").disabled) upload([...event.dataTransfer.files]);
  });
}

wireUp();
const initial = tokenFromFragment() ?? sessionStorage.getItem(TOKEN_KEY);
if (initial) signIn(initial);
else showSignIn();

// The operator's console. The per-stage figures (queue depth, oldest waiting request, rates)
// are pushed live on the operator socket /admin/ws; the lists are polled every two seconds.
const TOKEN_KEY = "insighthub.operator-token";
const REFRESH_MS = 2000;
const RECONNECT_MS = [500, 1000, 2000, 5000];
const CLOSE_POLICY_VIOLATION = 1008;
const $ = (id) => document.getElementById(id);
let token = null;
let timer = null;
let socket = null;
let reconnects = 0;
let reconnectTimer = null;

async function call(path, body) {
  const init = { headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.method = "POST";
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(answer.error ?? response.statusText), { status: response.status });
  return answer;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  row.append(td);
  return td;
}

function fill(tableId, items, columns, extra) {
  const body = $(tableId).querySelector("tbody");
  body.replaceChildren();
  if (items.length === 0) {
    const row = body.insertRow();
    const td = cell(row, "none");
    td.className = "empty";
    td.colSpan = $(tableId).querySelectorAll("th").length;
    return;
  }
  for (const item of items) {
    const row = body.insertRow();
    row.dataset.key = item.letter_id ?? item.worker_id ?? item.document_id ?? item.stage ?? "";
    for (const column of columns) cell(row, String(column(item) ?? ""));
    if (extra) extra(row, item);
  }
}

function fillLog(listId, actions) {
  const list = $(listId);
  list.replaceChildren();
  for (const a of actions) {
    const li = document.createElement("li");
    li.textContent = `${a.at ?? ""} — ${a.actor}: ${a.action} ${a.target} (${a.outcome})`;
    list.append(li);
  }
}

function button(label, action) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "button ghost";
  b.textContent = label;
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await action();
    } catch (error) {
      $("refreshed").textContent = `not done: ${error.message}`;
    }
    await refresh();
  });
  return b;
}

const entity = (e) => Object.entries(e).map(([k, v]) => `${k.replace("_id", "")} ${v}`).join(", ");

const age = (seconds) => {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${(seconds / 3600).toFixed(1)} h`;
};

function showFigures(frame) {
  fill("stages", frame.stages, [
    (s) => s.stage, (s) => s.depth, (s) => age(s.oldest_age_seconds), (s) => s.unacknowledged,
    (s) => s.dead_letters, (s) => s.workers, (s) => s.processed, (s) => s.per_minute,
    (s) => `${Math.round(s.failure_rate * 100)}%`, (s) => s.window_seconds,
  ], (row, s) => {
    row.cells[1].className = "depth";
    row.cells[2].className = "oldest";
    if (s.depth === null) row.cells[1].title = "the broker could not be read";
    else if (s.depth > 0 && s.oldest_age_seconds === null) row.cells[2].title = "this transport does not tell the age";
  });
  $("live").textContent = `live, ${new Date(frame.at).toLocaleTimeString()}`;
}

function connectFigures() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const opened = new WebSocket(`${scheme}://${location.host}/admin/ws?token=${encodeURIComponent(token)}`);
  socket = opened;
  opened.addEventListener("open", () => { reconnects = 0; });
  opened.addEventListener("message", (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === "operator_figures") showFigures(frame);
  });
  opened.addEventListener("close", (event) => {
    if (socket !== opened || token === null) return;
    socket = null;
    if (event.code === CLOSE_POLICY_VIOLATION) {
      signOut("the token expired");
      return;
    }
    $("live").textContent = "reconnecting…";
    const delay = RECONNECT_MS[Math.min(reconnects, RECONNECT_MS.length - 1)];
    reconnects += 1;
    reconnectTimer = setTimeout(connectFigures, delay);
  });
}

async function refresh() {
  try {
    const [letters, workers, stuck, actions] = await Promise.all([
      call("/api/admin/dead-letters"),
      call("/api/admin/workers"),
      call("/api/admin/stuck"),
      call("/api/admin/actions"),
    ]);
    const all = Object.values(letters.queues).flat();
    fill("dead-letters", all, [
      (l) => l.queue, (l) => entity(l.entity) || (l.malformed ? "malformed" : ""), (l) => l.reason,
      (l) => l.attempts, (l) => l.first_failed_at, (l) => l.last_failed_at,
    ], (row, l) => {
      const td = cell(row, "");
      td.append(
        button("Requeue", () => call("/api/admin/dead-letters/requeue", { queue: l.queue, letter_id: l.letter_id })),
        button("Discard", () => call("/api/admin/dead-letters/discard", { queue: l.queue, letter_id: l.letter_id })),
      );
    });
    fill("workers", workers.workers, [
      (w) => w.stage, (w) => w.host, (w) => w.pid, (w) => w.current_documents.join(", "),
      (w) => w.processed, (w) => w.failed, (w) => w.seen_at,
    ]);
    fill("stuck", stuck.documents, [
      (d) => d.document_id, (d) => d.status, (d) => d.owner ?? "no lease",
      (d) => (d.seconds_left === null ? "" : d.seconds_left.toFixed(1)),
    ]);
    fillLog("recoveries", stuck.recoveries);
    fillLog("actions", actions.actions);
    $("refreshed").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (error.status === 401 || error.status === 403) {
      signOut(error.status === 403 ? "this token has no operator role" : "the token was refused");
    } else {
      $("refreshed").textContent = `not updated: ${error.message}`;
    }
  }
}

function signOut(why) {
  clearInterval(timer);
  clearTimeout(reconnectTimer);
  token = null;
  if (socket !== null) {
    const closing = socket;
    socket = null;
    closing.close();
  }
  sessionStorage.removeItem(TOKEN_KEY);
  $("console").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  const error = $("sign-in-error");
  error.hidden = !why;
  error.textContent = why ?? "";
}

async function signIn(candidate) {
  token = candidate.trim();
  sessionStorage.setItem(TOKEN_KEY, token);
  $("sign-in").hidden = true;
  $("console").hidden = false;
  $("sign-out").hidden = false;
  await refresh();
  if (token !== null) {
    timer = setInterval(refresh, REFRESH_MS);
    connectFigures();
  }
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token-input").value);
});
$("sign-out").addEventListener("click", () => signOut());

const initial = sessionStorage.getItem(TOKEN_KEY);
if (initial) signIn(initial);
else signOut();

// The operator's console: polls /api/admin every two seconds with an operator token.
const TOKEN_KEY = "insighthub.operator-token";
const REFRESH_MS = 2000;
const $ = (id) => document.getElementById(id);
let token = null;
let timer = null;

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

async function refresh() {
  try {
    const [stages, letters, workers, stuck, actions] = await Promise.all([
      call("/api/admin/stages"),
      call("/api/admin/dead-letters"),
      call("/api/admin/workers"),
      call("/api/admin/stuck"),
      call("/api/admin/actions"),
    ]);
    fill("stages", stages.stages, [
      (s) => s.stage, (s) => s.workers, (s) => s.processed, (s) => s.per_minute,
      (s) => `${Math.round(s.failure_rate * 100)}%`, (s) => s.window_seconds,
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
  token = null;
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
  if (token !== null) timer = setInterval(refresh, REFRESH_MS);
}

$("sign-in-form").addEventListener("submit", (event) => {
  event.preventDefault();
  signIn($("token-input").value);
});
$("sign-out").addEventListener("click", () => signOut());

const initial = sessionStorage.getItem(TOKEN_KEY);
if (initial) signIn(initial);
else signOut();

// The built example in headless Chromium against a real `insighthub serve` (SQLite, the memory
// transport, in-process workers): uploads are watched going pending → processing → ready, and a
// broken file shows its error; once on React 19 and once on React 18. Run
// `npm run build:example` first.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { preview } from "vite";

const PACKAGE = dirname(dirname(fileURLToPath(import.meta.url)));
const ROOT = dirname(dirname(PACKAGE));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
const VENV_PYTHON = join(ROOT, ".venv", "bin", "python");
const PYTHON = process.env.INSIGHTHUB_PYTHON ?? (existsSync(VENV_PYTHON) ? VENV_PYTHON : "python3");
// Settings a developer's shell may hold that must not reach the test server.
const SERVER_VARIABLES = [
  "DATABASE_URL", "TRANSPORT", "RABBITMQ_URL", "RABBITMQ_EXCHANGE", "NATS_URL", "REDIS_URL",
  "BROKER_NAMESPACE", "DELIVERY", "SECRET_KEY", "STORAGE_DIR", "MAX_UPLOAD_BYTES",
  "MAX_DELIVERIES", "REDELIVERY_SECONDS", "WORKER_LEASE_SECONDS", "LOG_FORMAT", "ALLOWED_ORIGINS",
];
const SETTLE_MS = 30_000;
const GOOD_TEXT = Buffer.from("Status tracking keeps every change versioned and pushed live. ".repeat(40));
const BROKEN_PDF = Buffer.from("%PDF-1.4\n% not a real PDF body\n%%EOF\n");

// Per file name, every (status, version, completed steps) its card has shown.
const RECORD_CARDS = () => {
  window.cardHistory = {};
  const record = () => {
    for (const card of document.querySelectorAll("#document-list .document")) {
      const name = card.dataset.filename;
      const bar = card.querySelector('[role="progressbar"]');
      const entry = [card.dataset.status, Number(card.dataset.version), Number(bar?.getAttribute("aria-valuenow") ?? -1)];
      const seen = (window.cardHistory[name] ??= []);
      const last = seen[seen.length - 1];
      if (!last || last[1] !== entry[1] || last[2] !== entry[2]) seen.push(entry);
    }
  };
  record();
  new MutationObserver(record).observe(document.getElementById("document-list"), {
    subtree: true,
    childList: true,
    attributes: true,
  });
};

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function waitReady(url, process, log) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (process.exitCode !== null) throw new Error(`insighthub serve exited:\n${await readFile(log, "utf8")}`);
    try {
      if ((await fetch(`${url}/readyz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`insighthub serve did not become ready:\n${await readFile(log, "utf8")}`);
}

let scratch;
let serverProcess;
let serverLog;
const previews = [];
let context;
let environ;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: install the Debian package 'chromium' (apt-get install chromium)`);
  }
  for (const build of ["dist", "dist-react18"]) {
    if (!existsSync(join(PACKAGE, "example", build, "index.html"))) {
      throw new Error(`the example is not built in example/${build}: run \`npm run build:example\` first`);
    }
  }
  scratch = await mkdtemp(join(tmpdir(), "insighthub-react-e2e-"));
  environ = { ...process.env };
  for (const name of SERVER_VARIABLES) delete environ[name];
  Object.assign(environ, {
    DATABASE_URL: `sqlite:///${join(scratch, "insighthub.db")}`,
    TRANSPORT: "memory",
    SECRET_KEY: randomBytes(32).toString("hex"),
    STORAGE_DIR: join(scratch, "files"),
  });
  const port = await freePort();
  serverLog = join(scratch, "server.log");
  const logFile = await open(serverLog, "w");
  serverProcess = spawn(
    PYTHON,
    ["-m", "entrypoints.cli", "serve", "--host", "127.0.0.1", "--port", String(port), "--step-delay", "0.4"],
    { cwd: ROOT, env: environ, stdio: ["ignore", logFile.fd, logFile.fd] },
  );
  await logFile.close();
  const serverUrl = `http://127.0.0.1:${port}`;
  await waitReady(serverUrl, serverProcess, serverLog);
  process.env.INSIGHTHUB_URL = serverUrl;

  context = await chromium.launchPersistentContext(join(scratch, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 900 },
  });
});

after(async () => {
  await context?.close();
  for (const server of previews) await server.close();
  if (serverProcess && serverProcess.exitCode === null) {
    const exited = new Promise((resolve) => serverProcess.once("exit", resolve));
    serverProcess.kill("SIGTERM");
    await exited;
  }
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The example built on React `react`, served by Vite with /api and /ws proxied to the server. */
async function servePage(react) {
  process.env.REACT = react;
  const server = await preview({
    configFile: join(PACKAGE, "example", "vite.config.ts"),
    logLevel: "warn",
    preview: { host: "127.0.0.1", port: await freePort(), strictPort: true },
  });
  delete process.env.REACT;
  previews.push(server);
  return server.resolvedUrls.local[0].replace(/\/$/, "");
}

for (const [react, user] of [["19", 1], ["18", 2]]) {
  test(`React ${react}: an upload goes pending → processing → ready, and a failure shows its error`, () =>
    watchUploads(react, user));
}

async function watchUploads(react, user) {
  const pageUrl = await servePage(react);
  const token = execFileSync(PYTHON, ["-m", "entrypoints.cli", "token", "--user", String(user)], { cwd: ROOT, env: environ })
    .toString()
    .trim();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(String(error)));
  await page.goto(`${pageUrl}/#token=${encodeURIComponent(token)}`);
  await page.locator('#connection[data-state="live"]').waitFor();
  assert.ok(!page.url().includes("token"), "the token must not stay in the address bar");
  assert.equal(await page.locator("#user").textContent(), `User ${user}`);
  assert.equal((await page.locator("[data-react-version]").getAttribute("data-react-version")).split(".")[0], react);

  // The workspace list: create one and watch it be provisioned.
  await page.fill("#workspace-name", "Research papers");
  await page.click("#workspace-form button[type=submit]");
  const card = page.locator("#workspace-list .workspace", { hasText: "Research papers" });
  await card.and(page.locator('[data-status="ready"]')).waitFor({ timeout: SETTLE_MS });
  assert.equal(await card.getByRole("status").textContent(), "✓Ready");

  // Its detail page: upload a good file and a broken one.
  await card.getByRole("link", { name: "Research papers" }).click();
  await page.locator('#workspace-badge [data-status="ready"]').waitFor();
  assert.equal(await page.locator("#workspace-title").textContent(), "Research papers");
  await page.evaluate(RECORD_CARDS);

  await page.setInputFiles("#file-input", { name: "field-notes.md", mimeType: "text/markdown", buffer: GOOD_TEXT });
  const good = page.locator('.document[data-filename="field-notes.md"]');
  await good.and(page.locator('[data-status="processing"]')).waitFor({ timeout: SETTLE_MS });
  assert.equal(await good.getByRole("progressbar").count(), 1);
  await mkdir(join(ROOT, "artifacts"), { recursive: true });
  await page.screenshot({ path: join(ROOT, "artifacts", `react${react}-example-processing.png`), fullPage: true });
  await good.and(page.locator('[data-status="ready"]')).waitFor({ timeout: SETTLE_MS });
  assert.equal(await good.getByRole("status").textContent(), "✓Ready");
  assert.equal(await good.getByRole("progressbar").count(), 0);
  assert.match(await good.locator(".document-detail").textContent(), /^[1-9]\d* chunks indexed$/);

  const history = await page.evaluate(() => window.cardHistory["field-notes.md"]);
  const statuses = history.map(([status]) => status);
  assert.equal(statuses[0], "pending", `first shown: ${JSON.stringify(history)}`);
  assert.ok(statuses.includes("processing"), JSON.stringify(history));
  assert.equal(statuses.at(-1), "ready");
  const versions = history.map(([, version]) => version);
  assert.deepEqual(versions, [...versions].sort((a, b) => a - b), "versions never go back");
  const steps = history.filter(([status]) => status === "processing").map(([, , done]) => done);
  assert.deepEqual(steps, [...steps].sort((a, b) => a - b), "completed steps only ever grow");
  assert.ok(new Set(steps).size >= 2, `steps should be seen ticking: ${JSON.stringify(history)}`);

  await page.setInputFiles("#file-input", { name: "scanned-contract.pdf", mimeType: "application/pdf", buffer: BROKEN_PDF });
  const broken = page.locator('.document[data-filename="scanned-contract.pdf"]');
  await broken.and(page.locator('[data-status="failed"]')).waitFor({ timeout: SETTLE_MS });
  assert.equal(await broken.getByRole("status").textContent(), "✕Failed");
  assert.match(await broken.locator(".document-error").textContent(), /^Parsing failed: /);
  assert.equal(await broken.getByRole("button", { name: "Retry" }).count(), 1);

  await page.setInputFiles("#file-input", { name: "program.exe", mimeType: "application/octet-stream", buffer: Buffer.from("MZ") });
  await page.locator(".notice", { hasText: "unsupported file type" }).waitFor();

  await page.screenshot({ path: join(ROOT, "artifacts", `react${react}-example.png`), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
}

// The built package as a consumer gets it: its exports, its declarations, and the status client
// of the Python-served page inside it. Run `npm run build` first.
import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const PACKAGE = dirname(dirname(fileURLToPath(import.meta.url)));
const manifest = JSON.parse(await readFile(join(PACKAGE, "package.json"), "utf8"));

async function files(folder, suffix) {
  const entries = await readdir(folder, { recursive: true });
  return entries.filter((name) => name.endsWith(suffix)).map((name) => join(folder, name));
}

test("every export of package.json exists in dist", async () => {
  for (const [subpath, target] of Object.entries(manifest.exports)) {
    const paths = typeof target === "string" ? [target] : Object.values(target);
    for (const path of paths) {
      await assert.doesNotReject(readFile(join(PACKAGE, path)), `${subpath} → ${path}`);
    }
  }
});

test("the root entry exports the seed's components and the hooks without Redux", async () => {
  const root = await import(join(PACKAGE, manifest.exports["."].import));
  for (const name of ["LoadingSpinner", "StatusBadge", "ProgressIndicator", "StatusProvider", "useStatus"]) {
    assert.equal(typeof root[name], "function", name);
  }
  assert.deepEqual(root.STATUSES, ["pending", "processing", "provisioning", "ready", "failed", "error"]);
});

test("the redux entry's reducer applies only newer versions", async () => {
  const redux = await import(join(PACKAGE, manifest.exports["./redux"].import));
  assert.equal(typeof redux.useStatusUpdates, "function");
  const message = (version, status) => ({ document_id: 1, user_id: 1, workspace_id: 2, status, error: null, version });
  let state = redux.statusReducer(undefined, redux.updateDocumentStatus(message(3, "ready")));
  state = redux.statusReducer(state, redux.updateDocumentStatus(message(2, "processing")));
  assert.equal(state.documents[1].processing_status, "ready");
  assert.equal(state.documents[1].version, 3);
});

test("the declarations stand alone: no import of the aliased status client", async () => {
  const declarations = await files(join(PACKAGE, "dist"), ".d.ts");
  assert.ok(declarations.length > 0);
  for (const path of declarations) {
    assert.doesNotMatch(await readFile(path, "utf8"), /@insighthub\/status-client/, path);
  }
});

test("the page's status client is bundled, not copied into the sources", async () => {
  const bundled = (await Promise.all((await files(join(PACKAGE, "dist"), ".js")).map((p) => readFile(p, "utf8")))).join("\n");
  assert.match(bundled, /entrypoints\/static\/status-client\.js/, "the bundle names the module it came from");
  const sources = [...(await files(join(PACKAGE, "src"), ".ts")), ...(await files(join(PACKAGE, "src"), ".tsx"))];
  for (const path of sources) {
    assert.doesNotMatch(await readFile(path, "utf8"), /class StatusClient/, path);
  }
});

import { fileURLToPath } from "node:url";
import { defineConfig, type ProxyOptions } from "vite";
import { react18Aliases, statusClientPath } from "../vite.config.ts";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// The example is served same-origin with the API: /api and /ws go through this server to a
// running `insighthub serve`. The Host header is passed on unchanged, so the server sees the
// page's own origin on the WebSocket and needs no ALLOWED_ORIGINS.
const target = process.env.INSIGHTHUB_URL ?? "http://127.0.0.1:8000";
const proxy: Record<string, ProxyOptions> = {
  "/api": { target },
  "/ws": { target, ws: true },
};

// REACT=18 builds the same example on React 18 (installed beside 19 as react-18, react-dom-18).
const react18 = process.env.REACT === "18";

export default defineConfig({
  root: here("."),
  resolve: {
    alias: [
      { find: "@insighthub/status-client", replacement: statusClientPath },
      { find: "@insighthub/status-react/redux", replacement: here("../src/redux/index.ts") },
      { find: "@insighthub/status-react/styles.css", replacement: here("../src/styles.css") },
      { find: "@insighthub/status-react", replacement: here("../src/index.ts") },
      ...(react18 ? react18Aliases : []),
    ],
  },
  build: { outDir: here(react18 ? "dist-react18" : "dist"), emptyOutDir: true },
  server: { proxy },
  preview: { proxy },
});

import { fileURLToPath } from "node:url";
import { defineConfig, type ProxyOptions } from "vite";
import { statusClientPath } from "../vite.config.ts";

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));

// The example is served same-origin with the API: /api and /ws go through this server to a
// running `insighthub serve`. The Host header is passed on unchanged, so the server sees the
// page's own origin on the WebSocket and needs no ALLOWED_ORIGINS.
const target = process.env.INSIGHTHUB_URL ?? "http://127.0.0.1:8000";
const proxy: Record<string, ProxyOptions> = {
  "/api": { target },
  "/ws": { target, ws: true },
};

export default defineConfig({
  root: here("."),
  resolve: {
    alias: {
      "@insighthub/status-client": statusClientPath,
      "@insighthub/status-react/redux": here("../src/redux/index.ts"),
      "@insighthub/status-react/styles.css": here("../src/styles.css"),
      "@insighthub/status-react": here("../src/index.ts"),
    },
  },
  build: { outDir: here("dist"), emptyOutDir: true },
  server: { proxy },
  preview: { proxy },
});

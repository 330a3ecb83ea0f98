import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The status client is the module the Python-served page loads; the package bundles that very
// file rather than a copy of it.
export const statusClientPath = fileURLToPath(
  new URL("../../entrypoints/static/status-client.js", import.meta.url),
);

const modules = fileURLToPath(new URL("node_modules/", import.meta.url));

/** Resolves react and react-dom (and their subpaths) to the React 18 copies installed beside 19. */
export const react18Aliases = [
  { find: /^react$/, replacement: `${modules}react-18/index.js` },
  { find: /^react\/(.*)$/, replacement: `${modules}react-18/$1` },
  { find: /^react-dom$/, replacement: `${modules}react-dom-18/index.js` },
  { find: /^react-dom\/(.*)$/, replacement: `${modules}react-dom-18/$1` },
];

const peers = ["react", "react-dom", "react/jsx-runtime", "@reduxjs/toolkit", "react-redux"];

export default defineConfig({
  resolve: { alias: { "@insighthub/status-client": statusClientPath } },
  build: {
    outDir: "dist",
    emptyOutDir: true, // tsc writes the declarations after
    sourcemap: true,
    lib: {
      cssFileName: "styles",
      entry: { index: "src/index.ts", redux: "src/redux/index.ts" },
      formats: ["es"],
    },
    rollupOptions: { external: (id) => peers.some((peer) => id === peer || id.startsWith(`${peer}/`)) },
  },
  test: {
    environment: "jsdom",
    globals: true,
    include: ["src/**/*.test.{ts,tsx}", "test/**/*.test.{ts,tsx}"],
    setupFiles: ["test/setup.ts"],
  },
});

/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the dApp on its own port and forwards the API to a node (the node sends no
// CORS headers, so the browser must see one origin). Set DCHAT_NODE_URL to use another node.
const node = process.env.DCHAT_NODE_URL ?? "http://127.0.0.1:8480";

export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      "/v1": { target: node, ws: true, changeOrigin: false },
      "/.well-known": { target: node },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 10_000,
  },
});

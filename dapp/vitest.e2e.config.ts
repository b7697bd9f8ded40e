import { defineConfig } from "vitest/config";

// The browser tests: real Chromium (playwright-core) against a real dchat-node serving dist/.
export default defineConfig({
  test: {
    include: ["e2e/**/*.e2e.ts"],
    environment: "node",
    testTimeout: 60_000,
    hookTimeout: 90_000,
    fileParallelism: false,
    reporters: ["default"],
  },
});

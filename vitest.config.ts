import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/e2e/**", "test/chaos/**"],
          // a unit test that prints anything fails: no product log line in a passing `npm test`
          setupFiles: ["test/support/consoleGuard.ts"],
          testTimeout: 30_000,
          hookTimeout: 30_000
        }
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 60_000
        }
      },
      {
        test: {
          name: "chaos",
          include: ["test/chaos/**/*.test.ts"],
          testTimeout: 600_000,
          hookTimeout: 60_000
        }
      }
    ]
  }
})

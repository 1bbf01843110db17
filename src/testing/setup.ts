import { afterEach, beforeEach, expect, vi } from "vitest";
import { logged, seen, TEST_KEY } from "./index";

beforeEach(() => {
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      logged.push(args.map(String).join(" "));
    });
  }
});

afterEach(() => {
  vi.restoreAllMocks();
  // The key must never reach a client or a log line, in any test of the suite.
  expect(seen.filter((s) => s.includes(TEST_KEY))).toEqual([]);
  expect(logged.filter((s) => s.includes(TEST_KEY))).toEqual([]);
  seen.length = 0;
  logged.length = 0;
});

import OpenAI, { type APIError } from "openai";
import { afterAll, beforeAll, expect } from "vitest";
import { type DevProxy, startWranglerDev } from "../../scripts/lib/wrangler-dev";
import type { ReportRow } from "../../src/usage/report";
import { type FakeOpenAI, startFakeOpenAI } from "../../tools/fake-openai/server";

/**
 * A test file's fake OpenAI upstream and a real `wrangler dev` in front of it, started before the file's tests
 * and stopped after them; afterwards no secret of `vars` named in `secrets` may appear in wrangler's output.
 *
 * @example
 * const env = proxyWithFake((upstream) => ({ OPENAI_BASE_URL: upstream, OPENAI_API_KEY: KEY }), [KEY]);
 * it("…", async () => fetch(`${env.proxy.url}/health`));
 */
export function proxyWithFake(
  vars: (upstreamUrl: string) => Record<string, string>,
  secrets: readonly string[],
): { fake: FakeOpenAI; proxy: DevProxy } {
  const state = {} as { fake: FakeOpenAI; proxy: DevProxy };
  beforeAll(async () => {
    state.fake = await startFakeOpenAI();
    state.proxy = await startWranglerDev(vars(state.fake.url));
  });
  afterAll(async () => {
    await state.proxy?.stop();
    await state.fake?.close();
    for (const secret of secrets) expect(state.proxy?.output() ?? "").not.toContain(secret);
  });
  return state;
}

/**
 * The usage report grouped by `groupBy`, once `done(rows)` holds (records reach the ledger through a queue,
 * shortly after their responses) or `timeoutMs` has passed: then the rows as they are, for the test to judge.
 *
 * @throws Error when the report itself is refused.
 */
export async function usageRows(
  proxy: DevProxy,
  adminToken: string,
  groupBy: string,
  done: (rows: ReportRow[]) => boolean,
  timeoutMs = 10_000,
): Promise<ReportRow[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${proxy.url}/admin/usage?group_by=${groupBy}`, {
      headers: { authorization: `Bearer ${adminToken}` },
    });
    if (!response.ok) throw new Error(`GET /admin/usage answered ${response.status}`);
    const rows = ((await response.json()) as { rows: ReportRow[] }).rows;
    if (done(rows) || Date.now() > deadline) return rows;
    await new Promise((next) => setTimeout(next, 50));
  }
}

/** The requests of all rows together. */
export const totalRequests = (rows: readonly ReportRow[]): number => rows.reduce((n, row) => n + row.requests, 0);

/** The SDK's error for a request the test expects to be refused. */
export async function refusal(promise: Promise<unknown>): Promise<APIError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(OpenAI.APIError);
  return error as APIError;
}

/** `client`'s row of the report by client, once it has `requests` requests in it (see `usageRows`). */
export async function clientRow(
  proxy: DevProxy,
  adminToken: string,
  client: string,
  requests = 1,
): Promise<ReportRow | undefined> {
  const rowOf = (rows: ReportRow[]) => rows.find((row) => row.key === client);
  return rowOf(await usageRows(proxy, adminToken, "client", (rows) => (rowOf(rows)?.requests ?? 0) >= requests));
}

import { afterAll, beforeAll, expect } from "vitest";
import { type DevProxy, startWranglerDev } from "../../scripts/lib/wrangler-dev";
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

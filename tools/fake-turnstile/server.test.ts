import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeTurnstile, TURNSTILE_TEST_KEYS as KEYS, startFakeTurnstile } from "./server";

let fake: FakeTurnstile;
beforeAll(async () => {
  fake = await startFakeTurnstile();
});
afterAll(() => fake.close());

const standin = (claims: object) => `standin.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;

async function verify(fields: Record<string, string>) {
  const response = await fetch(fake.siteverifyUrl, { method: "POST", body: new URLSearchParams(fields) });
  return (await response.json()) as Record<string, unknown>;
}

describe("the stand-in siteverify", () => {
  it("behaves like the documented test secrets", async () => {
    expect(await verify({ secret: KEYS.passSecret, response: KEYS.dummyToken })).toMatchObject({
      success: true,
      hostname: "example.com",
    });
    expect(await verify({ secret: KEYS.failSecret, response: KEYS.dummyToken })).toMatchObject({
      success: false,
      "error-codes": ["invalid-input-response"],
    });
    expect(await verify({ secret: KEYS.spentSecret, response: KEYS.dummyToken })).toMatchObject({
      "error-codes": ["timeout-or-duplicate"],
    });
    expect(await verify({ secret: "wrong", response: KEYS.dummyToken })).toMatchObject({
      "error-codes": ["invalid-input-secret"],
    });
  });

  it("passes a widget token once, naming its hostname and action; a retry with the same idempotency key gets the same answer", async () => {
    const token = standin({ hostname: "127.0.0.1", action: "chat" });
    const first = await verify({ secret: KEYS.passSecret, response: token, idempotency_key: "k1" });
    expect(first).toMatchObject({ success: true, hostname: "127.0.0.1", action: "chat" });
    expect(await verify({ secret: KEYS.passSecret, response: token, idempotency_key: "k1" })).toEqual(first);
    expect(await verify({ secret: KEYS.passSecret, response: token, idempotency_key: "k2" })).toMatchObject({
      success: false,
      "error-codes": ["timeout-or-duplicate"],
    });
  });

  it("serves the widget script", async () => {
    const response = await fetch(fake.scriptUrl);
    expect(response.headers.get("content-type")).toContain("javascript");
    expect(await response.text()).toContain("window.turnstile");
  });
});

import { describe, expect, it } from "vitest";
import { type AuthSettings, parseAuthSettings } from "./auth";

const WEB_KEY = "pk_web_0123456789abcdef";
const BACKEND_KEY = "pk_backend_0123456789abcdef";
const SECRET = "jwt-secret-for-tests-0123456789abcdef";

const keysOnly = settings({ PROXY_KEYS: `web:${WEB_KEY},backend:${BACKEND_KEY}` });
const tokensOnly = settings({ PROXY_JWT_SECRET: SECRET });
const both = settings({ PROXY_KEYS: `web:${WEB_KEY}`, PROXY_JWT_SECRET: SECRET });

function settings(env: { PROXY_KEYS?: string; PROXY_JWT_SECRET?: string }): AuthSettings {
  const { settings, errors } = parseAuthSettings(env);
  expect(errors).toEqual([]);
  return settings;
}

describe("parseAuthSettings", () => {
  it("is open mode when neither secret is set", () => {
    const { settings, errors } = parseAuthSettings({ PROXY_KEYS: " ", PROXY_JWT_SECRET: "" });
    expect(errors).toEqual([]);
    expect(settings).toMatchObject({ mode: "open", jwtSecret: null });
    expect(settings.keys.size).toBe(0);
  });

  it("reads keys by name, trimming spaces and ignoring empty entries", () => {
    const { settings, errors } = parseAuthSettings({ PROXY_KEYS: ` web : ${WEB_KEY} ,, backend:${BACKEND_KEY},` });
    expect(errors).toEqual([]);
    expect(settings.mode).toBe("keys");
    expect([...settings.keys.keys()]).toEqual(["web", "backend"]);
  });

  it("keeps a colon inside a key", () => {
    const { settings, errors } = parseAuthSettings({ PROXY_KEYS: "web:pk:with:colons:0123456789" });
    expect(errors).toEqual([]);
    expect(settings.keys.has("web")).toBe(true);
  });

  it("hashes each key to its SHA-256", async () => {
    const digest = await keysOnly.keys.get("web")?.();
    const expected = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(WEB_KEY));
    expect(new Uint8Array(digest ?? new ArrayBuffer(0))).toEqual(new Uint8Array(expected));
  });

  it("reads the JWT secret and picks the mode from what is set", () => {
    expect(tokensOnly.mode).toBe("tokens");
    expect(new TextDecoder().decode(tokensOnly.jwtSecret ?? undefined)).toBe(SECRET);
    expect(both.mode).toBe("keys+tokens");
  });

  it("reports every problem at once, by setting name, without echoing a key or the secret", () => {
    const secrets = ["pk_bare_key_without_a_name", "short", "pk_has space_0123456789", "pk_dup_0123456789abcdef"];
    const { settings, errors } = parseAuthSettings({
      PROXY_KEYS: [
        "ok:pk_ok_0123456789abcdef",
        secrets[0],
        `web:${secrets[1]}`,
        `bad name:pk_good_key_0123456789`,
        `spaced:${secrets[2]}`,
        `jwtish:${"a".repeat(8)}.${"b".repeat(8)}.${"c".repeat(8)}`,
        `one:${secrets[3]}`,
        `two:${secrets[3]}`,
        "ok:pk_another_0123456789abcdef",
      ].join(","),
      PROXY_JWT_SECRET: "too-short-secret",
    });
    expect(errors).toEqual([
      "PROXY_KEYS entry 2 is not name:key",
      "PROXY_KEYS entry 3: its key must be at least 16 characters long",
      "PROXY_KEYS entry 4: its name must be letters, digits, _ . or - only",
      "PROXY_KEYS entry 5: its key must be visible ASCII characters only (no spaces)",
      "PROXY_KEYS entry 6: its key looks like a JWT (three parts separated by dots)",
      'PROXY_KEYS gives "one" and "two" the same key',
      'PROXY_KEYS names "ok" more than once',
      "PROXY_JWT_SECRET must be at least 32 characters long",
    ]);
    for (const secret of [...secrets, "too-short-secret"]) expect(errors.join("\n")).not.toContain(secret);
    // A bad setting never opens the proxy: the mode follows what is set, and no token can verify.
    expect(settings.mode).toBe("keys+tokens");
    expect(settings.jwtSecret).toBeNull();
  });

  it("reports a PROXY_KEYS that lists nothing", () => {
    const { settings, errors } = parseAuthSettings({ PROXY_KEYS: " , ," });
    expect(errors).toEqual(["PROXY_KEYS is set but lists no keys"]);
    expect(settings.mode).toBe("keys");
  });
});

import { Hono } from "hono";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { AuthSettings, Config } from "../../config";
import { parseAuthSettings } from "../../config/auth";
import type { AppEnv } from "../../env";
import { ProxyError, renderError } from "../../errors";
import { authenticate, clientAuth } from ".";
import { mintToken } from "./mint";

const WEB_KEY = "pk_web_0123456789abcdef";
const BACKEND_KEY = "pk_backend_0123456789abcdef";
const SECRET = "jwt-secret-for-tests-0123456789abcdef";
const APP = "https://app.example.com";

const keysOnly = settings({ PROXY_KEYS: `web:${WEB_KEY},backend:${BACKEND_KEY}` });
const tokensOnly = settings({ PROXY_JWT_SECRET: SECRET });
const both = settings({ PROXY_KEYS: `web:${WEB_KEY}`, PROXY_JWT_SECRET: SECRET });

function settings(env: { PROXY_KEYS?: string; PROXY_JWT_SECRET?: string }): AuthSettings {
  const { settings, errors } = parseAuthSettings(env);
  expect(errors).toEqual([]);
  return settings;
}

function request(headers: Record<string, string> = {}): Request {
  return new Request("http://proxy.test/v1/chat/completions", { method: "POST", headers });
}

function bearer(credential: string, headers: Record<string, string> = {}): Request {
  return request({ authorization: `Bearer ${credential}`, ...headers });
}

const now = () => Math.floor(Date.now() / 1000);

/** A token signed with `secret` (HS256), with exactly `claims` as its payload. */
function sign(claims: Record<string, unknown>, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode(secret));
}

const valid = () => ({ sub: "alice", exp: now() + 600 });

function base64url(data: string | ArrayBuffer): string {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : new Uint8Array(data);
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** A token built by hand with any header, signed with HMAC-SHA256 over the secret whatever `alg` says. */
async function forge(header: Record<string, unknown>, claims: Record<string, unknown>, secret = SECRET) {
  const input = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signature = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(input));
  return `${input}.${base64url(signature)}`;
}

/** What `authenticate` threw, which must be a ProxyError. */
async function refusal(promise: Promise<unknown>): Promise<ProxyError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ProxyError);
  return error as ProxyError;
}

async function expectUnauthorized(promise: Promise<unknown>, message = "Incorrect API key provided.") {
  const error = await refusal(promise);
  expect(error).toMatchObject({ status: 401, type: "invalid_request_error", code: "invalid_api_key", message });
  return error;
}

async function expectOriginRefused(promise: Promise<unknown>) {
  const error = await refusal(promise);
  expect(error).toMatchObject({ status: 403, type: "permission_error", code: "origin_not_allowed" });
  return error;
}

describe("authenticate in open mode", () => {
  const open = settings({});

  it("identifies the client by CF-Connecting-IP", async () => {
    expect(await authenticate(request({ "cf-connecting-ip": "203.0.113.9" }), open)).toEqual({
      id: "ip:203.0.113.9",
      kind: "ip",
      name: "203.0.113.9",
    });
  });

  it("accepts IPv6 addresses", async () => {
    const client = await authenticate(request({ "cf-connecting-ip": "2001:db8::1" }), open);
    expect(client.id).toBe("ip:2001:db8::1");
  });

  it('falls back to "unknown" without CF-Connecting-IP or with something that is not an address', async () => {
    expect((await authenticate(request(), open)).id).toBe("ip:unknown");
    expect((await authenticate(request({ "cf-connecting-ip": "alice<script>" }), open)).id).toBe("ip:unknown");
  });

  it("ignores any Authorization header", async () => {
    const client = await authenticate(bearer("whatever", { "cf-connecting-ip": "203.0.113.9" }), open);
    expect(client.kind).toBe("ip");
  });
});

describe("authenticate with keys", () => {
  it("accepts a right key as a client named after the key", async () => {
    expect(await authenticate(bearer(WEB_KEY), keysOnly)).toEqual({ id: "key:web", kind: "key", name: "web" });
    expect(await authenticate(bearer(BACKEND_KEY), keysOnly)).toMatchObject({ id: "key:backend", name: "backend" });
  });

  it("accepts the scheme in any case", async () => {
    expect(await authenticate(request({ authorization: `bearer ${WEB_KEY}` }), keysOnly)).toMatchObject({
      name: "web",
    });
  });

  it.each([
    ["a wrong key of the same length", `${WEB_KEY.slice(0, -1)}X`],
    ["a prefix of a key", WEB_KEY.slice(0, 10)],
    ["a key with extra characters", `${WEB_KEY}0`],
    ["a very long key", "x".repeat(5000)],
    ["the key's name", "web"],
    ["two credentials", `${WEB_KEY} ${BACKEND_KEY}`],
    ["a credential with a control character", `${WEB_KEY}\u0001`],
  ])("refuses %s with 401", async (_, credential) => {
    await expectUnauthorized(authenticate(bearer(credential), keysOnly));
  });

  it.each([
    ["no Authorization header", {}],
    ["a Basic credential", { authorization: `Basic ${btoa(`web:${WEB_KEY}`)}` }],
    ["an empty bearer", { authorization: "Bearer " }],
    ["a bearer of spaces", { authorization: "Bearer    " }],
    ["a scheme run into the key", { authorization: `Bearer${WEB_KEY}` }],
    ["a bare key", { authorization: WEB_KEY }],
  ])("refuses %s with 401 asking for a bearer credential", async (_, headers: Record<string, string>) => {
    const error = await expectUnauthorized(
      authenticate(request(headers), keysOnly),
      "Missing bearer credential: send Authorization: Bearer <key>",
    );
    expect(error.headers["www-authenticate"]).toBe("Bearer");
  });

  it("refuses a forged Origin header without a credential", async () => {
    await expectUnauthorized(
      authenticate(request({ origin: APP, "cf-connecting-ip": "203.0.113.9" }), keysOnly),
      "Missing bearer credential: send Authorization: Bearer <key>",
    );
  });

  it("compares a JWT-shaped credential against the keys when no JWT secret is set", async () => {
    await expectUnauthorized(authenticate(bearer(await sign(valid())), keysOnly));
  });

  it("still accepts keys when tokens are accepted too", async () => {
    expect(await authenticate(bearer(WEB_KEY), both)).toMatchObject({ id: "key:web" });
  });

  it("accepts no key at all in tokens-only mode", async () => {
    await expectUnauthorized(authenticate(bearer(WEB_KEY), tokensOnly));
  });
});

describe("authenticate with tokens", () => {
  it("accepts a valid token as a client named after its subject, with its claims", async () => {
    const claims = { ...valid(), models: ["gpt-4o-mini", "gpt-4.1*"], rpm: 30, tpd: 200_000, usd: 0.25 };
    const token = await sign(claims);
    expect(await authenticate(bearer(token), tokensOnly)).toEqual({
      id: "sub:alice",
      kind: "token",
      name: "alice",
      models: ["gpt-4o-mini", "gpt-4.1*"],
      rpm: 30,
      tpd: 200_000,
      usd: 0.25,
      exp: claims.exp,
    });
  });

  it("accepts a token alongside keys", async () => {
    const claims = valid();
    expect(await authenticate(bearer(await sign(claims)), both)).toEqual({
      id: "sub:alice",
      kind: "token",
      name: "alice",
      exp: claims.exp,
    });
  });

  it("keeps a key name and a subject of the same name apart", async () => {
    const token = await authenticate(bearer(await sign({ ...valid(), sub: "web" })), both);
    const key = await authenticate(bearer(WEB_KEY), both);
    expect(token.id).not.toBe(key.id);
  });

  it("accepts a token minted by `npm run token`'s library", async () => {
    const token = await mintToken({ secret: SECRET, sub: "bob", ttlSeconds: 60, models: ["gpt-4o-mini"], rpm: 5 });
    expect(await authenticate(bearer(token), tokensOnly)).toEqual({
      id: "sub:bob",
      kind: "token",
      name: "bob",
      models: ["gpt-4o-mini"],
      rpm: 5,
      exp: expect.any(Number),
    });
  });

  it("refuses an expired token with 401 saying so", async () => {
    const error = await expectUnauthorized(
      authenticate(bearer(await sign({ sub: "alice", exp: now() - 60 })), tokensOnly),
      "Token has expired",
    );
    expect(error.headers["www-authenticate"]).toBe('Bearer error="invalid_token"');
    const minted = await mintToken({ secret: SECRET, sub: "alice", ttlSeconds: -60 });
    await expectUnauthorized(authenticate(bearer(minted), tokensOnly), "Token has expired");
  });

  it("allows a few seconds of clock skew on exp", async () => {
    const client = await authenticate(bearer(await sign({ sub: "alice", exp: now() - 2 })), tokensOnly);
    expect(client.name).toBe("alice");
  });

  it("refuses a token that is not valid yet", async () => {
    const token = await sign({ ...valid(), nbf: now() + 600 });
    await expectUnauthorized(authenticate(bearer(token), tokensOnly), "Token is not valid yet");
  });

  it("refuses a token signed with another secret", async () => {
    const token = await sign(valid(), "another-secret-of-enough-length-0123456789");
    await expectUnauthorized(authenticate(bearer(token), tokensOnly));
  });

  it("refuses a token whose payload was changed after signing", async () => {
    const [header, , signature] = (await sign(valid())).split(".");
    const payload = base64url(JSON.stringify({ ...valid(), sub: "admin" }));
    await expectUnauthorized(authenticate(bearer(`${header}.${payload}.${signature}`), tokensOnly));
  });

  it('refuses an unsigned token (alg "none")', async () => {
    const unsigned = `${base64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url(JSON.stringify(valid()))}.`;
    await expectUnauthorized(authenticate(bearer(unsigned), tokensOnly));
  });

  it.each(["RS256", "ES256", "PS256", "HS512", "HS384"])(
    "refuses a %s token signed with the secret as an HMAC key",
    async (alg) => {
      await expectUnauthorized(authenticate(bearer(await forge({ alg, typ: "JWT" }, valid())), tokensOnly));
    },
  );

  it("accepts the hand-made HS256 token the forgeries are made like (so they fail for their alg alone)", async () => {
    const client = await authenticate(bearer(await forge({ alg: "HS256", typ: "JWT" }, valid())), tokensOnly);
    expect(client.name).toBe("alice");
  });

  it.each([
    ["missing exp", { sub: "alice" }, 'Invalid token: the "exp" claim is missing'],
    ["missing sub", { exp: now() + 600 }, 'Invalid token: the "sub" claim is missing'],
    ["a string exp", { sub: "alice", exp: "tomorrow" }, 'Invalid token: the "exp" claim is invalid'],
    ["an empty sub", { sub: "", exp: now() + 600 }, 'Invalid token: the "sub" claim must be a non-empty string'],
    ["a numeric sub", { sub: 42, exp: now() + 600 }, 'Invalid token: the "sub" claim must be a non-empty string'],
    [
      "models as a string",
      { ...valid(), models: "gpt-4o-mini" },
      'Invalid token: the "models" claim must be an array of model names or patterns',
    ],
    [
      "models with a number",
      { ...valid(), models: ["gpt-4o-mini", 4] },
      'Invalid token: the "models" claim must be an array of model names or patterns',
    ],
    ["a string rpm", { ...valid(), rpm: "30" }, 'Invalid token: the "rpm" claim must be a positive integer'],
    ["a zero rpm", { ...valid(), rpm: 0 }, 'Invalid token: the "rpm" claim must be a positive integer'],
    ["a fractional rpm", { ...valid(), rpm: 1.5 }, 'Invalid token: the "rpm" claim must be a positive integer'],
    ["a negative tpd", { ...valid(), tpd: -1 }, 'Invalid token: the "tpd" claim must be a positive integer'],
    [
      "a string usd",
      { ...valid(), usd: "1" },
      'Invalid token: the "usd" claim must be a positive number of US dollars',
    ],
    ["a zero usd", { ...valid(), usd: 0 }, 'Invalid token: the "usd" claim must be a positive number of US dollars'],
    [
      "a numeric origin",
      { ...valid(), origin: 1 },
      'Invalid token: the "origin" claim must be an origin such as https://app.example.com',
    ],
    [
      "an origin with a path",
      { ...valid(), origin: `${APP}/` },
      'Invalid token: the "origin" claim must be an origin such as https://app.example.com',
    ],
  ])("refuses a token with %s with 401 naming the claim", async (_, claims, message) => {
    await expectUnauthorized(authenticate(bearer(await sign(claims)), tokensOnly), message);
  });

  it.each([
    ["a JWS with a JSON array payload", async () => forge({ alg: "HS256" }, [] as unknown as Record<string, unknown>)],
    ["three parts of garbage", async () => "aaaa.bbbb.cccc"],
    ["a token with an unknown critical header", async () => forge({ alg: "HS256", crit: ["x"], x: 1 }, valid())],
  ])("refuses %s with the generic 401", async (_, make) => {
    await expectUnauthorized(authenticate(bearer(await make()), tokensOnly));
  });

  it("refuses every token when the JWT secret is invalid", async () => {
    const { settings: broken } = parseAuthSettings({ PROXY_JWT_SECRET: SECRET.slice(0, 10) });
    await expectUnauthorized(authenticate(bearer(await sign(valid())), broken));
  });
});

describe("authenticate with a token's origin claim", () => {
  const token = () => sign({ ...valid(), origin: APP });

  it("accepts the token from its origin, with the claim on the client", async () => {
    expect(await authenticate(bearer(await token(), { origin: APP }), tokensOnly)).toMatchObject({
      id: "sub:alice",
      origin: APP,
    });
  });

  it.each([
    ["another origin", "https://evil.example.com"],
    ["a look-alike origin", `${APP}.evil.com`],
    ["another scheme", "http://app.example.com"],
    ["the null origin", "null"],
    ["the origin with a trailing slash", `${APP}/`],
  ])("refuses it from %s with 403", async (_, origin) => {
    const error = await expectOriginRefused(authenticate(bearer(await token(), { origin }), tokensOnly));
    expect(error.message).toContain(APP);
  });

  it("refuses it without an Origin header with 403", async () => {
    const error = await expectOriginRefused(authenticate(bearer(await token()), tokensOnly));
    expect(error.message).toBe(
      "This token may only be used from origin https://app.example.com, not from a request without an Origin header",
    );
  });

  it("checks the signature before the origin", async () => {
    const forged = await sign({ ...valid(), origin: APP }, "another-secret-of-enough-length-0123456789");
    await expectUnauthorized(authenticate(bearer(forged, { origin: "https://evil.example.com" }), tokensOnly));
  });
});

describe("refusals", () => {
  it("never contain the credential, in the message, the headers or the rendered body", async () => {
    const tokens = [
      await sign(valid(), "another-secret-of-enough-length-0123456789"),
      await sign({ sub: "alice", exp: now() - 60 }),
      await sign({ ...valid(), rpm: "many" }),
      await sign({ sub: "alice" }),
      await sign({ ...valid(), origin: APP }),
      await forge({ alg: "RS256" }, valid()),
    ];
    const keys = [`${WEB_KEY}X`, WEB_KEY.slice(0, 12), "pk_unknown_key_0123456789", `${WEB_KEY} ${BACKEND_KEY}`];
    const attempts = [
      ...tokens.map((credential) => ({ credential, auth: both })),
      ...keys.map((credential) => ({ credential, auth: keysOnly })),
    ];
    for (const { credential, auth } of attempts) {
      const error = await refusal(authenticate(bearer(credential, { origin: "https://evil.example.com" }), auth));
      const rendered = renderError(error, "/v1/chat/completions");
      const shown = [
        error.message,
        JSON.stringify(error.headers),
        JSON.stringify([...rendered.headers]),
        await rendered.text(),
      ];
      for (const text of shown) {
        expect(text).not.toContain(credential);
        // Not even a recognisable piece of it: every part of a token, and a key's distinctive middle.
        for (const part of credential.split(/[.\s]/).filter((p) => p.length >= 8)) expect(text).not.toContain(part);
        expect(text).not.toContain(SECRET);
      }
    }
  });
});

describe("clientAuth", () => {
  /** A tiny app: the configuration step reduced to `auth`, then `clientAuth()`, then a route that shows the client. */
  function app(auth: AuthSettings) {
    const app = new Hono<AppEnv>();
    app.use(async (c, next) => {
      c.set("config", { auth } as unknown as Config);
      await next();
    });
    app.post("/v1/*", clientAuth(), (c) => c.json(c.get("client")));
    app.onError((error, c) => (error instanceof ProxyError ? renderError(error, c.req.path) : c.text("bug", 500)));
    return app;
  }

  it("sets the client for the steps after it", async () => {
    const response = await app(keysOnly).fetch(bearer(WEB_KEY));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ id: "key:web", kind: "key", name: "web" });
  });

  it("lets a refused request go no further, with an OpenAI-shaped 401", async () => {
    const response = await app(keysOnly).fetch(bearer("pk_wrong_key_0123456789"));
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(await response.json()).toEqual({
      error: {
        message: "Incorrect API key provided.",
        type: "invalid_request_error",
        param: null,
        code: "invalid_api_key",
      },
    });
  });
});

/**
 * An offline stand-in for Cloudflare Turnstile, for the demo and the tests: the widget script a page loads and
 * the siteverify API the proxy calls, on 127.0.0.1 only, with no network.
 *
 *   GET  /turnstile/v0/api.js        the stand-in widget (widget.js): explicit render, reset, remove, getResponse
 *   POST /turnstile/v0/siteverify    form or JSON {secret, response, remoteip, idempotency_key}
 *
 * Siteverify behaves like Turnstile's documented test secret keys (checked 2026-11-30):
 *   1x0000000000000000000000000000000AA  passes: the dummy token XXXX.DUMMY.TOKEN.XXXX always (hostname
 *                                        example.com, as the real test keys answer), a stand-in widget token
 *                                        once (hostname and action as the widget saw them), as real tokens are
 *   2x0000000000000000000000000000000AA  always fails: invalid-input-response
 *   3x0000000000000000000000000000000AA  always says the token was already spent: timeout-or-duplicate
 * Any other secret gets invalid-input-secret. A repeated idempotency_key gets the first answer again, as the real
 * API's retries do. `x-fake-delay-ms` on siteverify delays the answer; `fault` in the token (`standin.fault-500`)
 * answers 500.
 */
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export const TURNSTILE_TEST_KEYS = {
  /** Site key whose widget always passes (visible). */
  passSiteKey: "1x00000000000000000000AA",
  /** Site key whose widget always fails. */
  failSiteKey: "2x00000000000000000000AB",
  passSecret: "1x0000000000000000000000000000000AA",
  failSecret: "2x0000000000000000000000000000000AA",
  spentSecret: "3x0000000000000000000000000000000AA",
  /** What the real test site keys' widgets issue. */
  dummyToken: "XXXX.DUMMY.TOKEN.XXXX",
} as const;

export type SiteverifyCall = { secret: string; response: string; remoteip?: string; idempotency_key?: string };

export interface FakeTurnstile {
  /** e.g. http://127.0.0.1:PORT */
  url: string;
  /** The widget script's URL, for the page. */
  scriptUrl: string;
  /** Siteverify's URL, for TURNSTILE_SITEVERIFY_URL. */
  siteverifyUrl: string;
  /** Every siteverify call, in order. */
  calls: SiteverifyCall[];
  close(): Promise<void>;
}

const WIDGET = readFileSync(new URL("./widget.js", import.meta.url), "utf8");

type Verdict = Record<string, unknown> & { success: boolean };

export async function startFakeTurnstile(options: { port?: number } = {}): Promise<FakeTurnstile> {
  const calls: SiteverifyCall[] = [];
  const spent = new Set<string>();
  const answered = new Map<string, Verdict>();
  const sockets = new Set<Socket>();

  function verdict(call: SiteverifyCall): Verdict {
    const failure = (code: string): Verdict => ({ success: false, "error-codes": [code], messages: [] });
    const keys = TURNSTILE_TEST_KEYS;
    if (call.secret === keys.failSecret) return failure("invalid-input-response");
    if (call.secret === keys.spentSecret) return failure("timeout-or-duplicate");
    if (call.secret !== keys.passSecret) return failure("invalid-input-secret");
    const passed = (hostname: string, action: string): Verdict => ({
      success: true,
      challenge_ts: new Date().toISOString(),
      hostname,
      "error-codes": [],
      action,
      cdata: "",
      metadata: { interactive: false },
    });
    if (call.response === keys.dummyToken) return passed("example.com", "");
    const claims = standinClaims(call.response);
    if (claims === null) return failure("invalid-input-response");
    if (spent.has(call.response)) return failure("timeout-or-duplicate");
    spent.add(call.response);
    return passed(claims.hostname, claims.action);
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (req.method === "GET" && url.pathname === "/turnstile/v0/api.js") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
      res.end(WIDGET);
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/turnstile/v0/siteverify") {
      req.resume();
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const fields: Record<string, string> = req.headers["content-type"]?.includes("json")
      ? (JSON.parse(text || "{}") as Record<string, string>)
      : Object.fromEntries(new URLSearchParams(text));
    const call: SiteverifyCall = {
      secret: fields.secret ?? "",
      response: fields.response ?? "",
      ...(fields.remoteip === undefined ? {} : { remoteip: fields.remoteip }),
      ...(fields.idempotency_key === undefined ? {} : { idempotency_key: fields.idempotency_key }),
    };
    calls.push(call);
    const delay = Number(req.headers["x-fake-delay-ms"] ?? 0);
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    if (call.response.includes("fault-500")) {
      res.writeHead(500, { "content-type": "text/plain" }).end("internal error");
      return;
    }
    const key = call.idempotency_key === undefined ? undefined : `${call.idempotency_key}\n${call.response}`;
    const result = (key === undefined ? undefined : answered.get(key)) ?? verdict(call);
    if (key !== undefined) answered.set(key, result);
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(result));
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400, { "content-type": "text/plain" });
      res.end("bad request");
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    scriptUrl: `${url}/turnstile/v0/api.js`,
    siteverifyUrl: `${url}/turnstile/v0/siteverify`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The hostname and action a stand-in widget token names; null for anything else. */
function standinClaims(token: string): { hostname: string; action: string } | null {
  if (!token.startsWith("standin.")) return null;
  try {
    const claims = JSON.parse(Buffer.from(token.slice("standin.".length), "base64url").toString("utf8")) as unknown;
    if (typeof claims !== "object" || claims === null) return null;
    const { hostname, action } = claims as Record<string, unknown>;
    return typeof hostname === "string" ? { hostname, action: typeof action === "string" ? action : "" } : null;
  } catch {
    return null;
  }
}

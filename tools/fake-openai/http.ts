/** Per-request context and the small HTTP helpers every route uses. */
import { createHash, randomBytes } from "node:crypto";
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { setTimeout as delay } from "node:timers/promises";
import type { RecordedRequest } from "./server.js";

export const FAULTS = [
  "fault-429",
  "fault-500",
  "fault-503",
  "fault-400",
  "fault-slow-first-byte",
  "fault-stall",
  "fault-reset",
  "fault-redirect",
  "fault-401",
  "fault-region",
  "fault-early-hints",
] as const;
export type Fault = (typeof FAULTS)[number];

export interface Timing {
  ttftMs: number;
  chunkGapMs: number;
  chunks: number | undefined;
  holdEndMs: number;
}

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  rec: RecordedRequest;
  url: URL;
  timing: Timing;
  /** Aborted when the response closes (client hang-up, reset, server shutdown): cancels every timer. */
  signal: AbortSignal;
  fault?: Fault | undefined;
  /** Set when the fake itself kills the socket (fault-reset), so it is not counted as a client hang-up. */
  serverHangup: boolean;
  /** Refuses `stream_options` and never sends a usage chunk, as an upstream that does not know the field. */
  strict: boolean;
}

export type Json = Record<string, unknown>;

export const isRecord = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** The key of an `Authorization: Bearer <key>` header (nothing may follow it); undefined without one. */
export const bearerKey = (req: IncomingMessage): string | undefined =>
  /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "")?.[1];

/** `FAKE_OPENAI_DETERMINISTIC=1`: fixed ids and timestamps, so two replies to the same request are byte-identical (the benchmark compares streams). */
const DETERMINISTIC = process.env.FAKE_OPENAI_DETERMINISTIC === "1";

export const newId = (prefix: string, bytes = 12): string =>
  `${prefix}${DETERMINISTIC ? "0".repeat(bytes * 2) : randomBytes(bytes).toString("hex")}`;

export const nowSeconds = (): number => (DETERMINISTIC ? 1_700_000_000 : Math.floor(Date.now() / 1000));

export const countWords = (text: string): number => text.split(/\s+/).filter(Boolean).length;

/** Deterministic pseudo-random bytes derived from a string. */
export const digest = (text: string): Buffer => createHash("sha256").update(text).digest();

function commonHeaders(ctx: Ctx): OutgoingHttpHeaders {
  return {
    "x-request-id": ctx.rec.id,
    "openai-version": "2020-10-01",
    "openai-organization": "org-fake",
    "openai-processing-ms": String(Date.now() - ctx.rec.receivedAt),
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-tokens": "29999990",
    "x-ratelimit-reset-tokens": "0s",
    "set-cookie": "__cf_bm=fake; path=/; domain=.api.openai.com",
  };
}

export function writeHead(ctx: Ctx, status: number, headers: OutgoingHttpHeaders = {}): void {
  ctx.res.writeHead(status, { ...commonHeaders(ctx), ...headers });
}

export function sendJson(ctx: Ctx, status: number, body: unknown, headers: OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  writeHead(ctx, status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  ctx.res.end(text);
}

export function sendError(
  ctx: Ctx,
  status: number,
  message: string,
  opts: { type?: string; param?: string | null; code?: string | null; headers?: OutgoingHttpHeaders } = {},
): void {
  const error = {
    message,
    type: opts.type ?? "invalid_request_error",
    param: opts.param ?? null,
    code: opts.code ?? null,
  };
  sendJson(ctx, status, { error }, opts.headers);
}

/** Waits `ms` (0 = not at all); rejects with an AbortError as soon as the response closes. */
export async function sleep(ctx: Ctx, ms: number): Promise<void> {
  if (ms > 0) await delay(ms, undefined, { signal: ctx.signal });
  else ctx.signal.throwIfAborted();
}

/** Resolves once the response has closed (without any timer). */
export function untilClosed(ctx: Ctx): Promise<void> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

export interface FormPart {
  name: string;
  data: Buffer;
}

/** Minimal multipart/form-data parser (RFC 7578): enough to find a part by name. */
export function parseMultipart(body: Buffer, contentType: string): FormPart[] {
  const match = /boundary=(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  if (!match) return [];
  const delimiter = Buffer.from(`--${match[1] ?? match[2]}`);
  const nextDelimiter = Buffer.concat([Buffer.from("\r\n"), delimiter]);
  const parts: FormPart[] = [];
  let pos = body.indexOf(delimiter);
  while (pos !== -1) {
    const start = pos + delimiter.length;
    if (body.subarray(start, start + 2).toString() === "--") break; // closing delimiter
    const headerEnd = body.indexOf("\r\n\r\n", start);
    const end = headerEnd === -1 ? -1 : body.indexOf(nextDelimiter, headerEnd + 4);
    if (end === -1) break;
    const headers = body.subarray(start, headerEnd).toString("utf8");
    const disposition = /^content-disposition:(.*)$/im.exec(headers)?.[1] ?? "";
    const name = /\bname="([^"]*)"/i.exec(disposition)?.[1] ?? "";
    parts.push({ name, data: body.subarray(headerEnd + 4, end) });
    pos = end + 2;
  }
  return parts;
}

/** Server-sent-event formatting and the timed stream writer (honours ttft/gap/hold-end and the stream faults). */
import { type Ctx, sleep, untilClosed, writeHead } from "./http.js";

export const sseData = (payload: unknown): string => `data: ${JSON.stringify(payload)}\n\n`;
export const sseEvent = (type: string, payload: unknown): string =>
  `event: ${type}\ndata: ${JSON.stringify(payload)}\n\n`;
export const SSE_DONE = "data: [DONE]\n\n";

/**
 * Chat and legacy completion chunks: with `stream_options.include_usage` every chunk carries `usage: null`
 * and the stream ends with a `choices: []` chunk holding the usage, then `[DONE]`.
 */
export function chunkStream(base: Record<string, unknown>, withUsage: boolean, usage: Record<string, unknown>) {
  const chunk = (choice: unknown): string =>
    sseData({ ...base, choices: [choice], ...(withUsage ? { usage: null } : {}) });
  const end = (last: unknown): string[] => [
    chunk(last),
    ...(withUsage ? [sseData({ ...base, choices: [], usage })] : []),
    SSE_DONE,
  ];
  return { chunk, end };
}

/** Events before the content (role chunk, response.created…), the content deltas, and the closing events. */
export interface StreamPlan {
  head: string[];
  body: string[];
  tail: string[];
}

/**
 * Splits a reply into stream deltas whose concatenation is exactly `text`:
 * one per word (with its trailing whitespace) by default, or exactly `chunks` pieces
 * (by code point, some possibly empty when the text is shorter than `chunks`).
 */
export function splitText(text: string, chunks?: number): string[] {
  if (chunks === undefined || chunks < 1) return text.match(/\s*\S+\s*/g) ?? (text ? [text] : []);
  const chars = Array.from(text);
  const at = (i: number): number => Math.floor((i * chars.length) / chunks);
  return Array.from({ length: chunks }, (_, i) => chars.slice(at(i), at(i + 1)).join(""));
}

function write(ctx: Ctx, event: string, waitFlush: boolean): Promise<void> | void {
  if (!waitFlush) return void ctx.res.write(event);
  return new Promise((resolve) => ctx.res.write(event, () => resolve()));
}

async function resetSocket(ctx: Ctx): Promise<void> {
  await sleep(ctx, 10); // let the client read what was flushed before the RST arrives
  ctx.serverHangup = true;
  const { socket } = ctx.res;
  if (socket && typeof socket.resetAndDestroy === "function") socket.resetAndDestroy();
  else socket?.destroy();
}

export async function streamEvents(ctx: Ctx, plan: StreamPlan): Promise<void> {
  writeHead(ctx, 200, { "content-type": "text/event-stream; charset=utf-8" });
  ctx.res.flushHeaders(); // headers now, first event after ttftMs
  const events = [...plan.head, ...plan.body, ...plan.tail];
  const tailStart = plan.head.length + plan.body.length;
  const { ttftMs, chunkGapMs, holdEndMs } = ctx.timing;
  const faulty = ctx.fault === "fault-stall" || ctx.fault === "fault-reset";
  for (const [i, event] of events.entries()) {
    if (ctx.fault === "fault-stall" && i === 2) return untilClosed(ctx);
    if (ctx.fault === "fault-reset" && i === 3) return resetSocket(ctx);
    await sleep(ctx, i === 0 ? ttftMs : chunkGapMs + (i === tailStart ? holdEndMs : 0));
    await write(ctx, event, faulty);
  }
  ctx.res.end();
}

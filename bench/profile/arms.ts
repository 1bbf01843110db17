/**
 * The two arms each scenario is timed for: the proxy (the Worker's Hono app, called in-process)
 * and a bare pass-through handler (`(req) => fetch(upstreamUrl, req)`) through the same stub upstream.
 */
import type { ExecutionContext } from "hono";
import type { Bindings } from "./env";
import { UPSTREAM_CHAT_URL } from "./upstream";

/** One request in, its response out. */
export type Handler = (request: Request) => Response | Promise<Response>;

/** What the profile needs of the Worker's app (`createApp()`): its `fetch`. */
export type WorkerApp = {
  fetch(request: Request, env: Bindings, ctx: ExecutionContext): Response | Promise<Response>;
};

/**
 * `waitUntil` drops the promise. The app hands it every request's accounting (the log line), which
 * runs on by itself and is over a few ticks after the response's last chunk was read.
 */
const ctx: ExecutionContext = { waitUntil(_promise) {}, passThroughOnException() {}, props: {} };

/** The proxy arm for one env: the app's `fetch` with that env. */
export function proxyArm(app: WorkerApp): (env: Bindings) => Handler {
  return (env) => (request) => app.fetch(request, env, ctx);
}

/** The bare arm: the request passed straight to the (stub) upstream. */
export const bareArm: Handler = (request) => fetch(UPSTREAM_CHAT_URL, request);

import type { Context } from "hono";
import type { AppEnv } from "../env";
import { forwardOutgoing } from "./forwarded";

/**
 * `POST /`: the original proxy's chat endpoint. The policy step has checked the request and filled
 * the original defaults; this sends it to `/chat/completions`, with errors in the original shape.
 */
export function seedChat(c: Context<AppEnv>): Promise<Response> {
  return forwardOutgoing(c, { method: "POST", path: "/chat/completions", search: "", shape: "seed", readUsage: true });
}

import type { Context } from "hono";
import type { AppEnv } from "../env";
import { notFound } from "../errors";
import { maybe } from "../middleware/vars";
import { isWebSocketUpgrade, relayWebSocket } from "../proxy/websocket";
import { defaultOutputCap } from "../usage/reservation";
import { NO_RESERVATION, reservationCostUsd } from "../usage/spend";
import type { Usage } from "../usage/usage";
import { forwardOutgoing, respond } from "./forwarded";
import { modelList } from "./models";

/**
 * `/v1/*`: a faithful pass-through of the OpenAI API. Method, path below `/v1` (as the client
 * encoded it), query string and body go upstream unchanged, except where the policy step rewrote
 * the body; streams come back as they arrive; a WebSocket upgrade (the Realtime API) is relayed
 * with the operator's key.
 */
export async function openaiPassThrough(c: Context<AppEnv>): Promise<Response> {
  // The raw path, not Hono's decoded one, so that percent-encoding reaches upstream unchanged.
  const url = c.req.url;
  const pathAt = url.indexOf("/", url.indexOf("//") + 2);
  const queryAt = url.indexOf("?", pathAt);
  const rawPath = url.slice(pathAt, queryAt === -1 ? undefined : queryAt);
  if (!rawPath.startsWith("/v1/") || rawPath.length === "/v1/".length) throw notFound(c.req.method, c.req.path);
  const path = rawPath.slice("/v1".length);
  const search = queryAt === -1 ? "" : url.slice(queryAt);
  const outgoing = c.get("outgoing");
  const upstream = c.get("config").upstream;
  // Several upstreams, or aliases: the list is theirs together, not the first upstream's alone.
  if (c.req.method === "GET" && path === "/models" && (upstream.configured || upstream.aliases.size > 0)) {
    return c.json(await modelList(upstream, c.req.raw.headers));
  }
  if (isWebSocketUpgrade(c.req.raw)) {
    const onUsage = budgetKeeper(c, outgoing.reservation.inputTokens + outgoing.reservation.outputTokens);
    const call = {
      path,
      search: outgoing.query ?? search,
      headers: c.req.raw.headers,
      route: outgoing.route,
      model: outgoing.model,
      onUsage,
    };
    return respond(c, await relayWebSocket(upstream, call));
  }
  return forwardOutgoing(c, {
    method: c.req.method,
    path,
    search,
    shape: "openai",
    readUsage: c.req.method === "POST",
  });
}

/**
 * Keeps a session's reservation one answer ahead of what it has spent, reserving more of the
 * client's budget as it goes; false once the budget cannot cover another answer.
 */
function budgetKeeper(c: Context<AppEnv>, reserved: number): (total: Usage) => Promise<boolean> {
  const admission = maybe(c, "admission");
  const { model } = c.get("outgoing");
  let held = reserved;
  return async (total) => {
    if (admission === undefined) return true;
    const needed = total.promptTokens + total.completionTokens + defaultOutputCap(model) - held;
    if (needed <= 0) return true;
    // Priced as output at its dearest rate (see reservationCostUsd): the next answer may be all audio.
    const reservation = { ...NO_RESERVATION, outputTokens: needed };
    const usd = reservationCostUsd({ model, billing: "tokens", reservation }, c.get("config").usage);
    if (!(await admission.extend({ tokens: needed, usd }))) return false;
    held += needed;
    return true;
  };
}

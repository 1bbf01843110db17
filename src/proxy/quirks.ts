/**
 * What this isolate has learnt about upstreams: those that refuse `stream_options` (older Azure
 * api-versions, some OpenAI-compatible servers answer 400 "Unrecognized request argument supplied:
 * stream_options"). Kept per isolate, as plain values (no promise of one request is ever awaited
 * by another); an isolate that is recycled learns it again, at the cost of one more retried request.
 */
const refusesStreamOptions = new Set<string>();

/**
 * Whether the proxy may add `stream_options` to requests for the upstream at `baseUrl`.
 *
 * @example
 * if (acceptsStreamOptions(config.upstream.baseUrl)) body.stream_options = { include_usage: true };
 */
export function acceptsStreamOptions(baseUrl: string): boolean {
  return !refusesStreamOptions.has(baseUrl);
}

/** Notes that the upstream at `baseUrl` refused `stream_options`: the proxy stops adding it there. */
export function rememberRefusesStreamOptions(baseUrl: string): void {
  refusesStreamOptions.add(baseUrl);
}

/**
 * Whether an upstream's 400 body refuses what the proxy added: any mention of `stream_options` when
 * the proxy added the whole field, only `include_usage` when the client sent `stream_options` itself
 * (a refusal of the client's own field is the client's error, and is passed on).
 *
 * @example
 * refusesAddedField('{"error":{"message":"Unrecognized request argument supplied: stream_options"}}', "stream_options"); // true
 * refusesAddedField('{"error":{"message":"Unrecognized request argument supplied: stream_options"}}', "include_usage"); // false
 */
export function refusesAddedField(errorBody: string, added: "stream_options" | "include_usage"): boolean {
  return (added === "stream_options" ? /stream_options|include_usage/i : /include_usage/i).test(errorBody);
}

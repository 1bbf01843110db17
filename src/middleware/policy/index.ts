import type { MiddlewareHandler } from "hono";
import type { Client } from "../../client";
import { compilePatterns, matchesAny, type PolicySettings, type SeedDefaults, type Upstream } from "../../config";
import type { AppEnv } from "../../env";
import { ProxyError } from "../../errors";
import { concatBytes } from "../../lib/bytes";
import { isRecord } from "../../lib/json";
import { arrayLength, type JsonObject, memberValue, withMembers } from "../../lib/json-object";
import { formFields } from "../../lib/multipart";
import { spendLimited } from "../../limits/client";
import type { AddedUsageOption, RequestBody } from "../../proxy/forward";
import { routeFor } from "../../proxy/pool";
import { acceptsStreamOptions } from "../../proxy/quirks";
import { isWebSocketUpgrade } from "../../proxy/websocket";
import {
  billingOf,
  capsOutput,
  defaultOutputCap,
  jsonInputTokens,
  OUTPUT_FIELDS,
  REASONING_MODEL,
  reservationFor,
  uploadInputTokens,
} from "../../usage/reservation";
import { type Billing, NO_RESERVATION, type Reservation } from "../../usage/spend";
import { isUpload } from "../body";
import { checkSeedRequest, invalidJson, seedDefaults } from "./seed";

declare module "hono" {
  interface ContextVariableMap {
    /** What goes upstream, decided once by `policy()`. */
    outgoing: Outgoing;
  }
}

/** A request as it will go upstream: the one place its body is rewritten, and what it may spend. */
export type Outgoing = {
  /** The decoded path below `/v1` that decisions follow, e.g. `/chat/completions`. */
  endpoint: string;
  /** The model the request names, an alias resolved (`MODEL_ALIASES`); null when it names none (or not as a string). */
  model: string | null;
  /** The model as the client named it: an alias, or the model itself. */
  modelRequested: string | null;
  /** The upstreams that serve the model, in the order to try them (see `routeFor`). */
  route: readonly Upstream[];
  /** The query string to send, when the proxy changed it (a Realtime session's aliased model); null keeps the client's. */
  query: string | null;
  stream: boolean;
  /** The body to send: the client's bytes, or a copy with the proxy's changes. */
  body: RequestBody;
  /** The same body again, for another try; null when it cannot be sent twice (an upload streamed through). */
  replay: (() => RequestBody) | null;
  /**
   * The proxy added `stream_options.include_usage` (its usage chunk must then not reach the
   * client): the body without it, for an upstream that refuses the field; null when it added nothing.
   */
  withoutUsageOption: AddedUsageOption | null;
  billing: Billing;
  /** What the request may spend at most: what a budget reserves for it. */
  reservation: Reservation;
  /** Upstream may bill output the stream does not show (a reasoning model, a `background` response). */
  unseenOutput: boolean;
};

/**
 * Endpoints that mint a credential which talks to OpenAI directly (Realtime client secrets and
 * sessions, ChatKit sessions): what it spends never passes the proxy.
 */
const MINTS_CREDENTIALS = new Set([
  "/realtime/client_secrets",
  "/realtime/sessions",
  "/realtime/transcription_sessions",
  "/realtime/calls",
  "/chatkit/sessions",
]);

/** Top-level fields the proxy decides on: a body that names one twice is refused (parsers disagree on which wins). */
const READ_FIELDS = [
  "model",
  "best_of",
  "prompt",
  "stream",
  "stream_options",
  "n",
  "messages",
  "quality",
  "size",
  "partial_images",
  "background",
  "tools",
  "web_search_options",
  ...OUTPUT_FIELDS,
];

/** The fields of a multipart form the rules read: short ones (a form's `prompt` can be long, and is not read). */
const FORM_FIELDS = ["model", "stream", "n", "quality", "size", "partial_images"];

/** The fields of a request the rules read, whether it came as JSON or as a multipart form. */
type Fields = {
  get(field: string): unknown;
  duplicates: ReadonlySet<string>;
  /** The JSON body, which the proxy may rewrite; null for a form, which it sends as it came. */
  json: JsonObject | null;
  /** Input tokens the body may cost: at most, and likely. */
  input: { ceiling: number; estimate: number };
};

/**
 * What a client may ask for, and the one step that rewrites a request body: `ALLOWED_PATHS`
 * (403 `path_not_allowed`), `ALLOWED_MODELS` and a token's `models` claim (403
 * `model_not_allowed`), `MAX_OUTPUT_TOKENS` (400 over it); then the body's changes, encoded once:
 * `POST /`'s defaults, an output cap for a request that names none while a cap or a budget applies,
 * and `stream_options.include_usage` for a chat or completions stream, so its usage can be read.
 * Sets `outgoing`, with what the request may spend. The rules read JSON bodies, whatever media type
 * they claim, and the fields of multipart forms sent to endpoints that bill tokens (transcriptions,
 * image edits); a body sent to such an endpoint that the proxy cannot read is refused (400
 * `invalid_json`). Other uploads stream through unread.
 *
 * @example
 * app.post("/", configured(), clientAuth(), bodyLimit(), policy("seed"), rateLimit(), seedChat);
 */
export function policy(route: "openai" | "seed"): MiddlewareHandler<AppEnv> {
  return async function policyMiddleware(c, next) {
    const config = c.get("config");
    const seed = route === "seed";
    const path = seed ? "/v1/chat/completions" : c.req.path;
    checkPath(config.policy, c.req.method, c.req.path, path);
    const endpoint = path.slice("/v1".length);
    const billing = billingOf(c.req.method, endpoint);
    const body = c.get("body");
    const contentType = c.req.header("content-type") ?? "";
    const bytes = body instanceof Uint8Array ? body : null;
    const client = c.get("client");
    const budgeted = spendLimited(config, client);
    if (c.req.method === "POST" && budgeted && billing === "reported" && !config.policy.namedPaths.has(path)) {
      checkSpendIsSeen(c.req.method, c.req.path, endpoint);
    }
    const { aliases, upstreams, includeStreamUsage } = config.upstream;
    const routed = (outgoing: Omit<Outgoing, "route">): Outgoing => {
      const route = routeFor(upstreams, outgoing.model);
      if (outgoing.model !== null && route.length === 0) throw modelNotFound(outgoing.modelRequested ?? outgoing.model);
      return { ...outgoing, route };
    };
    if (isWebSocketUpgrade(c.req.raw)) {
      const query = new URL(c.req.url).searchParams;
      c.set("outgoing", routed(session(endpoint, query, config.policy, client, aliases)));
      return next();
    }
    let json = c.get("json");
    if (seed) json = checkSeedRequest(contentType, bytes, json);
    const fields = json !== null ? jsonFields(json) : bytes !== null ? formOf(bytes, contentType, endpoint) : null;

    if (fields === null) {
      // A body the rules must read and cannot: refused, rather than sent past them.
      if (billing === "tokens" && bytes !== null && bytes.byteLength > 0) {
        throw isUpload(contentType) ? unreadableForm() : invalidJson(bytes);
      }
      c.set("outgoing", routed(opaque(endpoint, billing, body, c.req.header("content-length"))));
    } else {
      const context = { endpoint, billing, seed, budgeted, policy: config.policy, client, aliases };
      // Added when an upstream may take it; the others get the request without it (see forward).
      const mayAddStreamOptions =
        includeStreamUsage && upstreams.some((u) => u.includeStreamUsage && acceptsStreamOptions(u.baseUrl));
      c.set("outgoing", routed(plan(fields, { ...context, defaults: config.seed, body, mayAddStreamOptions })));
    }
    await next();
  };
}

function jsonFields(json: JsonObject): Fields {
  return {
    get: (field) => memberValue(json, field),
    duplicates: json.duplicates,
    json,
    input: jsonInputTokens(json),
  };
}

/** The fields of a multipart form the rules read; null when the body is not a well-formed form. */
function formOf(bytes: Uint8Array, contentType: string, endpoint: string): Fields | null {
  if (!/^multipart\/form-data/i.test(contentType)) return null;
  const form = formFields(bytes, contentType, FORM_FIELDS);
  if (form === null) return null;
  const { fields } = form;
  const duplicates = new Set([...fields].filter(([, values]) => values.length > 1).map(([name]) => name));
  const get = (field: string): unknown => {
    const value = fields.get(field)?.[0];
    if (value === undefined) return undefined;
    if (field === "stream") return value === "true";
    const number = Number(value);
    return /^(n|partial_images)$/.test(field) && value.trim() !== "" && Number.isFinite(number) ? number : value;
  };
  const tokens = uploadInputTokens(endpoint, { bytes: bytes.byteLength, files: form.files });
  return { get, duplicates, json: null, input: { ceiling: tokens, estimate: tokens } };
}

function unreadableForm(): ProxyError {
  return new ProxyError(400, "request body is not a multipart form the proxy can read", { code: "invalid_json" });
}

/**
 * Refuses, while a budget or the spend ceiling applies, a POST that may spend where the proxy
 * cannot see it: one that mints a key or opens a call that talks to OpenAI directly, or one that is
 * neither token-billed nor known to be free (see `billingOf`). `ALLOWED_PATHS` naming the path lets it through.
 *
 * @throws ProxyError 403 `path_not_allowed`, saying why and what the operator can do.
 */
function checkSpendIsSeen(method: string, path: string, endpoint: string): void {
  const why = MINTS_CREDENTIALS.has(endpoint)
    ? "mints a key or opens a call that talks to OpenAI directly"
    : "may spend where this proxy cannot see it (its answer reports no usage)";
  throw new ProxyError(
    403,
    `${method} ${path} ${why}, so this proxy cannot hold it to a budget: it is refused while a budget or a spending ` +
      "limit applies. The operator can allow it by naming the path in ALLOWED_PATHS.",
    { type: "permission_error", code: "path_not_allowed" },
  );
}

/**
 * A WebSocket session (the Realtime API): its model is in the query string (once); it holds a stream
 * slot while it lasts, and reserves one answer's output at first, more as it spends.
 */
function session(
  endpoint: string,
  query: URLSearchParams,
  settings: PolicySettings,
  client: Client,
  aliases: ReadonlyMap<string, string>,
): Omit<Outgoing, "route"> {
  const models = query.getAll("model");
  if (models.length > 1) {
    throw new ProxyError(400, "the query string names model more than once", {
      code: "invalid_parameter",
      param: "model",
    });
  }
  const requested = models[0] ?? null;
  const aliased = requested === null ? undefined : aliases.get(requested);
  const model = aliased ?? requested;
  let rewritten: string | null = null;
  if (aliased !== undefined) {
    query.set("model", aliased);
    rewritten = `?${query}`;
  }
  if (model !== null) checkModel(settings, client, model);
  else if (settings.allowedModels !== null || client.models !== undefined) {
    throw new ProxyError(400, "name the session's model (?model=…): this proxy allows only some models", {
      code: "invalid_parameter",
      param: "model",
    });
  }
  const reservation = { ...NO_RESERVATION, outputTokens: defaultOutputCap(model) };
  const billing = "tokens";
  return {
    endpoint,
    model,
    modelRequested: requested,
    query: rewritten,
    stream: true,
    body: null,
    replay: () => null,
    withoutUsageOption: null,
    billing,
    reservation,
    unseenOutput: false,
  };
}

/** An outgoing request whose body the proxy does not read (an upload, or no body): sent as it came. */
function opaque(
  endpoint: string,
  billing: Billing,
  body: RequestBody,
  length: string | undefined,
): Omit<Outgoing, "route"> {
  const bytes = body instanceof Uint8Array ? body.byteLength : Number(length ?? 0) || 0;
  const tokens = uploadInputTokens(endpoint, { bytes, files: 1 });
  const reservation =
    billing === "tokens"
      ? reservationFor(endpoint, { input: { ceiling: tokens, estimate: tokens }, cap: null, fields: {} })
      : NO_RESERVATION;
  return {
    endpoint,
    model: null,
    modelRequested: null,
    query: null,
    stream: false,
    body,
    // Bytes can be sent again; a stream passed through cannot.
    replay: body instanceof ReadableStream ? null : () => body,
    withoutUsageOption: null,
    billing,
    reservation,
    unseenOutput: false,
  };
}

type PlanContext = {
  endpoint: string;
  billing: Billing;
  seed: boolean;
  /** A budget or the spend ceiling applies to the client (`spendLimited`). */
  budgeted: boolean;
  policy: PolicySettings;
  client: Client;
  defaults: SeedDefaults;
  body: RequestBody;
  /** The proxy may add `stream_options` for an upstream of the request (see `INCLUDE_STREAM_USAGE`). */
  mayAddStreamOptions: boolean;
  /** `MODEL_ALIASES`. */
  aliases: ReadonlyMap<string, string>;
};

/** Applies the rules to a request the proxy can read, and works out its one rewrite. */
function plan(fields: Fields, context: PlanContext): Omit<Outgoing, "route"> {
  const { endpoint, billing, policy: settings, json } = { ...context, json: fields.json };
  for (const field of READ_FIELDS) {
    if (fields.duplicates.has(field)) {
      throw new ProxyError(400, `request body names "${field}" more than once`, { code: "invalid_json", param: field });
    }
  }
  const changes: Record<string, unknown> =
    context.seed && json !== null ? seedDefaults(json, context.defaults, settings.maxOutputTokens) : {};
  const value = (field: string) => (field in changes ? changes[field] : fields.get(field));

  const rawModel = value("model");
  const requested = typeof rawModel === "string" ? rawModel : null;
  const aliased = requested === null ? undefined : context.aliases.get(requested);
  if (aliased !== undefined) {
    // A form is sent as it came: an alias in it would reach upstream as it is.
    if (json === null) {
      throw new ProxyError(
        400,
        `model aliases apply to JSON bodies; name the model itself in a form, not "${requested}"`,
        {
          code: "invalid_parameter",
          param: "model",
        },
      );
    }
    changes.model = aliased;
  }
  const model = aliased ?? requested;
  if (model !== null) checkModel(settings, context.client, model);
  if (context.budgeted && billing === "tokens")
    checkHostedTools(settings, model, value("tools"), value("web_search_options"));

  // The output cap: the request's own, checked against the operator's; or one the proxy sets.
  let cap: number | null = null;
  for (const field of OUTPUT_FIELDS) {
    const asked = value(field);
    if (typeof asked !== "number") continue;
    if (settings.maxOutputTokens !== null && asked > settings.maxOutputTokens) {
      const message = `${field} is ${asked}, over this proxy's cap of ${settings.maxOutputTokens} output tokens`;
      throw new ProxyError(400, message, { code: "max_tokens_over_cap", param: field });
    }
    cap = Math.max(cap ?? 0, asked);
  }
  if (cap === null && capsOutput(endpoint) && json !== null) {
    const proxyCap = settings.maxOutputTokens ?? (context.budgeted ? defaultOutputCap(model) : null);
    if (proxyCap !== null) {
      changes[outputField(endpoint, model ?? "")] = proxyCap;
      cap = proxyCap;
    }
  }

  const stream = value("stream") === true;
  let withoutUsageOption: Outgoing["withoutUsageOption"] = null;
  const chatStream = stream && (endpoint === "/chat/completions" || endpoint === "/completions");
  if (chatStream && json !== null && context.mayAddStreamOptions) {
    const options = value("stream_options");
    if (!isRecord(options) || options.include_usage !== true) {
      const without = { ...changes };
      changes.stream_options = { ...(isRecord(options) ? options : {}), include_usage: true };
      withoutUsageOption = {
        added: isRecord(options) ? "include_usage" : "stream_options",
        without: () => (Object.keys(without).length === 0 ? json.bytes : bodyOf(withMembers(json, without))),
      };
    }
  }

  let body = context.body;
  let replay: Outgoing["replay"] = body instanceof ReadableStream ? null : () => context.body;
  if (json !== null && Object.keys(changes).length > 0) {
    const pieces = withMembers(json, changes);
    body = bodyOf(pieces);
    replay = () => bodyOf(pieces);
  }
  const counted = {
    n: value("n"),
    best_of: value("best_of"),
    prompts: endpoint === "/completions" && json !== null ? promptCount(json) : 1,
    quality: value("quality"),
    size: value("size"),
    partial_images: value("partial_images"),
  };
  const reservation =
    billing === "tokens"
      ? reservationFor(endpoint, { input: fields.input, cap, model, fields: counted })
      : NO_RESERVATION;
  const unseenOutput = (model !== null && REASONING_MODEL.test(model)) || value("background") === true;
  return {
    endpoint,
    model,
    modelRequested: requested,
    query: null,
    stream,
    body,
    replay,
    withoutUsageOption,
    billing,
    reservation,
    unseenOutput,
  };
}

/** A rewritten body up to this size is sent as one array (one small copy); a larger one as a stream of its pieces. */
const COPY_LIMIT = 1024 * 1024;

/**
 * A rewritten body as the runtime sends it: small ones joined into one array, large ones streamed
 * from their pieces (views of the client's bytes), so a 50 MB body with a cap added is never held twice.
 */
function bodyOf(pieces: readonly Uint8Array[]): RequestBody {
  const size = pieces.reduce((total, piece) => total + piece.byteLength, 0);
  if (size <= COPY_LIMIT) return concatBytes(pieces);
  const { readable, writable } = new FixedLengthStream(size);
  const writer = writable.getWriter();
  (async () => {
    for (const piece of pieces) await writer.write(piece);
    await writer.close();
  })().catch(() => {});
  return readable;
}

/**
 * How many prompts a legacy completions request sends: each element of a list of strings or of
 * token lists is one; a list of numbers is one tokenized prompt.
 */
function promptCount(json: JsonObject): number {
  const length = arrayLength(json, "prompt");
  const span = json.members.get("prompt");
  if (length === null || span === undefined) return 1;
  let at = span[0] + 1;
  while (json.bytes[at] === 0x20 || json.bytes[at] === 0x0a || json.bytes[at] === 0x0d || json.bytes[at] === 0x09) at++;
  const first = json.bytes[at] ?? 0;
  const tokens = first === 0x2d || (first >= 0x30 && first <= 0x39);
  return tokens ? 1 : Math.max(1, length);
}

/**
 * Hosted tools that OpenAI bills per call, outside a response's `usage` (web search, file search,
 * code interpreter containers, computer use, image generation), by the `type` a request names them
 * with; models that search on every request (`gpt-4o-search-preview`…) count as web search.
 */
const HOSTED_TOOL = /^(web_search|file_search|code_interpreter|computer_use|image_generation)/;

/**
 * Refuses, while a budget or the spend ceiling applies, a request that declares a hosted tool
 * billed per call outside `usage`, which the proxy can neither reserve nor charge, unless
 * `ALLOWED_HOSTED_TOOLS` names its type.
 *
 * @throws ProxyError 403 `tool_not_allowed`, naming the tool and what the operator can do.
 */
function checkHostedTools(
  settings: PolicySettings,
  model: string | null,
  tools: unknown,
  searchOptions: unknown,
): void {
  const declared = Array.isArray(tools)
    ? tools
        .map((tool) => (isRecord(tool) && typeof tool.type === "string" ? tool.type : ""))
        .filter((type) => HOSTED_TOOL.test(type))
    : [];
  if (searchOptions !== undefined || (model !== null && /search/.test(model))) declared.push("web_search");
  const refused = declared.find((type) => !matchesAny(settings.allowedHostedTools, type));
  if (refused === undefined) return;
  throw new ProxyError(
    403,
    `the hosted tool ${refused} is billed per call, outside what this proxy can count, so it is refused while a ` +
      "budget or a spending limit applies. The operator can allow it by naming it in ALLOWED_HOSTED_TOOLS.",
    { type: "permission_error", code: "tool_not_allowed", param: "tools" },
  );
}

/** Refuses a path that `ALLOWED_PATHS` leaves out, with 403 `path_not_allowed`. */
function checkPath(settings: PolicySettings, method: string, requested: string, path: string): void {
  if (settings.allowedPaths !== null && !matchesAny(settings.allowedPaths, path)) {
    throw new ProxyError(403, `${method} ${requested} is not enabled on this proxy`, {
      type: "permission_error",
      code: "path_not_allowed",
    });
  }
}

/**
 * Tokens' `models` claims, compiled once per isolate: by their text, since each request's verified
 * token holds a new array. Bounded: a claim beyond `MAX_CACHED_CLAIMS` is compiled again each time.
 */
const tokenPatterns = new Map<string, RegExp[]>();
const MAX_CACHED_CLAIMS = 256;

/** Applies `ALLOWED_MODELS` and a token's `models` claim: 403 `model_not_allowed`, naming the model, not the list. */
function checkModel(settings: PolicySettings, client: Client, model: string): void {
  if (settings.allowedModels !== null && !matchesAny(settings.allowedModels, model)) throw modelNotAllowed(model);
  const claim = client.models;
  if (claim === undefined) return;
  const key = claim.join("\n");
  let patterns = tokenPatterns.get(key);
  if (patterns === undefined) {
    patterns = compilePatterns(claim) ?? [];
    if (tokenPatterns.size < MAX_CACHED_CLAIMS) tokenPatterns.set(key, patterns);
  }
  if (!matchesAny(patterns, model)) throw modelNotAllowed(model);
}

/** OpenAI's own answer for a model it does not serve: 404 `model_not_found`. */
function modelNotFound(model: string): ProxyError {
  return new ProxyError(404, `The model \`${model}\` does not exist or you do not have access to it.`, {
    code: "model_not_found",
    param: "model",
  });
}

function modelNotAllowed(model: string): ProxyError {
  return new ProxyError(403, `model ${model} is not allowed on this proxy`, {
    type: "permission_error",
    code: "model_not_allowed",
    param: "model",
  });
}

/** The field an endpoint and model take their output cap in. */
export function outputField(endpoint: string, model: string): (typeof OUTPUT_FIELDS)[number] {
  if (endpoint === "/responses") return "max_output_tokens";
  return endpoint === "/chat/completions" && REASONING_MODEL.test(model) ? "max_completion_tokens" : "max_tokens";
}

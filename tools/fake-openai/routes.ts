/** Authentication, faults and the OpenAI routes. Shapes follow what api.openai.com sends. */
import {
  bearerKey,
  type Ctx,
  countWords,
  digest,
  FAULTS,
  type Fault,
  isRecord,
  type Json,
  newId,
  nowSeconds,
  parseMultipart,
  sendError,
  sendJson,
  sleep,
  writeHead,
} from "./http.js";
import { chunkStream, type StreamPlan, splitText, sseEvent, streamEvents } from "./sse.js";

type Handler = (ctx: Ctx, body: Json) => void | Promise<void>;
type RawHandler = (ctx: Ctx, params: string[]) => void;

const FINGERPRINT = "fp_fake0penai";
const TOOL_ARGUMENT_DELTAS = ['{"', "location", '":"', "Paris", '"}'];
const TINY_PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";
const MODEL_IDS = ["gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo", "o3-mini", "text-embedding-3-small"];
const MODELS = MODEL_IDS.map((id) => ({ id, object: "model", created: 1715367049, owned_by: "system" }));
const MODERATION_CATEGORIES = `harassment harassment/threatening hate hate/threatening illicit illicit/violent self-harm
  self-harm/intent self-harm/instructions sexual sexual/minors violence violence/graphic`.split(/\s+/);
const FILE = { id: "file-fake0001", object: "file", bytes: 1024, created_at: 1700000000, filename: "data.jsonl" };
const NO_KEY_MESSAGE =
  "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth " +
  "(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the " +
  "API from your browser and are prompted for a username and password. You can obtain an API key from " +
  "https://platform.openai.com/account/api-keys.";
const BAD_JSON_MESSAGE =
  "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library " +
  "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble " +
  "figuring out how to fix this, please contact us through our help center at help.openai.com.)";

// ------------------------------------------------------------------------------------------------- text helpers

/** Text of a message/input content: a string, or the `text` of its parts joined with a space. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.flatMap((p) => (isRecord(p) && typeof p.text === "string" ? [p.text] : [])).join(" ");
}

function lastUserText(items: unknown[]): string {
  const last = [...items].reverse().find((m) => isRecord(m) && m.role === "user");
  return isRecord(last) ? contentText(last.content) : "";
}

/** Words across all messages + 3 per message. */
const promptTokens = (items: unknown[]): number =>
  items.reduce<number>((n, m) => n + countWords(isRecord(m) ? contentText(m.content) : ""), 0) + 3 * items.length;

const reply = (text: string): string => `Hello! You said: ${text}`;
const wantsStream = (ctx: Ctx, body: Json): boolean =>
  body.stream === true || ctx.fault === "fault-stall" || ctx.fault === "fault-reset";
const includeUsage = (body: Json): boolean =>
  isRecord(body.stream_options) && body.stream_options.include_usage === true;

function missing(ctx: Ctx, param: string): void {
  sendError(ctx, 400, `Missing required parameter: '${param}'.`, { param, code: "missing_required_parameter" });
}

// ------------------------------------------------------------------------------------------------- generation

/** Name of the tool to call: the first tool's, when tools are offered and the user asks about the weather. */
function toolToCall(body: Json, userText: string): string | undefined {
  if (!Array.isArray(body.tools) || body.tools.length === 0 || !/\bweather\b/i.test(userText)) return undefined;
  const first: unknown = body.tools[0];
  const fn = isRecord(first) && isRecord(first.function) ? first.function : first;
  return isRecord(fn) && typeof fn.name === "string" ? fn.name : "get_weather";
}

const chatCompletions: Handler = async (ctx, body) => {
  const { messages, model } = body;
  if (messages === undefined) return missing(ctx, "messages");
  if (!Array.isArray(messages)) {
    const got = messages === null ? "null" : typeof messages === "object" ? "an object" : `a ${typeof messages}`;
    const message = `Invalid type for 'messages': expected an array of objects, but got ${got} instead.`;
    return sendError(ctx, 400, message, { param: "messages", code: "invalid_type" });
  }
  const userText = lastUserText(messages);
  const tool = toolToCall(body, userText);
  const text = reply(userText);
  const args = TOOL_ARGUMENT_DELTAS.join("");
  const call = { id: newId("call_"), type: "function", function: { name: tool, arguments: args } };
  const completionTokens = countWords(tool ? `${tool} ${args}` : text);
  const prompt = promptTokens(messages);
  const usage = {
    prompt_tokens: prompt,
    completion_tokens: completionTokens,
    total_tokens: prompt + completionTokens,
    prompt_tokens_details: { cached_tokens: 0, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: 0,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
  const finish_reason = tool ? "tool_calls" : "stop";
  const [id, created] = [newId("chatcmpl-"), nowSeconds()];

  if (!wantsStream(ctx, body)) {
    const message = tool
      ? { role: "assistant", content: null, tool_calls: [call], refusal: null, annotations: [] }
      : { role: "assistant", content: text, refusal: null, annotations: [] };
    const choices = [{ index: 0, message, logprobs: null, finish_reason }];
    const completion = { id, object: "chat.completion", created, model, choices, usage };
    return sendJson(ctx, 200, { ...completion, service_tier: "default", system_fingerprint: FINGERPRINT });
  }
  const base = { id, object: "chat.completion.chunk", created, model, service_tier: "default" };
  const s = chunkStream({ ...base, system_fingerprint: FINGERPRINT }, includeUsage(body), usage);
  const choice = (delta: Json, finish: string | null = null) => ({
    index: 0,
    delta,
    logprobs: null,
    finish_reason: finish,
  });
  const first = tool
    ? { role: "assistant", content: null, tool_calls: [{ index: 0, ...call, function: { name: tool, arguments: "" } }] }
    : { role: "assistant", content: "" };
  const deltas = tool
    ? TOOL_ARGUMENT_DELTAS.map((a) => ({ tool_calls: [{ index: 0, function: { arguments: a } }] }))
    : splitText(text, ctx.timing.chunks).map((content) => ({ content }));
  await streamEvents(ctx, {
    head: [s.chunk(choice({ ...first, refusal: null }))],
    body: deltas.map((delta) => s.chunk(choice(delta))),
    tail: s.end(choice({}, finish_reason)),
  });
};

const completions: Handler = async (ctx, body) => {
  const { prompt, model } = body;
  const promptText = Array.isArray(prompt)
    ? prompt.filter((p) => typeof p === "string").join(" ")
    : String(prompt ?? "");
  const text = reply(promptText);
  const [promptCount, completionCount] = [countWords(promptText), countWords(text)];
  const usage = {
    prompt_tokens: promptCount,
    completion_tokens: completionCount,
    total_tokens: promptCount + completionCount,
  };
  const base = { id: newId("cmpl-"), object: "text_completion", created: nowSeconds(), model };
  const choice = (t: string, finish: string | null) => ({ text: t, index: 0, logprobs: null, finish_reason: finish });
  if (!wantsStream(ctx, body)) return sendJson(ctx, 200, { ...base, choices: [choice(text, "stop")], usage });
  const s = chunkStream(base, includeUsage(body), usage);
  const deltas = splitText(text, ctx.timing.chunks).map((t) => s.chunk(choice(t, null)));
  await streamEvents(ctx, { head: [], body: deltas, tail: s.end(choice("", "stop")) });
};

const responses: Handler = async (ctx, body) => {
  const items = Array.isArray(body.input) ? body.input : [{ role: "user", content: body.input }];
  const text = reply(lastUserText(items));
  const instructions = typeof body.instructions === "string" ? body.instructions : null;
  const input_tokens = promptTokens(items) + countWords(instructions ?? "");
  const output_tokens = countWords(text);
  const usage = {
    input_tokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: input_tokens + output_tokens,
  };
  const msgId = newId("msg_");
  const part = (t: string): Json => ({ type: "output_text", text: t, annotations: [] });
  const message = (status: string, content: Json[]): Json => ({
    type: "message",
    id: msgId,
    status,
    role: "assistant",
    content,
  });
  const meta = { id: newId("resp_"), object: "response", created_at: nowSeconds() };
  const response = (status: string, output: Json[], u: Json | null): Json => ({
    ...meta,
    status,
    error: null,
    incomplete_details: null,
    instructions,
    max_output_tokens: body.max_output_tokens ?? null,
    model: body.model,
    output,
    parallel_tool_calls: true,
    previous_response_id: body.previous_response_id ?? null,
    reasoning: { effort: null, summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: "text" } },
    tool_choice: "auto",
    tools: [],
    top_p: 1,
    truncation: "disabled",
    usage: u,
    user: null,
    metadata: {},
  });
  const done = response("completed", [message("completed", [part(text)])], usage);
  if (!wantsStream(ctx, body)) return sendJson(ctx, 200, done);

  let seq = 0; // events are built in order, so sequence numbers follow the stream
  const ev = (type: string, fields: Json): string => sseEvent(type, { type, sequence_number: seq++, ...fields });
  const at = { item_id: msgId, output_index: 0, content_index: 0 };
  const plan: StreamPlan = {
    head: [
      ev("response.created", { response: response("in_progress", [], null) }),
      ev("response.in_progress", { response: response("in_progress", [], null) }),
      ev("response.output_item.added", { output_index: 0, item: message("in_progress", []) }),
      ev("response.content_part.added", { ...at, part: part("") }),
    ],
    body: splitText(text, ctx.timing.chunks).map((delta) =>
      ev("response.output_text.delta", { ...at, delta, logprobs: [] }),
    ),
    tail: [],
  };
  plan.tail.push(
    ev("response.output_text.done", { ...at, text, logprobs: [] }),
    ev("response.content_part.done", { ...at, part: part(text) }),
    ev("response.output_item.done", { output_index: 0, item: message("completed", [part(text)]) }),
    ev("response.completed", { response: done }),
  );
  await streamEvents(ctx, plan);
};

// ------------------------------------------------------------------------------------------------- other routes

/** 8 deterministic numbers per input, multiples of 1/128 so they survive the float32 round trip exactly. */
const vector = (text: string): number[] => Array.from(digest(text).subarray(0, 8), (b) => (b - 128) / 128);

function float32Base64(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  for (const [i, v] of values.entries()) buf.writeFloatLE(v, i * 4);
  return buf.toString("base64");
}

const embeddings: Handler = (ctx, body) => {
  const { input, model, encoding_format: format = "float" } = body;
  if (input === undefined) return missing(ctx, "input");
  if (format !== "float" && format !== "base64") {
    const message = "Invalid value for 'encoding_format': expected 'float' or 'base64'.";
    return sendError(ctx, 400, message, { param: "encoding_format", code: "invalid_value" });
  }
  const tokenArray = Array.isArray(input) && input.every((x) => typeof x === "number");
  const texts = (Array.isArray(input) && !tokenArray ? input : [input]).map((x: unknown) =>
    typeof x === "string" ? x : JSON.stringify(x),
  );
  const data = texts.map((t, index) => {
    const embedding = format === "base64" ? float32Base64(vector(t)) : vector(t);
    return { object: "embedding", index, embedding };
  });
  const tokens = texts.reduce((n, t) => n + countWords(t), 0);
  sendJson(ctx, 200, { object: "list", data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
};

/** Flags `violence` when the input contains the word "kill". */
const moderations: Handler = (ctx, body) => {
  if (body.input === undefined) return missing(ctx, "input");
  const results = (Array.isArray(body.input) ? body.input : [body.input]).map((x: unknown) => {
    const violent = /\bkill\b/i.test(typeof x === "string" ? x : JSON.stringify(x));
    const per = <T>(f: (c: string) => T) => Object.fromEntries(MODERATION_CATEGORIES.map((c) => [c, f(c)]));
    return {
      flagged: violent,
      categories: per((c) => violent && c === "violence"),
      category_scores: per((c) => (violent && c === "violence" ? 0.91 : 0.0001)),
      category_applied_input_types: per(() => ["text"]),
    };
  });
  sendJson(ctx, 200, { id: newId("modr-"), model: body.model ?? "omni-moderation-latest", results });
};

/** 4 KiB of deterministic bytes, sent in 1 KiB chunks. */
const speech: Handler = (ctx, body) => {
  if (typeof body.input !== "string") return missing(ctx, "input");
  const audio = Buffer.from(Array.from({ length: 4096 }, (_, i) => (i < 3 ? "ID3".charCodeAt(i) : (i * 31 + 7) & 255)));
  writeHead(ctx, 200, { "content-type": "audio/mpeg", "transfer-encoding": "chunked" });
  for (let i = 0; i < audio.length; i += 1024) ctx.res.write(audio.subarray(i, i + 1024));
  ctx.res.end();
};

/** Output tokens of one gpt-image image by quality and size, as OpenAI's image guide lists them. */
const IMAGE_TOKENS: Record<string, Record<string, number>> = {
  low: { "1024x1024": 272, "1024x1536": 408, "1536x1024": 400 },
  medium: { "1024x1024": 1056, "1024x1536": 1584, "1536x1024": 1568 },
  high: { "1024x1024": 4160, "1024x1536": 6240, "1536x1024": 6208 },
};

/** A transcription with the token usage of the gpt-4o transcribe models (whisper-1 reports a duration instead). */
const transcriptions: RawHandler = async (ctx) => {
  const contentType = ctx.req.headers["content-type"] ?? "";
  if (!contentType.startsWith("multipart/form-data")) {
    sendError(ctx, 400, `Invalid Content-Type header (${contentType}), expected multipart/form-data.`);
    return;
  }
  const parts = parseMultipart(ctx.rec.body, contentType);
  const file = parts.find((p) => p.name === "file");
  if (!file) return missing(ctx, "file");
  const field = (name: string) => parts.find((p) => p.name === name)?.data.toString("utf8");
  const model = field("model") ?? "whisper-1";
  const text = `transcribed ${file.data.length} bytes`;
  // About one audio token per 100 bytes: the fake's own rule.
  const audio = Math.max(1, Math.ceil(file.data.length / 100));
  const output = countWords(text);
  const usage = model.includes("transcribe")
    ? {
        type: "tokens",
        input_tokens: audio + 10,
        input_token_details: { text_tokens: 10, audio_tokens: audio },
        output_tokens: output,
        total_tokens: audio + 10 + output,
      }
    : { type: "duration", seconds: Math.max(1, Math.ceil(file.data.length / 16_000)) };
  if (field("stream") !== "true") return sendJson(ctx, 200, { text, usage });
  const deltas = splitText(text, ctx.timing.chunks).map((delta) =>
    sseEvent("transcript.text.delta", { type: "transcript.text.delta", delta }),
  );
  const done = { type: "transcript.text.done", text, ...(usage.type === "tokens" ? { usage } : {}) };
  await streamEvents(ctx, { head: [], body: deltas, tail: [sseEvent("transcript.text.done", done)] });
};

/** Images: token usage for the gpt-image models (dall-e reports none), one image per `n`, SSE when `stream`. */
const images: Handler = async (ctx, body) => {
  if (typeof body.prompt !== "string") return missing(ctx, "prompt");
  const n = typeof body.n === "number" ? body.n : 1;
  const model = typeof body.model === "string" ? body.model : "dall-e-2";
  const quality = typeof body.quality === "string" && IMAGE_TOKENS[body.quality] ? body.quality : "high";
  const size = typeof body.size === "string" && IMAGE_TOKENS[quality]?.[body.size] ? body.size : "1024x1024";
  const input = countWords(body.prompt) + 5;
  const output = n * (IMAGE_TOKENS[quality]?.[size] ?? 0);
  const usage = {
    total_tokens: input + output,
    input_tokens: input,
    output_tokens: output,
    input_tokens_details: { text_tokens: input, image_tokens: 0 },
  };
  const data = Array.from({ length: n }, () => ({ b64_json: TINY_PNG }));
  const gptImage = model.startsWith("gpt-image");
  if (body.stream !== true) return sendJson(ctx, 200, { created: nowSeconds(), data, ...(gptImage ? { usage } : {}) });
  const partial = { type: "image_generation.partial_image", b64_json: TINY_PNG, partial_image_index: 0 };
  const completed = {
    type: "image_generation.completed",
    b64_json: TINY_PNG,
    created_at: nowSeconds(),
    size,
    quality,
    usage,
  };
  await streamEvents(ctx, {
    head: [],
    body: [sseEvent("image_generation.partial_image", partial)],
    tail: [sseEvent("image_generation.completed", completed)],
  });
};

const retrieveModel: RawHandler = (ctx, [id = ""]) => {
  const model = MODELS.find((m) => m.id === id);
  if (model) sendJson(ctx, 200, model);
  else sendError(ctx, 404, `The model '${id}' does not exist`, { param: "model", code: "model_not_found" });
};

const listFiles: RawHandler = (ctx) => sendJson(ctx, 200, { object: "list", data: [FILE], has_more: false });
const deleteFile: RawHandler = (ctx, [id]) => sendJson(ctx, 200, { id, object: "file", deleted: true });

/** Not an OpenAI route: reflects what arrived, for tests of what a proxy forwards. */
const echo: RawHandler = (ctx) => {
  const { method, headers } = ctx.req;
  const query = ctx.url.search.replace(/^\?/, "");
  sendJson(ctx, 200, { method, path: ctx.url.pathname, query, headers, bodyBase64: ctx.rec.body.toString("base64") });
};

// ------------------------------------------------------------------------------------------------- dispatch

interface Route {
  method: string;
  path: RegExp;
  json?: Handler; // takes a JSON object body
  raw?: RawHandler;
  modelOptional?: boolean;
  streams?: boolean; // can answer with SSE
}

const ROUTES: Route[] = [
  { method: "POST", path: /^\/v1\/chat\/completions$/, json: chatCompletions, streams: true },
  { method: "POST", path: /^\/v1\/completions$/, json: completions, streams: true },
  { method: "POST", path: /^\/v1\/responses$/, json: responses, streams: true },
  { method: "POST", path: /^\/v1\/embeddings$/, json: embeddings },
  { method: "POST", path: /^\/v1\/moderations$/, json: moderations, modelOptional: true },
  { method: "POST", path: /^\/v1\/audio\/speech$/, json: speech },
  { method: "POST", path: /^\/v1\/audio\/transcriptions$/, raw: transcriptions },
  { method: "POST", path: /^\/v1\/images\/generations$/, json: images, modelOptional: true, streams: true },
  { method: "GET", path: /^\/v1\/models$/, raw: (ctx) => sendJson(ctx, 200, { object: "list", data: MODELS }) },
  { method: "GET", path: /^\/v1\/models\/(.+)$/, raw: retrieveModel },
  { method: "GET", path: /^\/v1\/files$/, raw: listFiles },
  { method: "DELETE", path: /^\/v1\/files\/([^/]+)$/, raw: deleteFile },
  { method: "GET", path: /^\/v1\/echo$/, raw: echo },
  { method: "POST", path: /^\/v1\/echo$/, raw: echo },
];

const HEADERS_429 = {
  "retry-after": "2",
  "retry-after-ms": "2000",
  "x-ratelimit-remaining-requests": "0",
  "x-ratelimit-reset-requests": "2s",
};
const rateLimitMessage = (model: string): string =>
  `Rate limit reached for ${model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. ` +
  "Please try again in 2s. Visit https://platform.openai.com/account/rate-limits to learn more.";

/** The fault named by the `x-fake-fault` header or the JSON `model` field; `null` = an unknown `fault-…` name. */
function faultOf(ctx: Ctx): Fault | null | undefined {
  const model = isRecord(ctx.rec.json) ? ctx.rec.json.model : undefined;
  const name =
    ctx.req.headers["x-fake-fault"] ?? (typeof model === "string" && model.startsWith("fault-") ? model : undefined);
  return name === undefined ? undefined : (FAULTS.find((f) => f === name) ?? null);
}

/** Answers the request when the fault is a complete response; returns false to go on with normal handling. */
async function applyFault(ctx: Ctx, fault: Fault): Promise<boolean> {
  const model = isRecord(ctx.rec.json) && typeof ctx.rec.json.model === "string" ? ctx.rec.json.model : "gpt-4o-mini";
  switch (fault) {
    case "fault-429":
      sendError(ctx, 429, rateLimitMessage(model), {
        type: "requests",
        code: "rate_limit_exceeded",
        headers: HEADERS_429,
      });
      return true;
    case "fault-500":
      sendError(ctx, 500, "The server had an error while processing your request. Sorry about that!", {
        type: "server_error",
      });
      return true;
    case "fault-503":
      sendError(ctx, 503, "The engine is currently overloaded, please try again later", { type: "server_error" });
      return true;
    case "fault-400":
      sendError(ctx, 400, `Invalid value for 'model': '${model}' (fake fault-400).`, {
        param: "model",
        code: "invalid_value",
      });
      return true;
    case "fault-redirect":
      writeHead(ctx, 307, { location: "http://127.0.0.1:1/evil", "content-length": "0" });
      ctx.res.end();
      return true;
    case "fault-401": {
      // As OpenAI does: the message echoes the start and end of the key it refused.
      const key = bearerKey(ctx.req) ?? "";
      const masked = `${key.slice(0, 8)}${"*".repeat(20)}${key.slice(-4)}`;
      sendError(
        ctx,
        401,
        `Incorrect API key provided: ${masked}. You can find your API key at https://platform.openai.com/account/api-keys.`,
        {
          code: "invalid_api_key",
        },
      );
      return true;
    }
    case "fault-region":
      sendError(ctx, 403, "Country, region, or territory not supported", {
        type: "request_forbidden",
        code: "unsupported_country_region_territory",
      });
      return true;
    case "fault-early-hints":
      // An interim 103 before the answer: a proxy must never take it for the answer.
      ctx.res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
      return false;
    case "fault-slow-first-byte":
      await sleep(ctx, Number(ctx.req.headers["x-fake-delay-ms"] ?? 5000));
      return false;
    default:
      return false; // fault-stall and fault-reset are applied by the stream writer
  }
}

function authorized(ctx: Ctx): boolean {
  const key = bearerKey(ctx.req);
  if (key === undefined) sendError(ctx, 401, NO_KEY_MESSAGE);
  else if (key === "sk-wrong") {
    const message = `Incorrect API key provided: ${key}. You can find your API key at https://platform.openai.com/account/api-keys.`;
    sendError(ctx, 401, message, { code: "invalid_api_key" });
  }
  return key !== undefined && key !== "sk-wrong";
}

/** Answers a /v1 request whose body has been read and recorded. */
export async function handle(ctx: Ctx): Promise<void> {
  if (!authorized(ctx)) return;
  const fault = faultOf(ctx);
  if (fault === null)
    return sendError(ctx, 400, `Unknown fake fault; known: ${FAULTS.join(", ")}.`, { param: "model" });
  ctx.fault = fault;
  if (fault && (await applyFault(ctx, fault))) return;

  const { method } = ctx.req;
  const match = (r: Route) => (r.method === method ? r.path.exec(ctx.url.pathname) : null);
  const route = ROUTES.find((r) => match(r));
  const params = (route && match(route)?.slice(1).map(decodeURIComponent)) ?? [];
  if ((fault === "fault-stall" || fault === "fault-reset") && !route?.streams) {
    return chatCompletions(ctx, { model: "gpt-4o-mini", messages: [] }); // any path can stall or reset
  }
  if (!route) return sendError(ctx, 404, `Invalid URL (${method} ${ctx.url.pathname})`);
  if (route.raw) return route.raw(ctx, params);
  const body = ctx.rec.json;
  if (!isRecord(body)) return sendError(ctx, 400, BAD_JSON_MESSAGE);
  if (body.model === undefined && !route.modelOptional)
    return sendError(ctx, 400, "you must provide a model parameter");
  if (ctx.strict && body.stream_options !== undefined) {
    // As older Azure api-versions answer a field they do not know.
    return sendError(ctx, 400, "Unrecognized request argument supplied: stream_options");
  }
  await route.json?.(ctx, body);
}

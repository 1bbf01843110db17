/** The client side: what the official SDK sends, as a Worker receives it behind Cloudflare. */

export const PROXY = "https://openai-workers-proxy.example.workers.dev";
export const CLIENT_HEADERS: Record<string, string> = {
  host: "openai-workers-proxy.example.workers.dev",
  accept: "application/json",
  "accept-encoding": "gzip, br",
  "accept-language": "*",
  authorization: "Bearer unused",
  "content-type": "application/json",
  "user-agent": "OpenAI/JS 6.49.0",
  "x-stainless-arch": "x64",
  "x-stainless-lang": "js",
  "x-stainless-os": "Linux",
  "x-stainless-package-version": "6.49.0",
  "x-stainless-retry-count": "0",
  "x-stainless-runtime": "node",
  "x-stainless-runtime-version": "v20.20.2",
  "x-stainless-timeout": "600",
  "cf-connecting-ip": "203.0.113.7",
  "cf-ipcountry": "NL",
  "cf-ray": "91e2e3a4b5c6d7e8",
  "cf-visitor": '{"scheme":"https"}',
  "x-forwarded-proto": "https",
  "x-real-ip": "203.0.113.7",
};
const MESSAGES = [
  { role: "system", content: "You are a helpful assistant. Answer briefly and politely." },
  { role: "user", content: "Hello, how are you? Please tell me something nice about the weather today." },
];
export const CHAT_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: MESSAGES });
export const STREAM_BODY = JSON.stringify({ model: "gpt-4o-mini", messages: MESSAGES, stream: true });
export const SEED_BODY = JSON.stringify({ messages: MESSAGES });

const encoder = new TextEncoder();

/** A maker of fresh `POST` requests to the proxy with the SDK's headers, a Content-Length and `extra` headers. */
export function post(path: string, body: string, extra: Record<string, string> = {}): () => Request {
  const headers = { ...CLIENT_HEADERS, "content-length": String(encoder.encode(body).byteLength), ...extra };
  return () => new Request(PROXY + path, { method: "POST", headers, body });
}

/** A maker of fresh CORS preflights for `/v1/chat/completions` from `origin`. */
export function preflight(origin: string): () => Request {
  return () =>
    new Request(`${PROXY}/v1/chat/completions`, {
      method: "OPTIONS",
      headers: {
        ...CLIENT_HEADERS,
        origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-stainless-arch,x-stainless-lang",
      },
    });
}

/**
 * The Realtime API over WebSocket (`GET /v1/realtime?model=…` with `Upgrade: websocket`), as OpenAI
 * serves it to servers: a bearer key in `Authorization`, the `realtime` subprotocol selected when
 * offered. Sends `session.created`; answers each `response.create` with `response.created`, one
 * `response.output_audio_transcript.delta` per word of its reply and a `response.done` whose usage
 * is `REALTIME_USAGE`; echoes nothing else. A missing key gets a 401 before the upgrade.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer } from "ws";
import { newId } from "./http.js";

/** The usage of every fake Realtime answer: 20 text and 100 audio tokens in, 10 text and 30 audio tokens out. */
export const REALTIME_USAGE = {
  total_tokens: 160,
  input_tokens: 120,
  output_tokens: 40,
  input_token_details: { text_tokens: 20, audio_tokens: 100, image_tokens: 0, cached_tokens: 0 },
  output_token_details: { text_tokens: 10, audio_tokens: 30 },
};

const REPLY = "Hello from the fake realtime model";

/** What a Realtime session saw: the upgrade's headers and the client's events. */
export type RealtimeSession = {
  path: string;
  headers: IncomingMessage["headers"];
  received: string[];
  /** The close code the fake saw, once the session is over. */
  closeCode?: number;
};

/**
 * Handles `upgrade` events of the fake's HTTP server: Realtime sessions on `/v1/realtime`, a 404
 * elsewhere. Records each session in `sessions`.
 */
export function realtimeUpgrades(sessions: RealtimeSession[]) {
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has("realtime") ? "realtime" : false),
  });
  return {
    onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
      const url = new URL(req.url ?? "/", "http://127.0.0.1");
      const reject = (status: string, body: object) => {
        const text = JSON.stringify(body);
        socket.end(
          `HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
        );
      };
      if (url.pathname !== "/v1/realtime") {
        reject("404 Not Found", { error: { message: "Invalid URL" } });
        return;
      }
      if (!/^Bearer\s+\S+/i.test(req.headers.authorization ?? "")) {
        reject("401 Unauthorized", { error: { message: "Missing bearer authentication", code: "invalid_api_key" } });
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => {
        const session: RealtimeSession = { path: url.pathname + url.search, headers: req.headers, received: [] };
        sessions.push(session);
        const send = (event: object) => ws.send(JSON.stringify(event));
        send({
          type: "session.created",
          event_id: newId("event_"),
          session: { id: newId("sess_"), model: url.searchParams.get("model") },
        });
        ws.on("message", (data) => {
          const text = data.toString();
          session.received.push(text);
          let type: unknown;
          try {
            type = (JSON.parse(text) as { type?: unknown }).type;
          } catch {
            return;
          }
          if (type !== "response.create") return;
          const id = newId("resp_");
          send({ type: "response.created", response: { id, status: "in_progress" } });
          for (const word of REPLY.split(" "))
            send({ type: "response.output_audio_transcript.delta", response_id: id, delta: `${word} ` });
          send({ type: "response.done", response: { id, status: "completed", usage: REALTIME_USAGE } });
        });
        ws.on("close", (code) => {
          session.closeCode = code;
        });
      });
    },
    close: () => wss.close(),
  };
}

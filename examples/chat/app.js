import { errorMessage, readEvents } from "./sse.js";

const params = new URLSearchParams(location.search);
/** The proxy's base URL (`?proxy=…`), without a trailing slash. */
const PROXY = (params.get("proxy") || "http://127.0.0.1:8787").replace(/\/+$/, "");
/** A client token for a proxy that asks for one (`?token=…`), sent as `Authorization: Bearer …`. */
const TOKEN = params.get("token");

const byId = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const form = byId("composer");
const prompt = byId("prompt");
const model = byId("model");
const send = byId("send");
const stop = byId("stop");
const list = byId("messages");
const status = byId("status");

/** The conversation so far, as sent to the proxy. @type {{ role: "user" | "assistant", content: string }[]} */
const history = [];
/** Set while a reply streams. @type {AbortController | null} */
let streaming = null;

/** @param {"idle" | "streaming" | "done" | "stopped" | "error"} state @param {string} text */
function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

/** A `<div>` with a class and plain text (model output never goes in as HTML). */
function div(/** @type {string} */ className, text = "") {
  const element = document.createElement("div");
  element.className = className;
  element.textContent = text;
  return element;
}

/** Appends `<div class="message KIND"><div class="content">TEXT</div></div>` and scrolls to it. */
function addMessage(/** @type {"user" | "assistant" | "error"} */ kind, text = "") {
  const message = div(`message ${kind}`);
  if (kind === "error") message.setAttribute("role", "alert");
  message.append(div("content", text));
  list.append(message);
  list.scrollTop = list.scrollHeight;
  return message;
}

/** Marks a reply as over: `done`, or `stopped` / `cut` with a short note. */
function finish(/** @type {HTMLElement} */ message, /** @type {"done" | "stopped" | "cut"} */ how) {
  message.classList.replace("streaming", how);
  if (how !== "done") message.append(div("note", how === "stopped" ? "Stopped" : "Cut off"));
}

/** A readable sentence for a failed response, by its cause. @param {Response} response */
async function describeFailure(response) {
  const text = await response.text().catch(() => "");
  const body = parseJson(text);
  const code = response.status;
  const message = errorMessage(body) ?? (text.trim().slice(0, 200) || response.statusText || "no details");
  if (code === 429) {
    const after = response.headers.get("retry-after")?.trim();
    return `Rate limited: too many requests.${after && /^\d+$/.test(after) ? ` Try again in ${after} s.` : ""}`;
  }
  if (code === 401 || code === 403) return `Not allowed: ${message}`;
  if (body?.error?.code === "proxy_not_configured" || message.startsWith("proxy is not configured")) {
    return `The proxy is misconfigured: ${message.replace(/^proxy is not configured: /, "")}`;
  }
  if (code === 502) return `The AI service is unreachable (502): ${message}`;
  if (code === 504) return `The AI service timed out (504): ${message}`;
  if (code >= 500) return `The AI service had a problem (${code}): ${message}`;
  return `The request was refused (${code}): ${message}`;
}

function parseJson(/** @type {string} */ text) {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Sends the conversation plus `text` the way the original README does, and streams the reply into the page. */
async function ask(/** @type {string} */ text) {
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const reply = addMessage("assistant");
  reply.classList.add("streaming");
  const content = reply.firstElementChild;
  const controller = new AbortController();
  streaming = controller;
  setBusy(true);
  setStatus("streaming", "Replying…");
  let received = "";
  let response;
  try {
    const headers = { "Content-Type": "application/json", ...(TOKEN && { Authorization: `Bearer ${TOKEN}` }) };
    const body = JSON.stringify({ model: model.value, messages: history, stream: true });
    response = await fetch(`${PROXY}/`, { method: "POST", headers, body, signal: controller.signal }).catch((error) => {
      if (!(error instanceof TypeError)) throw error; // an abort
      const why = "the network failed or this page's origin is not allowed (CORS)"; // the browser doesn't say which
      throw new Error(`Could not reach the proxy at ${PROXY}: ${why}.`);
    });
    if (!response.ok || !response.body) throw new Error(await describeFailure(response));
    for await (const event of readEvents(response.body)) {
      const delta = event.choices?.[0]?.delta?.content;
      if (!delta) continue;
      const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
      received += delta;
      content.textContent = received;
      if (atBottom) list.scrollTop = list.scrollHeight; // unless the reader scrolled up
    }
    finish(reply, "done");
    setStatus("done", "Done");
  } catch (error) {
    if (controller.signal.aborted) {
      finish(reply, "stopped");
      setStatus("stopped", "Stopped");
    } else {
      if (received) finish(reply, "cut");
      else reply.remove();
      const message = error instanceof Error ? error.message : String(error);
      // Once the reply has begun, any failure (an error event, a dropped connection) cut it short.
      addMessage("error", response?.ok ? `The reply was cut off: ${message}` : message);
      setStatus("error", "Failed");
    }
  } finally {
    if (received) history.push({ role: "assistant", content: received });
    streaming = null;
    setBusy(false);
  }
}

function setBusy(/** @type {boolean} */ busy) {
  send.disabled = busy;
  stop.disabled = !busy;
  list.setAttribute("aria-busy", String(busy));
  if (!busy) prompt.focus();
}

form.addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const text = prompt.value.trim();
  if (!text || streaming) return;
  prompt.value = "";
  ask(text);
});

prompt.addEventListener("keydown", (/** @type {KeyboardEvent} */ event) => {
  if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
  event.preventDefault(); // Enter sends, Shift+Enter makes a new line
  form.requestSubmit();
});

stop.addEventListener("click", () => streaming?.abort());

byId("proxy-url").textContent = PROXY;
setStatus("idle", "Ready");
setBusy(false);
document.body.dataset.ready = "true";

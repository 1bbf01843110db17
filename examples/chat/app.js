import { errorMessage, readEvents } from "./sse.js";

const params = new URLSearchParams(location.search);
/** The proxy's base URL (`?proxy=…`), without a trailing slash. */
const PROXY = (params.get("proxy") || "http://127.0.0.1:8787").replace(/\/+$/, "");
/** A client token for a proxy that asks for one (`?token=…`), sent as `Authorization: Bearer …`. */
const TOKEN = params.get("token");
/** Where the Turnstile widget comes from: Cloudflare's, or a local stand-in (`?turnstile=…`, the offline demo). */
const TURNSTILE_SCRIPT =
  params.get("turnstile") || "https://challenges.cloudflare.com/turnstile/v0/api.js?render=explicit";

const byId = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const form = byId("composer");
const prompt = byId("prompt");
const model = byId("model");
const send = byId("send");
const stop = byId("stop");
const list = byId("messages");
const status = byId("status");
const quota = byId("quota");

/** The conversation so far, as sent to the proxy. @type {{ role: "user" | "assistant", content: string }[]} */
const history = [];
/** Set while a reply streams. @type {AbortController | null} */
let streaming = null;

// ---- Sessions: a page with no backend gets a short-lived token once Turnstile says its visitor is a person.

/** On when the proxy mints sessions and the page has no token of its own. @type {{ siteKey: string, action?: string } | null} */
let sessions = null;
/** The session token and when it expires (seconds since the epoch). @type {{ token: string, expiresAt: number } | null} */
let session = null;
/** The widget's id, and its latest token not yet spent on a session. */
let widgetId = "";
/** @type {string | null} */
let turnstileToken = null;
/** Wakes whoever waits for the widget's next token. @type {((token: string) => void) | null} */
let onTurnstileToken = null;

/** Loads the Turnstile script once. */
function loadTurnstile() {
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = TURNSTILE_SCRIPT;
    script.async = true;
    script.onload = () => resolve(undefined);
    script.onerror = () => reject(new Error("The Turnstile widget could not be loaded."));
    document.head.append(script);
  });
}

/** Renders the widget: each token it issues waits for the next session (Turnstile tokens are single-use). */
function renderWidget() {
  const { turnstile } = /** @type {any} */ (window);
  widgetId = turnstile.render("#turnstile", {
    sitekey: sessions?.siteKey,
    ...(sessions?.action && { action: sessions.action }),
    callback: (/** @type {string} */ token) => {
      turnstileToken = token;
      onTurnstileToken?.(token);
    },
    "error-callback": () => setStatus("error", "Human verification failed: reload the page to try again."),
  });
}

/** A Turnstile token not yet spent: the widget's latest, or the next one after a reset. @returns {Promise<string>} */
function nextTurnstileToken() {
  if (turnstileToken !== null) {
    const token = turnstileToken;
    turnstileToken = null;
    return Promise.resolve(token);
  }
  return new Promise((resolve) => {
    onTurnstileToken = (token) => {
      onTurnstileToken = null;
      turnstileToken = null;
      resolve(token);
    };
    /** @type {any} */ (window).turnstile.reset(widgetId);
  });
}

/** The credential to send: the page's own token, or a session (minted now when there is none, or it expired). */
async function credential() {
  if (TOKEN) return TOKEN;
  if (sessions === null) return null;
  if (session !== null && session.expiresAt - 30 > Date.now() / 1000) return session.token;
  setStatus("streaming", "Verifying you are human…");
  const response = await fetch(`${PROXY}/session`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ turnstile: await nextTurnstileToken() }),
  });
  if (!response.ok) throw new Error(await describeFailure(response));
  const minted = await response.json();
  session = { token: minted.token, expiresAt: minted.expires_at };
  document.body.dataset.session = "ready";
  await showQuotaFromMe(session.token);
  return session.token;
}

/** Shows what is left of the daily budget, in dollars. @param {string | number} left @param {string | number} limit */
function setQuota(left, limit) {
  quota.hidden = false;
  quota.dataset.spent = "false";
  quota.dataset.remaining = String(left);
  quota.textContent = `Budget today: $${Number(left).toFixed(4)} of $${Number(limit).toFixed(2)} left`;
}

/** Shows what is left of the daily budget, from the `x-budget-*` headers of any answer. @param {Headers} headers */
function showQuota(headers) {
  const limit = headers.get("x-budget-limit-usd");
  const left = headers.get("x-budget-remaining-usd");
  if (limit !== null && left !== null) setQuota(left, limit);
}

/** Shows the quota before anything is sent, from `GET /me`. @param {string} token */
async function showQuotaFromMe(token) {
  const response = await fetch(`${PROXY}/me`, { headers: { Authorization: `Bearer ${token}` } }).catch(() => null);
  if (!response?.ok) return;
  const me = await response.json();
  if (me.limits?.usd_per_day != null && me.remaining?.usd_today != null)
    setQuota(me.remaining.usd_today, me.limits.usd_per_day);
}

/** Sets up sessions when the proxy offers them and the page has no token: the widget, then a session on first send. */
async function setUpSessions() {
  if (TOKEN) return;
  const health = await fetch(`${PROXY}/health`)
    .then((r) => r.json())
    .catch(() => null);
  if (!health?.modes?.includes("sessions") || !health.turnstile?.site_key) return;
  sessions = { siteKey: health.turnstile.site_key, action: health.turnstile.action };
  await loadTurnstile();
  renderWidget();
}

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
  // OpenAI's shape names the code in `error.code`; the original shape of `POST /` beside `error`.
  const errorCode = typeof body?.error === "object" ? body?.error?.code : body?.code;
  if (code === 429 && errorCode === "insufficient_quota") {
    // A daily budget or the proxy's spending limit: it renews at 00:00 UTC.
    showQuota(response.headers);
    if (!quota.hidden && quota.dataset.spent !== "true") {
      quota.dataset.spent = "true";
      quota.textContent += ": not enough for this message (renews at 00:00 UTC)";
    }
    return `Out of budget for today: ${message}`;
  }
  if (code === 429) {
    const after = response.headers.get("retry-after")?.trim();
    return `Rate limited: too many requests.${after && /^\d+$/.test(after) ? ` Try again in ${after} s.` : ""}`;
  }
  if (errorCode === "turnstile_failed" || errorCode === "turnstile_unavailable") {
    return `Human verification failed: ${message}`;
  }
  if (code === 401 || code === 403) return `Not allowed: ${message}`;
  if (errorCode === "proxy_not_configured" || message.startsWith("proxy is not configured")) {
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
    const token = await credential();
    setStatus("streaming", "Replying…");
    const headers = { "Content-Type": "application/json", ...(token && { Authorization: `Bearer ${token}` }) };
    const body = JSON.stringify({ model: model.value, messages: history, stream: true });
    response = await fetch(`${PROXY}/`, { method: "POST", headers, body, signal: controller.signal }).catch((error) => {
      if (!(error instanceof TypeError)) throw error; // an abort
      const why = "the network failed or this page's origin is not allowed (CORS)"; // the browser doesn't say which
      throw new Error(`Could not reach the proxy at ${PROXY}: ${why}.`);
    });
    showQuota(response.headers);
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
setUpSessions()
  .catch((error) => setStatus("error", error instanceof Error ? error.message : String(error)))
  .finally(() => {
    document.body.dataset.ready = "true";
  });

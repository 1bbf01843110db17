// An offline stand-in for Cloudflare Turnstile's widget script (challenges.cloudflare.com/turnstile/v0/api.js),
// served by tools/fake-turnstile for the demo and the browser tests. It implements the explicit-render API a
// page uses (turnstile.render, reset, remove, getResponse) and behaves like Turnstile's documented test site
// keys: 1x00000000000000000000AA (and 1x00000000000000000000BB) always pass, 2x00000000000000000000AB (and
// 2x00000000000000000000BB) always fail, 3x00000000000000000000FF asks the visitor to click first. Its tokens
// name the page's hostname and the action, so the stand-in siteverify can answer as the real one does.
(() => {
  const widgets = new Map();
  let next = 0;

  const base64url = (text) => btoa(text).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");

  function solve(id) {
    const widget = widgets.get(id);
    if (widget === undefined) return;
    const { options, element } = widget;
    const sitekey = String(options.sitekey ?? "");
    if (sitekey.startsWith("2x")) {
      widget.token = undefined;
      element.textContent = "Verification failed (offline Turnstile stand-in)";
      element.dataset.state = "failed";
      options["error-callback"]?.("600010");
      return;
    }
    const claims = { hostname: location.hostname, action: options.action ?? "", sitekey, nonce: crypto.randomUUID() };
    widget.token = `standin.${base64url(JSON.stringify(claims))}`;
    element.textContent = "Verified (offline Turnstile stand-in)";
    element.dataset.state = "solved";
    options.callback?.(widget.token);
  }

  function start(id) {
    const widget = widgets.get(id);
    if (widget === undefined) return;
    widget.element.dataset.state = "pending";
    if (String(widget.options.sitekey ?? "").startsWith("3x")) {
      widget.element.textContent = "";
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Verify you are human (offline Turnstile stand-in)";
      button.addEventListener("click", () => solve(id), { once: true });
      widget.element.append(button);
      return;
    }
    widget.element.textContent = "Verifying… (offline Turnstile stand-in)";
    setTimeout(() => solve(id), 50);
  }

  window.turnstile = {
    render(container, options = {}) {
      const host = typeof container === "string" ? document.querySelector(container) : container;
      if (!host) throw new Error("turnstile.render: no such container");
      const element = document.createElement("div");
      element.className = "turnstile-standin";
      host.append(element);
      const id = `standin-${++next}`;
      widgets.set(id, { options, element, token: undefined });
      start(id);
      return id;
    },
    reset(id) {
      const widget = widgets.get(id ?? [...widgets.keys()].at(-1));
      if (widget === undefined) return;
      widget.token = undefined;
      start(id ?? [...widgets.keys()].at(-1));
    },
    remove(id) {
      widgets.get(id)?.element.remove();
      widgets.delete(id);
    },
    getResponse(id) {
      return widgets.get(id ?? [...widgets.keys()].at(-1))?.token;
    },
    isExpired() {
      return false;
    },
  };
})();

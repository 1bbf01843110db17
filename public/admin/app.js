// The operator's dashboard: what the proxy spent, from GET /admin/usage and GET /admin/limits on this same
// origin, with the admin token the operator types (kept in this tab's sessionStorage only). Charts by uPlot.

const byId = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));
const status = byId("status");
const DAY_MS = 86_400_000;

/** @param {"idle" | "loading" | "error" | "done"} state @param {string} text */
function setStatus(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

/** A GET to one of the admin routes, with the token; throws a readable error. */
async function get(/** @type {string} */ path, /** @type {string} */ token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body?.error?.message ?? response.statusText;
    throw new Error(response.status === 401 ? "That admin token is not the proxy's ADMIN_TOKEN." : message);
  }
  return body;
}

const usd = (/** @type {number | null} */ n) => (n === null ? "–" : `$${n < 1 ? n.toFixed(4) : n.toFixed(2)}`);
const count = (/** @type {number} */ n) => n.toLocaleString("en-US");

/** The report's rows for a grouping over the period. */
async function report(/** @type {string} */ token, /** @type {string} */ groupBy, /** @type {number} */ days) {
  const from = new Date(Date.now() - (days - 1) * DAY_MS).toISOString().slice(0, 10);
  return (await get(`/admin/usage?group_by=${groupBy}&from=${from}`, token)).rows;
}

/** Dollar ticks to two significant figures, so that small amounts do not all read "0.001". */
const dollarTicks = (/** @type {any} */ _u, /** @type {number[]} */ ticks) =>
  ticks.map((t) => `$${Number(t.toPrecision(2))}`);

/** Replaces a chart container's content with a uPlot chart. */
function chart(/** @type {string} */ id, /** @type {any} */ options, /** @type {any[]} */ data) {
  const host = byId(id);
  host.replaceChildren();
  const width = Math.max(280, host.clientWidth || 500);
  // @ts-expect-error uPlot is the global the vendored script defines.
  return new uPlot({ width, height: 220, ...options }, data, host);
}

/** A bar chart of `rows` by their key (models, upstreams): bars over the row indexes, labelled by key. */
function barChart(/** @type {string} */ id, /** @type {{ key: string, cost_usd: number | null }[]} */ rows) {
  const top = rows.slice(0, 8);
  const xs = top.map((_, i) => i);
  // @ts-expect-error uPlot is the global the vendored script defines.
  const bars = uPlot.paths.bars({ size: [0.6, 80] });
  chart(
    id,
    {
      scales: { x: { time: false, range: [-0.5, Math.max(0.5, top.length - 0.5)] } },
      axes: [
        { values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) => ticks.map((t) => top[t]?.key ?? "") },
        { values: dollarTicks },
      ],
      series: [
        {},
        { label: "USD", fill: "rgba(47, 111, 235, 0.5)", stroke: "#2f6feb", paths: bars, points: { show: false } },
      ],
      legend: { show: false },
    },
    [xs, top.map((row) => row.cost_usd ?? 0)],
  );
}

/** Every day of the period, with the report's rows filled in (0 for a day without requests). */
function daily(/** @type {any[]} */ rows, /** @type {number} */ days) {
  const byDay = new Map(rows.map((row) => [row.key, row]));
  const xs = [];
  const cost = [];
  const tokens = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(Date.now() - i * DAY_MS).toISOString().slice(0, 10);
    const row = byDay.get(day);
    xs.push(Date.parse(`${day}T00:00:00Z`) / 1000);
    cost.push(row?.cost_usd ?? 0);
    tokens.push(row?.total_tokens ?? 0);
  }
  return { xs, cost, tokens };
}

function showLimits(/** @type {any} */ limits) {
  const meters = [];
  if (limits.ceiling) {
    const { limit_usd, spent_usd, held_usd } = limits.ceiling;
    meters.push(
      meter(
        "Proxy's daily ceiling",
        spent_usd + held_usd,
        limit_usd,
        `${usd(spent_usd)} spent, ${usd(held_usd)} held of ${usd(limit_usd)}`,
      ),
    );
  }
  for (const budget of limits.budgets) {
    if (budget.usd) {
      const used = budget.usd.limit - budget.usd.remaining;
      meters.push(meter(`${budget.client} (USD)`, used, budget.usd.limit, `${usd(used)} of ${usd(budget.usd.limit)}`));
    }
    if (budget.tokens) {
      const used = budget.tokens.limit - budget.tokens.remaining;
      meters.push(
        meter(
          `${budget.client} (tokens)`,
          used,
          budget.tokens.limit,
          `${count(used)} of ${count(budget.tokens.limit)}`,
        ),
      );
    }
  }
  if (meters.length === 0) {
    const none = document.createElement("p");
    none.textContent = "No ceiling and no key budgets are set.";
    meters.push(none);
  }
  byId("limits").replaceChildren(...meters);
}

function meter(
  /** @type {string} */ label,
  /** @type {number} */ used,
  /** @type {number} */ limit,
  /** @type {string} */ text,
) {
  const row = document.createElement("div");
  const share = limit > 0 ? Math.min(1, used / limit) : 0;
  row.className = `meter${share >= 0.999 ? " full" : ""}`;
  const name = document.createElement("span");
  name.textContent = label;
  const bar = document.createElement("div");
  bar.className = "bar";
  const fill = document.createElement("span");
  fill.style.width = `${(share * 100).toFixed(1)}%`;
  bar.append(fill);
  const figure = document.createElement("span");
  figure.textContent = text;
  row.append(name, bar, figure);
  return row;
}

function showTotals(/** @type {any[]} */ byClient) {
  const sum = (/** @type {(row: any) => number} */ pick) => byClient.reduce((total, row) => total + pick(row), 0);
  const totals = [
    ["Spent", usd(sum((row) => row.cost_usd ?? 0))],
    ["Requests", count(sum((row) => row.requests))],
    ["Tokens", count(sum((row) => row.total_tokens))],
    ["Clients", count(byClient.length)],
  ];
  byId("totals").replaceChildren(
    ...totals.map(([label, value]) => {
      const total = document.createElement("div");
      total.className = "total";
      const strong = document.createElement("strong");
      strong.textContent = value;
      total.append(strong, label);
      return total;
    }),
  );
}

function showSpenders(/** @type {any[]} */ byClient) {
  const rows = byClient.slice(0, 20).map((row) => {
    const tr = document.createElement("tr");
    for (const value of [
      row.key,
      count(row.requests),
      count(row.total_tokens),
      usd(row.cost_usd),
      count(row.incomplete),
    ]) {
      const td = document.createElement("td");
      td.textContent = value;
      tr.append(td);
    }
    return tr;
  });
  byId("spenders")
    .querySelector("tbody")
    .replaceChildren(...rows);
}

async function show(/** @type {string} */ token, /** @type {number} */ days) {
  setStatus("loading", "Loading…");
  const [byDay, byModel, byClient, byUpstream, limits] = await Promise.all([
    report(token, "day", days),
    report(token, "model", days),
    report(token, "client", days),
    report(token, "upstream", days),
    get("/admin/limits", token),
  ]);
  byId("dashboard").hidden = false;
  showTotals(byClient);
  showLimits(limits);
  const { xs, cost, tokens } = daily(byDay, days);
  const line = (/** @type {string} */ label, /** @type {string} */ color) => ({
    series: [{}, { label, stroke: color, fill: `${color}33`, width: 2 }],
    legend: { show: false },
  });
  chart("chart-day-cost", { ...line("USD", "#2f6feb"), axes: [{}, { values: dollarTicks }] }, [xs, cost]);
  chart("chart-day-tokens", line("tokens", "#1a7f37"), [xs, tokens]);
  barChart("chart-model", byModel);
  barChart("chart-upstream", byUpstream);
  showSpenders(byClient);
  setStatus("done", `As of ${new Date().toLocaleString()}, the last ${days === 1 ? "day" : `${days} days`} (UTC).`);
  document.body.dataset.ready = "true";
}

byId("login").addEventListener("submit", (/** @type {SubmitEvent} */ event) => {
  event.preventDefault();
  const token = byId("token").value.trim();
  sessionStorage.setItem("admin-token", token);
  show(token, Number(byId("days").value)).catch((error) =>
    setStatus("error", error instanceof Error ? error.message : String(error)),
  );
});

const saved = sessionStorage.getItem("admin-token");
if (saved) {
  byId("token").value = saved;
  window.addEventListener("load", () => byId("login").requestSubmit());
}

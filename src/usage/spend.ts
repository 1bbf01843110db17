import { type Price, priceFor } from "../config";
import { costUsd } from "./cost";
import { plainUsage, type Usage } from "./usage";

/**
 * How one request ended:
 * - `not_sent`: upstream never saw it (the proxy refused it, or the client had gone);
 * - `unreachable`: upstream could not be reached;
 * - `upstream_error`: upstream answered with an error status (or a redirect), which OpenAI does not bill;
 * - `timeout`: upstream received it and sent no response headers in time;
 * - `client_closed`: the client went away before upstream's response headers;
 * - `complete`: the answer went to the client whole;
 * - `cut`, `stalled`, `cancelled`: a stream that upstream broke off, went silent in, or the client left.
 */
export type Ending =
  | "not_sent"
  | "unreachable"
  | "upstream_error"
  | "timeout"
  | "client_closed"
  | "complete"
  | "cut"
  | "stalled"
  | "cancelled";

/** How a request ended and what upstream said it used: the one value all accounting reads. */
export type Outcome = {
  ending: Ending;
  /** Upstream's status; null when it sent none. */
  upstreamStatus: number | null;
  /** The answer was a stream of server-sent events. */
  stream: boolean;
  /** What upstream reported; null when it reported nothing the proxy could read. */
  usage: Usage | null;
  /** Events of a stream that carried output: about one output token each, for an estimate. */
  outputEvents: number;
  /** When upstream's response headers came, in milliseconds since the epoch; null when none came. */
  headersAt: number | null;
  /** When upstream's first output came (for a JSON answer, its headers). */
  firstOutputAt: number | null;
  /** The upstream that answered (the last one tried); null when none was tried. */
  upstream: string | null;
  /** How many tries it took, across keys and upstreams. */
  tries: number;
  /** Which of the upstream's keys answered, by index (never the key); null when none was tried. */
  key: number | null;
};

/** The outcome of a request that upstream never saw. */
export const NOT_SENT: Outcome = {
  ending: "not_sent",
  upstreamStatus: null,
  stream: false,
  usage: null,
  outputEvents: 0,
  headersAt: null,
  firstOutputAt: null,
  upstream: null,
  tries: 0,
  key: null,
};

/** What a request may spend at most, worked out before it is sent: what budgets reserve. */
export type Reservation = {
  /** Input tokens at most (see `jsonInputTokens`). */
  inputTokens: number;
  /** Input tokens likely: what a stream cut before its usage is charged for its input. */
  inputEstimate: number;
  /** The output the request may generate: its own cap, or the one the proxy set, times its choices. */
  outputTokens: number;
};

/** The reservation of a request that bills nothing. */
export const NO_RESERVATION: Reservation = { inputTokens: 0, inputEstimate: 0, outputTokens: 0 };

/** What a request is known to spend: what one outcome settles at. */
export type Spend = {
  /**
   * Where the figures come from: `none` (nothing was spent), `reported` (upstream's usage),
   * `estimate` (a stream without usage: its input estimate plus one token per output event),
   * `reservation` (upstream may have worked and said nothing: the reservation in full).
   */
  basis: "none" | "reported" | "estimate" | "reservation";
  usage: Usage;
  /** `usage.promptTokens + usage.completionTokens`: what token budgets count. */
  tokens: number;
  /** In US dollars, at the model's price, or at the fallback price when it has none. */
  costUsd: number;
  /** The model has no price: `costUsd` is at the fallback price, an estimate on the safe side. */
  costEstimated: boolean;
  /** The figures are not upstream's own (`estimate` or `reservation`). */
  incomplete: boolean;
};

/** The prices a cost is worked out at: the table with `MODEL_PRICES`, and the price of a model in neither. */
export type Pricing = { prices: ReadonlyMap<string, Price>; fallbackPrice: Price };

/**
 * The price `model` is charged at, and whether it is the fallback one (the model, or no model,
 * has no price of its own).
 *
 * @example
 * priceOf("gpt-5.9-preview", config.usage); // { price: FALLBACK_PRICE, estimated: true }
 */
export function priceOf(model: string | null, pricing: Pricing): { price: Price; estimated: boolean } {
  const own = model === null ? null : priceFor(model, pricing.prices);
  return own === null ? { price: pricing.fallbackPrice, estimated: true } : { price: own, estimated: false };
}

/**
 * What a reservation may cost at most, in US dollars: its input tokens at the model's dearest input
 * rate and its output tokens at its dearest output rate (text, audio or image: a request may turn
 * out to be all audio), at the model's price or the fallback price. What dollar budgets and the
 * spend ceiling reserve.
 *
 * @example
 * reservationCostUsd({ model: "gpt-4o-mini", billing: "tokens", reservation: { inputTokens: 1000, outputTokens: 4096 } }, pricing);
 */
export function reservationCostUsd(context: SpendContext, pricing: Pricing): number {
  if (context.billing !== "tokens") return 0;
  const { inputTokens, outputTokens } = context.reservation;
  return dearestCostUsd(priceOf(context.model, pricing).price, plainUsage(inputTokens, outputTokens));
}

/** `usage` with each input token at the price's dearest input rate and each output token at its dearest output rate. */
function dearestCostUsd(price: Price, usage: Usage): number {
  const input = Math.max(price.input, price.cachedInput, price.audioInput, price.imageInput);
  const output = Math.max(price.output, price.audioOutput, price.imageOutput);
  return (usage.promptTokens * input + usage.completionTokens * output) / 1_000_000;
}

/**
 * How a request can be billed: `tokens`, a POST to an endpoint that bills tokens (chat,
 * responses, embeddings, images, audio…); `reported`, any other POST, which costs what its answer
 * reports, if anything; `free`, reads and deletes, which cost nothing whatever their answer holds
 * (a retrieved response repeats the usage it was already charged for).
 */
export type Billing = "tokens" | "reported" | "free";

/** What a request about to be sent is: its model, how its endpoint bills, what it reserved. */
export type SpendContext = {
  model: string | null;
  billing: Billing;
  reservation: Reservation;
  /**
   * Upstream may bill output that its stream does not show: a reasoning model's hidden reasoning,
   * or a `background` response, which goes on after the client leaves. A cut stream of such a
   * request is charged its reservation, not an estimate from the events that came.
   */
  unseenOutput?: boolean;
};

/**
 * What a request spent, from how it ended. The one place this is decided:
 * - nothing for a read or a delete, when upstream never received the request, or when it answered
 *   with an error (OpenAI bills no failed request);
 * - upstream's reported usage whenever there is one, on any path;
 * - nothing for an answer without usage from a POST that bills no tokens (files, batches…);
 * - for a token-billed stream without usage (cut, stalled, cancelled, or an upstream that never
 *   reports it): the estimate, marked incomplete: its likely input (its input at most when the client
 *   left) and a token per output event; the reservation when upstream may have billed output the
 *   stream did not show (`unseenOutput`);
 * - the reservation in full, marked incomplete, when upstream received a token-billed request and
 *   nothing can be known: no answer in time, the client gone before the answer, an answer without usage.
 * Incomplete figures are priced at each kind's dearest rate (text, audio, image), as reservations are.
 *
 * @example
 * spendOf(NOT_SENT, { model: "gpt-4o", billing: "tokens", reservation: { inputTokens: 10, outputTokens: 4000 } }, pricing).tokens; // 0
 */
export function spendOf(outcome: Outcome, context: SpendContext, pricing: Pricing): Spend {
  const { reservation, billing } = context;
  const nothing = () => spend("none", plainUsage(0, 0), context, pricing);
  const sent = outcome.ending !== "not_sent" && outcome.ending !== "unreachable" && outcome.ending !== "upstream_error";
  if (billing === "free" || !sent) return nothing();
  if (outcome.usage !== null) return spend("reported", outcome.usage, context, pricing);
  if (billing === "reported") return nothing();
  if (outcome.stream && context.unseenOutput !== true) {
    // Upstream billed the whole input. A stream the client left is charged its input at most: the
    // client chose to leave before the usage, and its input's tokens cannot be counted here.
    const input = outcome.ending === "cancelled" ? reservation.inputTokens : reservation.inputEstimate;
    return spend("estimate", plainUsage(input, outcome.outputEvents), context, pricing);
  }
  return spend("reservation", plainUsage(reservation.inputTokens, reservation.outputTokens), context, pricing);
}

function spend(basis: Spend["basis"], usage: Usage, context: SpendContext, pricing: Pricing): Spend {
  const { price, estimated } = priceOf(context.model, pricing);
  const incomplete = basis === "estimate" || basis === "reservation";
  const tokens = usage.promptTokens + usage.completionTokens;
  return {
    basis,
    usage,
    tokens,
    // Figures that are not upstream's are priced on the safe side: each token at its kind's dearest rate.
    costUsd: basis === "none" ? 0 : incomplete ? dearestCostUsd(price, usage) : costUsd(price, usage),
    costEstimated: basis !== "none" && estimated,
    incomplete,
  };
}

import { matchesAny, type Upstream } from "../config";

/**
 * What this isolate knows of each key of each upstream: resting after a 429 until a time, or out of
 * the pool after a 401. Plain values, per isolate (a recycled isolate learns again, at the cost of
 * one more try); no request ever awaits another's.
 */
type KeyState = { restUntil: number; out: boolean; refused: boolean };
const keyStates = new Map<string, KeyState>();
/** The next key of each upstream, in turn. */
const turns = new Map<string, number>();

const stateOf = (upstream: Upstream, index: number): KeyState => {
  // Per upstream and key (the key held in memory only, never logged): two upstreams that share a key
  // each keep their own standing of it.
  const id = `${upstream.name}\n${upstream.baseUrl}\n${upstream.keys[index] ?? index}`;
  let state = keyStates.get(id);
  if (state === undefined) {
    state = { restUntil: 0, out: false, refused: false };
    keyStates.set(id, state);
  }
  return state;
};

/**
 * The upstreams that serve `model`, in the order to try them: the first drawn by weight, then the
 * rest by weight in turn. A request that names no model goes to the first upstream. Empty when no
 * upstream serves the model.
 *
 * @example
 * routeFor(config.upstream.upstreams, "gpt-4o-mini")[0]?.name; // "openai" (or "azure", by weight)
 */
export function routeFor(upstreams: readonly Upstream[], model: string | null, random = Math.random): Upstream[] {
  if (model === null) return upstreams.slice(0, 1);
  const serving = upstreams.filter((upstream) => upstream.models === null || matchesAny(upstream.models, model));
  const order: Upstream[] = [];
  const left = [...serving];
  while (left.length > 0) {
    const total = left.reduce((sum, upstream) => sum + upstream.weight, 0);
    let draw = random() * total;
    let index = left.findIndex((upstream) => {
      draw -= upstream.weight;
      return draw < 0;
    });
    if (index === -1) index = left.length - 1;
    order.push(...left.splice(index, 1));
  }
  return order;
}

/**
 * The key of `upstream` to use next, in turn: one neither out of the pool nor resting; when every
 * key in the pool rests, the one that rests the least (better a try than a refusal). Null when
 * every key is out of the pool.
 */
export function nextKey(upstream: Upstream, now = Date.now()): number | null {
  const count = upstream.keys.length;
  const start = turns.get(`${upstream.name}\n${upstream.baseUrl}`) ?? 0;
  let resting: { index: number; until: number } | null = null;
  for (let step = 0; step < count; step++) {
    const index = (start + step) % count;
    const state = stateOf(upstream, index);
    if (state.out) continue;
    if (state.restUntil <= now) {
      turns.set(`${upstream.name}\n${upstream.baseUrl}`, (index + 1) % count);
      return index;
    }
    if (resting === null || state.restUntil < resting.until) resting = { index, until: state.restUntil };
  }
  return resting?.index ?? null;
}

/** Whether `upstream` has a key (other than `except`) that is neither out of the pool nor resting. */
export function hasReadyKey(upstream: Upstream, except: number | null = null, now = Date.now()): boolean {
  return upstream.keys.some((_, index) => {
    if (index === except) return false;
    const state = stateOf(upstream, index);
    return !state.out && state.restUntil <= now;
  });
}

/** `route` with the upstreams that have a key ready first, in their order: one whose keys all rest comes last. */
export function readyFirst(route: readonly Upstream[]): Upstream[] {
  const ready: Upstream[] = [];
  const resting: Upstream[] = [];
  for (const upstream of route) (hasReadyKey(upstream) ? ready : resting).push(upstream);
  return [...ready, ...resting];
}

/** Rests a key that upstream answered 429 until `until` (ms since the epoch). */
export function restKey(upstream: Upstream, index: number, until: number): void {
  const state = stateOf(upstream, index);
  state.restUntil = Math.max(state.restUntil, until);
}

/**
 * Takes a key that upstream refused (401) out of this isolate's pool, unless it is the last one in
 * it: an upstream keeps trying its last key (a rotated secret comes with a new deployment anyway).
 */
export function dropKey(upstream: Upstream, index: number): void {
  const state = stateOf(upstream, index);
  state.refused = true;
  const others = upstream.keys.some((_, other) => other !== index && !stateOf(upstream, other).out);
  if (others) state.out = true;
}

/**
 * How each upstream stands in this isolate: `degraded` when a key was refused or every key rests,
 * `down` when its only keys left are refused. Names no key.
 */
export function upstreamHealth(
  upstreams: readonly Upstream[],
  now = Date.now(),
): { name: string; status: "ok" | "degraded" | "down" }[] {
  return upstreams.map((upstream) => {
    const states = upstream.keys.map((_, index) => stateOf(upstream, index));
    const usable = states.filter((state) => !state.refused);
    const status =
      usable.length === 0
        ? "down"
        : usable.length < states.length || usable.every((state) => state.restUntil > now)
          ? "degraded"
          : "ok";
    return { name: upstream.name, status };
  });
}

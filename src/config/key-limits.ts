/**
 * One client key's overrides from `PROXY_KEY_LIMITS`: requests per minute, concurrent streams,
 * tokens and US dollars per UTC day.
 */
export type KeyLimits = { rpm?: number; maxStreams?: number; tokensPerDay?: number; usdPerDay?: number };

const FIELDS = { rpm: "rpm", streams: "maxStreams", tokens_per_day: "tokensPerDay", usd_per_day: "usdPerDay" } as const;

/**
 * Parses `PROXY_KEY_LIMITS`: comma-separated items, where `name:limit=value` starts the overrides
 * for the client key `name` and a bare `limit=value` adds to the one before it. Limits are `rpm`,
 * `streams` and `tokens_per_day`, each a positive integer, and `usd_per_day`, a positive number of
 * US dollars. Never throws: every bad item is reported in `errors`, by item, and the good ones are
 * still parsed.
 *
 * @example
 * parseKeyLimits("backend:rpm=600,streams=50,web:rpm=30").limits;
 * // Map { "backend" => { rpm: 600, maxStreams: 50 }, "web" => { rpm: 30 } }
 */
export function parseKeyLimits(raw: string | undefined): { limits: Map<string, KeyLimits>; errors: string[] } {
  const limits = new Map<string, KeyLimits>();
  const errors: string[] = [];
  let current: { name: string; limits: KeyLimits } | undefined;

  for (const item of (raw ?? "").split(",").map((part) => part.trim())) {
    if (item === "") continue;
    let setting = item;
    const named = /^([^:=]*):(.*)$/.exec(item);
    if (named !== null) {
      const name = (named[1] ?? "").trim();
      setting = (named[2] ?? "").trim();
      if (name === "" || /\s/.test(name)) {
        errors.push(`"${item}": a key name must be non-empty, without spaces`);
        current = undefined;
        continue;
      }
      if (limits.has(name)) errors.push(`"${item}": ${name} is listed twice`);
      current = { name, limits: limits.get(name) ?? {} };
      limits.set(name, current.limits);
      if (setting === "") {
        errors.push(`"${item}": no limit after the key name (e.g. ${name}:rpm=60)`);
        continue;
      }
    } else if (current === undefined) {
      errors.push(`"${item}": no key name before it (e.g. web:${item})`);
      continue;
    }

    const pair = /^([^=]*)=(.*)$/.exec(setting);
    if (pair === null) {
      errors.push(`"${item}": expected limit=value (e.g. rpm=60)`);
      continue;
    }
    const key = (pair[1] ?? "").trim();
    const value = (pair[2] ?? "").trim();
    if (!Object.hasOwn(FIELDS, key)) {
      errors.push(`"${item}": unknown limit "${key}" (use rpm, streams, tokens_per_day or usd_per_day)`);
      continue;
    }
    const field = FIELDS[key as keyof typeof FIELDS];
    const number = Number(value);
    const dollars = field === "usdPerDay";
    const valid = dollars
      ? /^\d+(\.\d+)?$/.test(value) && Number.isFinite(number) && number > 0
      : /^\d+$/.test(value) && Number.isSafeInteger(number) && number >= 1;
    if (!valid) {
      errors.push(
        `"${item}": ${key} must be a positive ${dollars ? "number of US dollars" : "integer"} (got "${value}")`,
      );
      continue;
    }
    if (current.limits[field] !== undefined) {
      errors.push(`"${item}": ${key} is already set for ${current.name}`);
      continue;
    }
    current.limits[field] = number;
  }
  return { limits, errors };
}

const UNITS = { s: 1, m: 60, h: 3600, d: 86400 } as const;

/**
 * Parses a lifetime such as `30s`, `15m`, `1h` or `7d` into seconds.
 *
 * @example
 * parseTtl("15m") // 900
 */
export function parseTtl(text: string): number {
  const match = /^(\d+)([smhd])$/.exec(text.trim());
  const amount = Number(match?.[1]);
  const unit = match?.[2] as keyof typeof UNITS | undefined;
  if (unit === undefined || !Number.isSafeInteger(amount) || amount <= 0) {
    throw new Error(`--ttl must be a positive number with a unit: 30s, 15m, 1h or 7d (got "${text}")`);
  }
  return amount * UNITS[unit];
}

/**
 * Compiles comma-separated name patterns (`gpt-4o-mini,gpt-4.1*`): `*` matches any run of
 * characters, everything else literally. Empty input means "no restriction" (null).
 *
 * @example
 * matchesAny(compilePatterns("gpt-4.1*"), "gpt-4.1-mini") // true
 */
export function compilePatterns(raw: string | readonly string[] | undefined): RegExp[] | null {
  const items = (typeof raw === "string" ? raw.split(",") : (raw ?? [])).map((p) => p.trim()).filter(Boolean);
  if (items.length === 0) return null;
  return items.map((p) => new RegExp(`^${p.split("*").map(escapeLiteral).join(".*")}$`));
}

export function matchesAny(patterns: readonly RegExp[], value: string): boolean {
  return patterns.some((pattern) => pattern.test(value));
}

function escapeLiteral(literal: string): string {
  return literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

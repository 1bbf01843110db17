import type { Context, ContextVariableMap } from "hono";

/**
 * A context variable that an earlier step may not have set (the request ended before it, or the
 * step had nothing to set): undefined then, whatever the variable's declared type says.
 *
 * @example
 * const admission = maybe(c, "admission"); // undefined when no limit applied
 */
export function maybe<K extends keyof ContextVariableMap>(c: Context, key: K): ContextVariableMap[K] | undefined {
  return (c.var as Partial<ContextVariableMap>)[key];
}

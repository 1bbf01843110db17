import { isRecord } from "../usage/usage";

/**
 * Asks a streaming chat request for its usage (`stream_options.include_usage`) when the client
 * did not, so that every stream's tokens are counted. Returns true when it changed `request`:
 * the proxy then takes upstream's extra usage chunk out of what the client receives.
 *
 * @example
 * if (askForUsage(json)) body = JSON.stringify(json);
 */
export function askForUsage(request: Record<string, unknown>): boolean {
  if (request.stream !== true) return false;
  const options = request.stream_options;
  const current = isRecord(options) ? options : {};
  if (current.include_usage === true) return false;
  request.stream_options = { ...current, include_usage: true };
  return true;
}

import type { Upstream, UpstreamSettings } from "../config";
import { isRecord } from "../lib/json";
import { nextKey } from "../proxy/pool";
import { upstreamHeaders, upstreamUrl } from "../proxy/upstream";

/** How long one upstream may take to list its models before the list goes on without it. */
const LIST_TIMEOUT_MS = 10_000;

/** One entry of `GET /v1/models`, in OpenAI's shape. */
type Model = { id: string; object: "model"; created: number; owned_by: string };

/**
 * `GET /v1/models` across upstreams: the union of the models each serves and the aliases, in
 * OpenAI's list shape. An upstream that names its models (or its Azure deployments) is listed by
 * them; one that serves any model, or models by pattern, is asked for its own list (filtered by its
 * patterns); one that cannot be asked is left out, never failing the list. Each model appears once,
 * owned by the first upstream that serves it; an alias is owned by `alias:<model it stands for>`.
 *
 * @example
 * return c.json(await modelList(config.upstream, c.req.raw.headers));
 */
export async function modelList(
  settings: UpstreamSettings,
  clientHeaders: Headers,
): Promise<{ object: "list"; data: Model[] }> {
  const lists = await Promise.all(settings.upstreams.map((upstream) => modelsOf(upstream, clientHeaders)));
  const seen = new Set<string>();
  const data: Model[] = [];
  settings.upstreams.forEach((upstream, index) => {
    for (const model of lists[index] ?? []) {
      if (seen.has(model.id)) continue;
      seen.add(model.id);
      data.push({ ...model, owned_by: model.owned_by || upstream.name });
    }
  });
  for (const [alias, model] of settings.aliases) {
    if (seen.has(alias)) continue;
    seen.add(alias);
    data.push({ id: alias, object: "model", created: 0, owned_by: `alias:${model}` });
  }
  return { object: "list", data };
}

async function modelsOf(upstream: Upstream, clientHeaders: Headers): Promise<Model[]> {
  const named = upstream.modelNames.map((id): Model => ({ id, object: "model", created: 0, owned_by: upstream.name }));
  const patterns = upstream.models;
  const allNamed = patterns !== null && patterns.length === upstream.modelNames.length;
  if (allNamed || upstream.azure?.deployments) return named;
  const key = nextKey(upstream);
  if (key === null) return named;
  try {
    const headers = upstreamHeaders(upstream, upstream.keys[key] ?? "", clientHeaders);
    const response = await fetch(upstreamUrl(upstream, "/models", "", null), {
      headers,
      redirect: "manual",
      signal: AbortSignal.timeout(LIST_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`answered ${response.status}`);
    const body: unknown = await response.json();
    const listed = isRecord(body) && Array.isArray(body.data) ? body.data : [];
    const models = listed.flatMap((entry): Model[] => {
      if (!isRecord(entry) || typeof entry.id !== "string") return [];
      if (patterns !== null && !patterns.some((pattern) => pattern.test(entry.id as string))) return [];
      const created = typeof entry.created === "number" ? entry.created : 0;
      const owner = typeof entry.owned_by === "string" ? entry.owned_by : upstream.name;
      return [{ id: entry.id, object: "model", created, owned_by: owner }];
    });
    return [...named.filter((model) => !models.some((m) => m.id === model.id)), ...models];
  } catch (error) {
    console.warn(JSON.stringify({ level: "warn", msg: "model list", upstream: upstream.name, error: String(error) }));
    return named;
  }
}

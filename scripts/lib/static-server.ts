import { readFile, realpath, stat } from "node:fs/promises";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, resolve, sep } from "node:path";

/** A static file server on 127.0.0.1. */
export type StaticServer = {
  /** e.g. `http://127.0.0.1:8788` */
  url: string;
  port: number;
  close: () => Promise<void>;
};

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
};

/**
 * Serves the files under `root` (GET and HEAD; `index.html` for a directory path such as `/`), uncached.
 * Anything else is 404: unknown file types, dotfiles, and paths that resolve outside `root`, symlinks included.
 *
 * @example
 * const page = await startStaticServer({ root: "examples/chat", port: 8788 });
 */
export async function startStaticServer(options: {
  root: string;
  port?: number;
  host?: "127.0.0.1";
}): Promise<StaticServer> {
  const root = await realpath(resolve(options.root));
  const server = createServer((req, res) => {
    serve(root, req, res).catch(() => send(res, 500, "Internal Server Error"));
  });
  await new Promise<void>((ready, fail) => {
    server.once("error", fail);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => ready());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      new Promise<void>((done, fail) => {
        server.close((error) => (error ? fail(error) : done()));
        server.closeAllConnections(); // browsers keep idle connections open
      }),
  };
}

async function serve(root: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return send(res, 405, "Method Not Allowed");
  }
  const file = await findFile(root, req.url ?? "/");
  const type = file && CONTENT_TYPES[extname(file)];
  if (!file || !type) return send(res, 404, "Not Found");
  const body = await readFile(file);
  res.writeHead(200, {
    "content-type": type,
    "content-length": body.length,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
  res.end(req.method === "HEAD" ? undefined : body);
}

/** The real path of the file a request names, or undefined when there is none under `root`. */
async function findFile(root: string, url: string): Promise<string | undefined> {
  let path: string;
  try {
    path = decodeURIComponent(new URL(url, "http://localhost").pathname);
  } catch {
    return undefined; // malformed percent-encoding
  }
  if (path.includes("\0") || path.split("/").some((part) => part.startsWith("."))) return undefined;
  if (path.endsWith("/")) path += "index.html";
  const wanted = resolve(root, `.${path}`);
  if (!isUnder(root, wanted)) return undefined;
  try {
    const real = await realpath(wanted);
    return isUnder(root, real) && (await stat(real)).isFile() ? real : undefined;
  } catch {
    return undefined; // no such file
  }
}

const isUnder = (root: string, path: string): boolean => path === root || path.startsWith(root + sep);

function send(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
  res.end(text);
}

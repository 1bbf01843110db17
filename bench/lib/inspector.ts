import WebSocket from "ws";

/** A session on a Worker's V8 inspector, through workerd's inspector port. */
export type Inspector = {
  send: (method: string, params?: object) => Promise<unknown>;
  close: () => void;
};

/**
 * Opens an inspector session on the Worker named `name` (workerd lists it as `core:user:<name>`)
 * on workerd's inspector at 127.0.0.1:`port`.
 *
 * @throws Error when workerd's inspector lists no such Worker.
 */
export async function inspectWorker(port: number, name: string): Promise<Inspector> {
  const targets = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as {
    id: string;
    webSocketDebuggerUrl: string;
  }[];
  const target = targets.find((t) => t.id === `core:user:${name}`);
  if (target === undefined) throw new Error(`workerd's inspector lists no Worker named ${name}`);
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((open, fail) => socket.once("open", open).once("error", fail));
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    if (message.id === undefined) return;
    const call = pending.get(message.id);
    pending.delete(message.id);
    if (message.error !== undefined) call?.reject(new Error(message.error.message));
    else call?.resolve(message.result);
  });
  let next = 0;
  return {
    send: (method, params = {}) =>
      new Promise((resolve, reject) => {
        const id = ++next;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/**
 * The Worker's live heap in MiB after a full garbage collection: JavaScript objects and the
 * runtime's own objects they hold (streams, requests), what its code keeps, without the
 * allocator's and the collector's timing, which move the process's RSS by tens of MiB. workerd
 * does not answer `HeapProfiler.collectGarbage`; a heap snapshot collects first (its chunks are
 * ignored).
 */
export async function liveHeapMiB(inspector: Inspector): Promise<number> {
  await inspector.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  const usage = (await inspector.send("Runtime.getHeapUsage")) as { usedSize: number; embedderHeapUsedSize?: number };
  return (usage.usedSize + (usage.embedderHeapUsedSize ?? 0)) / 2 ** 20;
}

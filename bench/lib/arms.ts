import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { Log, LogLevel, Miniflare } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT } from "../../scripts/lib/wrangler-dev";
import { childPids, pin } from "./system";

export type Arm = {
  name: string;
  url: string;
  pid?: number;
  /** The credential this arm's clients send. */
  authorization: string;
  stop: () => Promise<void>;
};

/** The fake OpenAI upstream in its own process (deterministic replies, nothing recorded), pinned to `cpus`. */
export async function startFakeUpstream(
  cpus: string,
): Promise<{ origin: string; pid: number; stop: () => Promise<void> }> {
  const child: ChildProcess = spawn(
    process.execPath,
    [join(ROOT, "node_modules/tsx/dist/cli.mjs"), join(ROOT, "tools/fake-openai/cli.ts"), "--no-record"],
    { env: { ...process.env, FAKE_OPENAI_DETERMINISTIC: "1" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
    child.once("exit", (code) => reject(new Error(`fake upstream exited with ${code}: ${out}`)));
  });
  const pid = child.pid ?? 0;
  for (const p of [pid, ...childPids(pid, "")]) pin(p, cpus);
  return {
    origin: url,
    pid,
    stop: () =>
      new Promise((done) => {
        child.once("exit", () => done());
        child.kill("SIGTERM");
      }),
  };
}

/**
 * A Worker on workerd through Miniflare's API, without `wrangler dev`'s local proxy in front, with
 * the compatibility date, flags and vars of wrangler.jsonc plus `bindings`; its workerd pinned to `cpus`.
 */
export async function startWorker(
  name: string,
  scriptPath: string,
  bindings: Record<string, string>,
  cpus: string,
  options: { authorization?: string; bare?: boolean } = {},
): Promise<Arm> {
  const { workerOptions: all } = unstable_getMiniflareWorkerOptions(join(ROOT, "wrangler.jsonc"));
  // The bare Worker shares the runtime settings, not the proxy's Durable Objects.
  const workerOptions = options.bare ? { ...all, durableObjects: {} } : all;
  const before = new Set(childPids(process.pid, "workerd"));
  const mf = new Miniflare({
    ...workerOptions,
    name,
    modules: true,
    scriptPath,
    bindings: { ...(workerOptions.bindings ?? {}), ...bindings },
    host: "127.0.0.1",
    port: 0,
    // A placeholder `request.cf` instead of fetching Cloudflare's: nothing leaves the machine.
    cf: false,
    log: new Log(LogLevel.WARN),
    // The proxy's per-request log lines are read and dropped, as a log shipper would.
    handleRuntimeStdio(stdout, stderr) {
      stdout.resume();
      stderr.resume();
    },
  });
  const url = (await mf.ready).origin;
  const pid = childPids(process.pid, "workerd").find((p) => !before.has(p));
  if (pid !== undefined) pin(pid, cpus);
  return {
    name,
    url,
    ...(pid === undefined ? {} : { pid }),
    authorization: options.authorization ?? "Bearer sk-bench",
    stop: () => mf.dispose(),
  };
}

/** Runs the fake OpenAI upstream standalone:
 *  tsx tools/fake-openai/cli.ts --port 8787 [--ttft 200] [--gap 20] [--chunks 50] [--hold-end 0] [--no-record] */
import { parseArgs } from "node:util";
import { startFakeOpenAI } from "./server.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: "0" },
    ttft: { type: "string", default: "0" },
    gap: { type: "string", default: "0" },
    chunks: { type: "string" },
    "hold-end": { type: "string", default: "0" },
    "no-record": { type: "boolean", default: false },
  },
});

function int(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got '${value}'`);
  return n;
}

const fake = await startFakeOpenAI({
  port: int("port", values.port),
  ttftMs: int("ttft", values.ttft),
  chunkGapMs: int("gap", values.gap),
  chunks: values.chunks === undefined ? undefined : int("chunks", values.chunks),
  holdEndMs: int("hold-end", values["hold-end"]),
  record: !values["no-record"],
});
console.log(`fake-openai listening on ${fake.url}`);

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    fake.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  });
}

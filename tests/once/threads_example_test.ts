// The worker threads example (examples/threads.mjs, on Node, from dist/): four workers count
// their jobs into metrics shared with the main thread, whose /metrics shows all of them.

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { test } from "../_harness.ts";
import { startProcess } from "../_servers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

test("the worker threads example: the main thread's /metrics shows every worker's jobs", async () => {
  const child = await startProcess({
    name: "the threads example",
    command: "node",
    args: ["examples/threads.mjs"],
    cwd: ROOT,
    env: { PORT: "0", HOST: "127.0.0.1", WORKERS: "4", JOBS: "2500" },
  });
  try {
    const [, url] = await child.waitFor(/listening on (http:\/\/\S+\/metrics)/);
    await child.waitFor(/4 workers did 10000 jobs/, 60_000);
    const text = await (await fetch(url)).text();
    const jobs = [...text.matchAll(/^jobs_total\{kind="(\w+)"\} (\d+)$/gm)];
    assert.deepEqual(jobs.map(([, kind]) => kind).sort(), ["crop", "encode", "resize"], text);
    assert.equal(jobs.reduce((sum, [, , n]) => sum + Number(n), 0), 10_000, text);
    assert.match(text, /^job_duration_seconds_count 10000$/m);
    assert.match(text, /^job_duration_seconds_bucket\{le="\+Inf"\} 10000$/m);
  } finally {
    await child.stop();
  }
}, { timeout: 120_000 });

// Many processes on three runtimes record into one real redis-server at once; the totals read
// back must equal, exactly, what the writers report having written.
//
// The Node writers run from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir
// in THEUS_WRITER_DIST.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBackend, type MetricFamily, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { test } from "../_harness.ts";
import { startRedis } from "../_redis.ts";
import {
  assertExactTotals,
  controlRedis,
  defineMetrics,
  describeRun,
  jobs,
  runWriters,
  writeConfig,
} from "../fixtures/redis_writer.ts";

// Six writers (plus redis-server and this test) share two cores here, so the scheduler alone
// delays a writer's timer by hundreds of milliseconds now and then. A loop blocked by the
// library would show as seconds (a flush waiting on Redis); the fault tests, with fewer
// processes, hold writers to 400 ms.
const MAX_LAG_MS = 1500;

/** Reads the workload's metrics back from Redis, through a registry on the redis backend. */
export async function readBack(port: number, keyPrefix: string): Promise<MetricFamily[]> {
  await loadBackend({ backend: "redis", config: { port, keyPrefix, flushIntervalMs: 0 } });
  const registry = new Registry();
  defineMetrics(registry);
  try {
    return await registry.collect();
  } finally {
    await RedisBackend.close();
  }
}

test("six writers on Deno, Bun and Node add up exactly in one Redis", async () => {
  const server = await startRedis();
  const control = await controlRedis(server);
  const dir = mkdtempSync(join(tmpdir(), "theus-writers-"));
  try {
    const keyPrefix = "multi";
    const config = writeConfig(dir, {
      port: server.port,
      keyPrefix,
      flushIntervalMs: 50,
      commandTimeoutMs: 5000,
    });
    const started = performance.now();
    const reports = await runWriters(jobs(2, 60_000, 4000), config, { timeoutMs: 45_000 });
    const ms = performance.now() - started;
    console.log(describeRun("multiprocess", reports, ms));
    assert.deepEqual(reports.map((r) => r.runtime).sort(), ["bun", "bun", "deno", "deno", "node", "node"]);
    assertExactTotals(await readBack(server.port, keyPrefix), reports);
    for (const report of reports) {
      assert.ok(report.maxLagMs < MAX_LAG_MS, `${report.id}: event-loop lag ${report.maxLagMs} ms`);
      assert.ok(report.flushes > 10, `${report.id}: only ${report.flushes} flushes`);
    }
  } finally {
    await control.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 90_000 });

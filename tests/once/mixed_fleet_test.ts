// A mixed fleet on one redis-server and one keyPrefix: Workers in workerd (Miniflare) on the
// upstash backend, through the REST bridge, and writer processes on Deno, Bun and Node on the
// redis backend, over TCP, all recording the same metric names at the same time. The totals read
// back must equal, exactly, the sum of what every invocation and every writer reports.
//
// The Node writer runs from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir
// in THEUS_WRITER_DIST (`tsc -p tsconfig.json --outDir .tmp/fleet-dist`).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadBackend, type MetricFamily, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { test } from "../_harness.ts";
import { startRedis } from "../_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "../_upstash_bridge.ts";
import {
  defineMetrics,
  describeRun,
  jobs,
  runWriters,
  sumTotals,
  type Totals,
  totalsOf,
  writeConfig,
} from "../fixtures/redis_writer.ts";
import {
  addTotals,
  assertSameTotals,
  bundleWorker,
  emptyTotals,
  type RunningWorker,
  startWorker,
} from "../fixtures/fleet_writer.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const WORKERS = 2;
const INVOCATIONS = 300; // per Worker
const WAVE = 10; // concurrent invocations of one Worker
const UPDATES = 30_000; // per writer process
const DURATION_MS = 4000;

async function readBack(port: number, keyPrefix: string): Promise<Totals> {
  await loadBackend({ backend: "redis", config: { port, keyPrefix, flushIntervalMs: 0 } });
  const registry = new Registry();
  defineMetrics(registry);
  try {
    return totalsOf(await registry.collect());
  } finally {
    await RedisBackend.close();
    await loadBackend({ backend: "memory" });
  }
}

/** Invokes a Worker `INVOCATIONS` times, in waves, spread over `spreadMs`. */
async function invokeAll(worker: RunningWorker, first: number, spreadMs: number): Promise<Totals> {
  const written = emptyTotals();
  const waves = INVOCATIONS / WAVE;
  const started = performance.now();
  for (let wave = 0; wave < waves; wave++) {
    await sleep(Math.max(0, started + (spreadMs * wave) / waves - performance.now()));
    const deltas = await Promise.all(
      Array.from({ length: WAVE }, (_, k) => worker.record(first + wave * WAVE + k)),
    );
    for (const delta of deltas) addTotals(written, delta);
  }
  return written;
}

test("Workers on upstash and Deno, Bun and Node on redis add up exactly in one Redis", async () => {
  const keyPrefix = "fleet";
  const code = await bundleWorker();
  const redis = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), "theus-fleet-"));
  let bridge: UpstashBridge | undefined;
  const workers: RunningWorker[] = [];
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    for (let n = 0; n < WORKERS; n++) {
      workers.push(
        await startWorker(code, {
          UPSTASH_REDIS_REST_URL: bridge.url,
          UPSTASH_REDIS_REST_TOKEN: bridge.token,
          THEUS_KEY_PREFIX: keyPrefix,
          // One Worker selects the backend on its first request, the other as the README does.
          THEUS_SELECT: n === 0 ? "lazy" : "module",
        }),
      );
    }
    const config = writeConfig(dir, {
      port: redis.port,
      keyPrefix,
      flushIntervalMs: 50,
      commandTimeoutMs: 5000,
    });

    const fromWorkers = emptyTotals();
    const started = performance.now();
    const reports = await runWriters(jobs(1, UPDATES, DURATION_MS), config, {
      timeoutMs: 60_000,
      // While every writer records: both Workers, invoked concurrently, each wave in parallel.
      during: async () => {
        const totals = await Promise.all(
          workers.map((worker, n) => invokeAll(worker, n * INVOCATIONS, DURATION_MS - 500)),
        );
        for (const t of totals) addTotals(fromWorkers, t);
      },
    });
    const ms = performance.now() - started;
    const healths = await Promise.all(workers.map((worker) => worker.drain()));
    console.log(describeRun("mixed fleet (writers)", reports, ms));
    console.log(
      `mixed fleet: ${WORKERS} Workers x ${INVOCATIONS} invocations (waves of ${WAVE}), ` +
        `${bridge.counts.requests} Upstash requests, Worker flush failures ` +
        `${healths.map((h) => h.flush_failures).join("/")}; selection: ` +
        `${(await Promise.all(workers.map((w) => w.selection()))).join(" | ")}`,
    );
    assert.deepEqual(reports.map((r) => r.runtime).sort(), ["bun", "deno", "node"]);

    const expected = sumTotals(reports);
    addTotals(expected, fromWorkers);
    const counted = (t: Totals) => Object.values(t.counter).reduce((a, b) => a + b, 0);
    console.log(
      `mixed fleet: counter total ${counted(expected)} (Workers ${counted(fromWorkers)}), ` +
        `histogram count ${Object.values(expected.histogram).reduce((a, h) => a + h.count, 0)}, ` +
        `gauge ${expected.gauge}, summary count ${expected.summary.count}`,
    );
    assertSameTotals(await readBack(redis.port, keyPrefix), expected, "from Redis by the redis backend");
    for (const worker of workers) {
      const families = await worker.json<MetricFamily[]>("/families");
      assertSameTotals(totalsOf(families), expected, "by a Worker through Upstash");
    }
  } finally {
    for (const worker of workers) {
      const output = worker.output().trim();
      if (output !== "") console.log(`workerd output:\n${output}`);
      await worker.close().catch(() => {});
    }
    await bridge?.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 90_000 });

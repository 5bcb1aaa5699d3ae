// The upstash backend inside a real Workers runtime: the Worker in tests/fixtures/worker.ts,
// bundled with esbuild, runs in workerd (Miniflare) against the Upstash REST bridge over a real
// redis-server. Every invocation is wrapped in withFlush(), so its flush goes to ctx.waitUntil.
// Totals read back, through the Worker's own collection (Upstash) and through the redis backend
// here, must equal exactly what the invocations report having recorded; after warm-up an
// invocation costs exactly one HTTP request; failed, dropped and slow requests lose nothing and
// count nothing twice, since the isolate keeps its buffer for the next invocation's flush.

import assert from "node:assert/strict";
import { loadBackend, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { test } from "../_harness.ts";
import { startRedis } from "../_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "../_upstash_bridge.ts";
import { defineMetrics, type Totals, totalsOf } from "../fixtures/redis_writer.ts";
import {
  addTotals,
  assertSameTotals,
  bundleWorker,
  emptyTotals,
  type RunningWorker,
  startWorker,
  type WorkerBindings,
  type WorkerHealth,
} from "../fixtures/fleet_writer.ts";
import type { MetricFamily } from "../../mod.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Waits, for at most `timeoutMs`, until `ok()` holds. */
async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(2);
  }
}

/** Reads the workload's totals from Redis through a registry on the redis backend. */
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

/** A redis-server, the bridge in front of it and the Worker, stopped for sure by `close()`. */
async function setUp(keyPrefix: string, extra: Partial<WorkerBindings> = {}) {
  const code = await bundleWorker();
  const redis = await startRedis();
  let bridge: UpstashBridge | undefined;
  let worker: RunningWorker | undefined;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    worker = await startWorker(code, {
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: bridge.token,
      THEUS_KEY_PREFIX: keyPrefix,
      ...extra,
    });
  } catch (error) {
    await bridge?.close();
    await redis.stop();
    throw error;
  }
  const [b, w] = [bridge, worker];
  return {
    redis,
    bridge: b,
    worker: w,
    async close() {
      const output = w.output().trim();
      if (output !== "") console.log(`workerd output:\n${output}`);
      try {
        await w.close();
      } finally {
        await b.close();
        await redis.stop();
      }
    },
  };
}

/** Fails on what a Worker must never print: uncaught errors, rejections, cross-request warnings. */
function assertQuiet(worker: RunningWorker): void {
  assert.doesNotMatch(worker.output(), /uncaught|unhandled|rejection|different request|hung|error/i);
}

/** Checks the totals read through the Worker (Upstash) and through the redis backend. */
async function assertExact(worker: RunningWorker, port: number, keyPrefix: string, written: Totals) {
  const families = await worker.json<MetricFamily[]>("/families");
  assertSameTotals(totalsOf(families), written, "by the Worker through Upstash");
  assertSameTotals(await readBack(port, keyPrefix), written, "from Redis by the redis backend");
  assertQuiet(worker);
}

test(
  "the README's Workers recipe selects the backend at module scope, from cloudflare:workers' env",
  async () => {
    const keyPrefix = "recipe";
    const { redis, worker, close } = await setUp(keyPrefix, { THEUS_SELECT: "module" });
    try {
      // "lazy (module scope failed: ...)" when loadBackend() cannot run at module scope.
      assert.equal(await worker.selection(), "module");
      const written = emptyTotals();
      for (let i = 0; i < 20; i++) addTotals(written, await worker.record(i));
      await worker.drain();
      await assertExact(worker, redis.port, keyPrefix, written);
    } finally {
      await close();
    }
  },
  { timeout: 60_000 },
);

test("a Worker on upstash flushes once per invocation through ctx.waitUntil, with exact totals", async () => {
  const keyPrefix = "workers";
  const { redis, bridge, worker, close } = await setUp(keyPrefix);
  try {
    console.log(`workers: backend selected ${await worker.selection()}`);
    const written = emptyTotals();
    let i = 0;
    // Warm-up: the first flush loads the script (EVALSHA, NOSCRIPT, EVAL).
    for (; i < 5; i++) addTotals(written, await worker.record(i));
    await worker.drain();
    bridge.resetCounts();

    // One at a time, each flush allowed to finish: exactly one request per invocation.
    const SEQUENTIAL = 200;
    const started = performance.now();
    for (let n = 1; n <= SEQUENTIAL; n++, i++) {
      addTotals(written, await worker.record(i));
      await until(`the flush of invocation ${n}`, () => bridge.counts.requests >= n);
    }
    const sequentialMs = performance.now() - started;
    await sleep(200);
    const { requests, byPath, commands } = bridge.counts;
    assert.deepEqual(
      { requests, byPath, commands },
      { requests: SEQUENTIAL, byPath: { "/": SEQUENTIAL }, commands: { EVALSHA: SEQUENTIAL } },
    );

    // Concurrent invocations share the isolate's buffer: flushes are serialized and coalesce.
    bridge.resetCounts();
    const CONCURRENT = 300;
    const WAVE = 25;
    for (let wave = 0; wave < CONCURRENT / WAVE; wave++) {
      const deltas = await Promise.all(Array.from({ length: WAVE }, () => worker.record(i++)));
      for (const delta of deltas) addTotals(written, delta);
    }
    const health = await worker.drain();
    await sleep(100);
    const concurrentRequests = bridge.counts.requests;
    assert.ok(
      concurrentRequests <= CONCURRENT,
      `${concurrentRequests} requests for ${CONCURRENT} invocations`,
    );
    assert.equal(health.flush_failures, 0);
    console.log(
      `workers: ${i} invocations; sequential: ${SEQUENTIAL} requests for ${SEQUENTIAL} invocations ` +
        `(${(sequentialMs / SEQUENTIAL).toFixed(1)} ms each); concurrent (waves of ${WAVE}): ` +
        `${concurrentRequests} requests for ${CONCURRENT} invocations ` +
        `(${(concurrentRequests / CONCURRENT).toFixed(2)} per invocation); counter total ` +
        `${Object.values(written.counter).reduce((a, b) => a + b, 0)}, histogram count ` +
        `${Object.values(written.histogram).reduce((a, h) => a + h.count, 0)}`,
    );
    await assertExact(worker, redis.port, keyPrefix, written);
  } finally {
    await close();
  }
}, { timeout: 90_000 });

test("a Worker's totals stay exact through failed, dropped and slow Upstash requests", async () => {
  const keyPrefix = "workerfaults";
  const TIMEOUT_MS = 500;
  // Selected on the first request, whatever module scope allows.
  const { redis, bridge, worker, close } = await setUp(keyPrefix, {
    THEUS_REQUEST_TIMEOUT_MS: String(TIMEOUT_MS),
    THEUS_SELECT: "lazy",
  });
  try {
    const written = emptyTotals();
    let i = 0;
    const invoke = async (count: number, concurrency = 1) => {
      for (let done = 0; done < count; done += concurrency) {
        const n = Math.min(concurrency, count - done);
        const deltas = await Promise.all(Array.from({ length: n }, () => worker.record(i++)));
        for (const delta of deltas) addTotals(written, delta);
      }
    };
    await invoke(5);
    await worker.drain();

    // Each fault hits the next requests, whichever invocation's flush sends them; the
    // invocations that follow carry the kept batch. @upstash/redis retries a dropped connection
    // itself (after 50, 136, 369 ms...): one drop is absorbed within the flush, three outlast
    // the request timeout. A slow answer comes after the timeout, once the script has run.
    const faults: [string, () => void][] = [
      ["HTTP 500 x3", () => bridge.fail("500", 3)],
      ["dropped after running x1", () => bridge.fail("drop", 1)],
      ["dropped after running x3", () => bridge.fail("drop", 3)],
      ["slow x2", () => bridge.fail("slow", 2, TIMEOUT_MS * 3)],
      [
        "mixed",
        () => (bridge.fail("500", 1), bridge.fail("slow", 1, TIMEOUT_MS * 2), bridge.fail("drop", 2)),
      ],
    ];
    const failuresNow = async () => (await worker.json<WorkerHealth>("/health")).flush_failures;
    const failuresBefore = await failuresNow();
    for (const [name, inject] of faults) {
      const before = await failuresNow();
      inject();
      await invoke(10);
      await invoke(20, 5);
      // Invocations go on while the faults are consumed: each flush retries the kept batch.
      const deadline = Date.now() + 20_000;
      for (;;) {
        await invoke(2);
        await sleep(50);
        const health = await worker.json<WorkerHealth>("/health");
        if (health.pending_series === 0) break;
        if (Date.now() > deadline) throw new Error(`${name}: changes still pending after 20 s`);
      }
      console.log(
        `workers faults: ${name}: ${
          await failuresNow() - before
        } failed flushes, recovered by invocation ${i}`,
      );
    }
    // A dropped or slow request ran its script before failing, and its batch was sent again:
    // exact totals mean the script applied it once. Slow answers still on their way land first.
    await sleep(TIMEOUT_MS * 3);
    await invoke(3);
    const health = await worker.drain();
    const failures = health.flush_failures - failuresBefore;
    assert.ok(failures >= 5, `only ${failures} failed flushes: the faults did not reach the Worker`);
    console.log(
      `workers faults: ${i} invocations, ${failures} failed flushes, ${bridge.counts.requests} requests, ` +
        `${bridge.counts.commands.EVALSHA} flush scripts run (a dropped or slow one ran, then was resent); ` +
        `counter total ${Object.values(written.counter).reduce((a, b) => a + b, 0)}`,
    );
    await assertExact(worker, redis.port, keyPrefix, written);
  } finally {
    await close();
  }
}, { timeout: 90_000 });

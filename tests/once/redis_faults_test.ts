// Faults under load: writers on Deno, Bun and Node record into a real redis-server that is
// paused, has its connections killed, restarts, or is not there yet. Every writer must exit 0
// (no unhandled rejection, no uncaught exception) with a small event-loop lag, and the totals
// read back must equal, exactly, what the writers report having written: nothing lost, nothing
// counted twice.
//
// The Node writers run from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir
// in THEUS_WRITER_DIST.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Counter, defaultRegistry, loadBackend, type MetricFamily, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { labelsText, metricKey, shardOf } from "../../backends/_remote/layout.ts";
import { test } from "../_harness.ts";
import { freePort, type RedisServer, startRedis } from "../_redis.ts";
import {
  assertExactTotals,
  controlRedis,
  defineMetrics,
  describeRun,
  jobs,
  type RedisControl,
  runWriters,
  writeConfig,
  type Writer,
  type WriterReport,
} from "../fixtures/redis_writer.ts";

// A flush that blocked the loop would show a lag of at least COMMAND_TIMEOUT_MS (or the whole
// pause); the rest is scheduling noise on a busy two-core machine.
const MAX_LAG_MS = 400;
const COMMAND_TIMEOUT_MS = 500;
const UPDATES = 40_000;
const DURATION_MS = 6000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function readBack(port: number, keyPrefix: string): Promise<MetricFamily[]> {
  await loadBackend({ backend: "redis", config: { port, keyPrefix, flushIntervalMs: 0 } });
  const registry = new Registry();
  defineMetrics(registry);
  try {
    return await registry.collect();
  } finally {
    await RedisBackend.close();
  }
}

interface Holder {
  server?: RedisServer;
  control?: RedisControl;
}

interface FaultRun {
  /** Starts the server; undefined to start it later, in `during`. */
  server?: () => Promise<RedisServer>;
  /** The port, when the server starts later. */
  port?: number;
  during: (writers: readonly Writer[], holder: Holder) => Promise<void>;
}

/** Runs one writer per runtime through a fault, and checks the exact totals and the writers. */
async function faultRun(name: string, keyPrefix: string, run: FaultRun): Promise<WriterReport[]> {
  const holder: Holder = {};
  const dir = mkdtempSync(join(tmpdir(), "theus-faults-"));
  try {
    if (run.server !== undefined) {
      holder.server = await run.server();
      holder.control = await controlRedis(holder.server);
    }
    const port = holder.server?.port ?? run.port!;
    const config = writeConfig(dir, {
      port,
      keyPrefix,
      flushIntervalMs: 50,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    const started = performance.now();
    const reports = await runWriters(jobs(1, UPDATES, DURATION_MS), config, {
      timeoutMs: 60_000,
      during: (writers) => run.during(writers, holder),
    });
    console.log(describeRun(name, reports, performance.now() - started));
    assert.ok(holder.server !== undefined, "the server never started");
    assertExactTotals(await readBack(holder.server.port, keyPrefix), reports);
    for (const report of reports) {
      assert.ok(report.maxLagMs < MAX_LAG_MS, `${report.id}: event-loop lag ${report.maxLagMs} ms`);
    }
    return reports;
  } finally {
    await (holder.control ?? holder.server)?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("writers survive a paused Redis (timed-out flushes) and count exactly once", async () => {
  const reports = await faultRun("paused", "paused", {
    server: () => startRedis(),
    async during(_writers, { control }) {
      await sleep(1000);
      control!.pause();
      try {
        await sleep(3000);
      } finally {
        control!.resume();
      }
    },
  });
  // Every writer flushes every 50 ms, so each saw flushes time out during the 3 s pause.
  for (const report of reports) assert.ok(report.failures > 0, `${report.id}: no flush failed`);
}, { timeout: 120_000 });

test("writers survive client connections killed mid-flush and count exactly once", async () => {
  let killed = 0;
  await faultRun("client kill", "killed", {
    server: () => startRedis(),
    async during(writers, { server }) {
      let running = writers.length;
      for (const writer of writers) writer.done.finally(() => running--).catch(() => {});
      const until = performance.now() + DURATION_MS;
      while (running > 0 && performance.now() < until) {
        await sleep(100 + Math.random() * 100);
        killed += Number(await server!.cli("CLIENT", "KILL", "TYPE", "normal"));
      }
    },
  });
  console.log(`client kill: ${killed} connections killed`);
  assert.ok(killed >= 10, `only ${killed} connections killed`);
}, { timeout: 120_000 });

test("writers survive a Redis restart with persistence and count exactly once", async () => {
  await faultRun("restart", "restarted", {
    server: () => startRedis({ appendOnly: true }),
    async during(_writers, { control, server }) {
      const pids = [control!.pid];
      await sleep(1000);
      await control!.restart();
      pids.push(control!.pid);
      await sleep(1500);
      await control!.restart();
      pids.push(control!.pid);
      assert.equal(new Set(pids).size, 3, `the server did not restart: pids ${pids}`);
      // The restarted server has no scripts: the first flush after it gets NOSCRIPT and falls back
      // to EVAL (which caches the script again for everyone).
      let evals = 0;
      for (const until = performance.now() + 3000; evals < 1 && performance.now() < until;) {
        await sleep(100);
        const stats = await server!.cli("INFO", "commandstats");
        evals = Number(/cmdstat_eval:calls=(\d+)/.exec(stats)?.[1] ?? 0);
      }
      assert.ok(evals >= 1, "no EVAL fallback after the restart");
    },
  });
}, { timeout: 120_000 });

test("writers that start before Redis does deliver everything once it is up", async () => {
  const port = await freePort();
  const reports = await faultRun("late start", "late", {
    port,
    async during(_writers, holder) {
      await sleep(3000);
      holder.server = await startRedis({ port });
      holder.control = await controlRedis(holder.server);
    },
  });
  for (const report of reports) assert.ok(report.failures > 0, `${report.id}: no flush failed`);
}, { timeout: 120_000 });

test("writers that just end flush at exit, and end within the grace period while Redis is away", async () => {
  const server = await startRedis();
  const control = await controlRedis(server);
  const dir = mkdtempSync(join(tmpdir(), "theus-exit-"));
  try {
    const up = writeConfig(dir, {
      port: server.port,
      keyPrefix: "exitup",
      flushIntervalMs: 60_000, // nothing but the exit flush delivers the last changes
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    const down = writeConfig(dir, {
      port: await freePort(), // nothing listens there
      keyPrefix: "exitdown",
      flushIntervalMs: 50,
      commandTimeoutMs: COMMAND_TIMEOUT_MS,
    });
    const natural = (prefix: string) =>
      jobs(1, 10_000, 1000).map((job) => ({ ...job, id: `${prefix}-${job.id}`, exit: "natural" as const }));
    const [delivered, abandoned] = await Promise.all([
      runWriters(natural("up"), up, { timeoutMs: 30_000 }),
      runWriters(natural("down"), down, { timeoutMs: 30_000 }),
    ]);
    console.log(`exit: wall ms ${[...delivered, ...abandoned].map((r) => `${r.id}:${r.wallMs}`).join(" ")}`);
    assertExactTotals(await readBack(server.port, "exitup"), delivered);
    // The exit flush gives up after its 5 s grace: a process never hangs on an absent Redis.
    for (const report of abandoned) assert.ok(report.wallMs! < 15_000, `${report.id}: ${report.wallMs} ms`);
  } finally {
    await control.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 60_000 });

function healthOf(families: readonly MetricFamily[], name: string, keyPrefix: string): number {
  const family = families.find((f) => f.name === name);
  assert.ok(family !== undefined && "series" in family, `no ${name}`);
  const series = (family.series as { labels: Record<string, string>; value: number }[])
    .find((s) => s.labels.key_prefix === keyPrefix);
  assert.ok(series !== undefined, `no ${name} for ${keyPrefix}`);
  return series.value;
}

test("a batch retried after a timeout that still ran is applied once", async () => {
  const server = await startRedis();
  const control = await controlRedis(server);
  const keyPrefix = "retry";
  const health = async () => {
    const families = await defaultRegistry.collect();
    return {
      failures: healthOf(families, "theus_backend_flush_failures", keyPrefix),
      pending: healthOf(families, "theus_backend_pending_series", keyPrefix),
    };
  };
  try {
    await loadBackend({
      backend: "redis",
      config: { port: server.port, keyPrefix, flushIntervalMs: 0, commandTimeoutMs: 300 },
    });
    const registry = new Registry();
    const hits = new Counter({ name: "retry_hits", help: "Hits", registry });
    for (let i = 0; i < 10; i++) hits.inc();
    // RedisBackend.flush(), not flush(): that one flushes once per backend selection made in
    // this process, and the tests before this one made several.
    await RedisBackend.flush();
    assert.deepEqual(await health(), { failures: 0, pending: 0 });

    await server.cli("CONFIG", "RESETSTAT");
    control.pause();
    let resumed = false;
    try {
      for (let i = 0; i < 5; i++) hits.inc();
      // The script is written to the socket, then times out: its fate is unknown to the client.
      const started = performance.now();
      await RedisBackend.flush();
      assert.ok(performance.now() - started < 2000, "flush() waited past the command timeout");
      assert.deepEqual(await health(), { failures: 1, pending: 1 });
      for (let i = 0; i < 3; i++) hits.inc(); // gathers for the next batch
      control.resume();
      resumed = true;
      // The timed-out script runs now; the retry carries the same batch id and must be skipped.
      await RedisBackend.flush();
    } finally {
      if (!resumed) control.resume();
    }
    assert.deepEqual(await health(), { failures: 1, pending: 0 });
    const stats = await server.cli("INFO", "commandstats");
    const calls = Number(/cmdstat_evalsha:calls=(\d+)/.exec(stats)?.[1] ?? 0);
    // The timed-out script ran on the server, then one call with its retry and the next batch
    // (the batches of a shard waiting to be confirmed are sent together, in order).
    assert.equal(calls, 2, stats);
    // One increment for each batch applied: the retry applied nothing.
    assert.match(stats, /^cmdstat_hincrbyfloat:calls=2,/m, stats);
    const key = metricKey(keyPrefix, "retry_hits", shardOf("retry_hits", labelsText({})));
    assert.equal(await server.cli("HGET", key, "[]||"), "18");
    const family = (await registry.collect()).find((f) => f.name === "retry_hits");
    assert.deepEqual(family && "series" in family ? family.series : undefined, [{ labels: {}, value: 18 }]);
  } finally {
    await RedisBackend.close();
    await control.stop();
  }
}, { timeout: 60_000 });

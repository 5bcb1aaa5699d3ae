// Per-instance metrics (the runtime metrics of theus/runtime) on redis and upstash: each
// instance's counter, gauge and histogram series are its own, labelled theus_instance, never
// added to another's, and removing them removes only its own. Each config object is its own
// store with its own instance id: two config objects behave like two processes. That a stopped
// process's series leave with its heartbeat is tested with real processes in
// once/runtime_fleet_test.ts.

import assert from "node:assert/strict";
import {
  Counter,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  loadBackend,
  type MetricFamily,
  Registry,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import { INTERNAL, type MaybeInternal, perInstance } from "../metrics/_internal.ts";
import { test } from "./_harness.ts";
import { startRedis } from "./_redis.ts";
import { startUpstashBridge } from "./_upstash_bridge.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

interface Process {
  registry: Registry;
  cpu: Counter;
  rss: Gauge;
  gc: Histogram;
}

// The metrics a process defines: per instance, as collectDefaultMetrics() makes them.
function define(): Process {
  const registry = new Registry();
  return perInstance(() => ({
    registry,
    cpu: new Counter({ name: "cpu_seconds_total", help: "CPU", registry }),
    rss: new Gauge({ name: "rss_bytes", help: "RSS", labelNames: ["kind"], registry }),
    gc: new Histogram({ name: "gc_seconds", help: "GC", labelNames: ["kind"], buckets: [0.01, 1], registry }),
  }));
}

type Sample = { labels: Record<string, string>; value?: number; count?: number; sum?: number };

function byInstance(families: readonly MetricFamily[], name: string): Map<string, Sample> {
  const family = families.find((f) => f.name === name);
  assert.ok(family, `no family ${name}`);
  return new Map((family.series as unknown as Sample[]).map((s) => [s.labels.theus_instance, s]));
}

type Select = (instanceId: string) => Promise<void>;

async function scenario(select: Select): Promise<void> {
  await select("a");
  const a = define();
  await select("b");
  const b = define();
  a.cpu.inc(1.5);
  b.cpu.inc(2.25);
  a.rss.labels({ kind: "resident" }).set(100);
  b.rss.labels({ kind: "resident" }).set(300);
  a.gc.labels({ kind: "minor" }).observe(0.005);
  b.gc.labels({ kind: "minor" }).observe(0.5);
  b.gc.labels({ kind: "minor" }).observe(2);
  await flush();
  const families = await a.registry.collect();
  const cpu = byInstance(families, "cpu_seconds");
  assert.deepEqual([...cpu.keys()].sort(), ["a", "b"]);
  assert.equal(cpu.get("a")!.value, 1.5);
  assert.equal(cpu.get("b")!.value, 2.25);
  const rss = byInstance(families, "rss_bytes");
  assert.deepEqual(rss.get("a"), { labels: { kind: "resident", theus_instance: "a" }, value: 100 });
  assert.deepEqual(rss.get("b"), { labels: { kind: "resident", theus_instance: "b" }, value: 300 });
  const gc = byInstance(families, "gc_seconds");
  assert.deepEqual([gc.get("a")!.count, gc.get("a")!.sum], [1, 0.005]);
  assert.deepEqual([gc.get("b")!.count, gc.get("b")!.sum], [2, 2.5]);
  // Both formats stay valid with the instance label.
  await assertPromtool(await generateLatest(a.registry));
  await assertOpenMetrics(await generateLatest(a.registry, { format: "openmetrics" }));
  // A counter keeps adding in its own instance; the other instance does not move.
  a.cpu.inc(0.5);
  await flush();
  const later = byInstance(await b.registry.collect(), "cpu_seconds");
  assert.equal(later.get("a")!.value, 2);
  assert.equal(later.get("b")!.value, 2.25);
  // Retiring a's metrics deletes a's series only.
  for (const metric of [a.cpu, a.rss, a.gc]) (metric as MaybeInternal)[INTERNAL]!.retire();
  await flush();
  const retired = await b.registry.collect();
  assert.deepEqual([...byInstance(retired, "cpu_seconds").keys()], ["b"]);
  assert.deepEqual([...byInstance(retired, "rss_bytes").keys()], ["b"]);
  assert.deepEqual([...byInstance(retired, "gc_seconds").keys()], ["b"]);
}

test("redis: per-instance counters, gauges and histograms are each instance's own", async () => {
  const server = await startRedis();
  const select = async (instanceId: string) => {
    const config = {
      port: server.port,
      keyPrefix: "per-instance",
      instanceId,
      instanceTtlSeconds: 2,
      flushIntervalMs: 100,
    };
    await loadBackend({ backend: "redis", config });
  };
  try {
    await scenario(select);
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
    await server.stop();
  }
}, { timeout: 30_000 });

test("upstash: per-instance counters, gauges and histograms are each instance's own", async () => {
  const redis = await startRedis();
  const bridge = await startUpstashBridge({ redisPort: redis.port });
  const select = async (instanceId: string) => {
    const config = {
      url: bridge.url,
      token: bridge.token,
      keyPrefix: "per-instance",
      instanceId,
      instanceTtlSeconds: 2,
      flushIntervalMs: 100,
    };
    await loadBackend({ backend: UpstashBackend, config });
  };
  try {
    await scenario(select);
  } finally {
    await loadBackend({ backend: "memory" });
    await UpstashBackend.close();
    await bridge.close();
    await redis.stop();
  }
}, { timeout: 30_000 });

test("memory: per-instance metrics have no instance label", async () => {
  await loadBackend({ backend: "memory" });
  const p = define();
  p.cpu.inc(3);
  const [cpu] = await p.registry.collect();
  assert.deepEqual(cpu.series, [{ labels: {}, value: 3 }]);
  assert.equal(p.cpu.perInstance, true);
  assert.equal(new Counter({ name: "x_total", help: "x", registry: null }).perInstance, false);
});

// Exemplars on every backend that keeps them: memory, shared memory (shareMemory()), redis (a
// real redis-server) and upstash (the REST bridge over a real redis-server). A counter series
// keeps its latest exemplar and a histogram one per bucket; OpenMetrics writes them and text
// 0.0.4 never does; remove(), clear() and reset() drop them. On the remote backends "latest" is
// the greatest timestamp across the fleet, whatever order processes flush in: an older exemplar
// never replaces a newer one, checked within one process, with two stores of this process, with
// a child process on one Redis, and through a batch applied twice.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { Redis } from "ioredis";
import { pathToFileURL } from "node:url";
import {
  Counter,
  type Exemplar,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  type HistogramSeries,
  loadBackend,
  type MetricFamily,
  Registry,
  shareMemory,
  Summary,
  type ValueSeries,
} from "../mod.ts";
import type { BackendConfig } from "../core/backend.ts";
import { RedisBackend } from "../backends/redis.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import { labelsText, metricKey, shardOf, SHARDS } from "../backends/_remote/layout.ts";
import { runtime, test } from "./_harness.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { ROOT } from "./_root.ts";
import { startProcess } from "./_servers.ts";
import { startUpstashBridge, type UpstashBridge } from "./_upstash_bridge.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

// --- Backends ---

interface Setup {
  /** The redis-server behind a remote backend. */
  readonly server?: RedisServer;
  /** The REST bridge of the upstash backend. */
  readonly bridge?: UpstashBridge;
  /** The config the backend was selected with. */
  readonly config?: BackendConfig;
  /** The key prefix of a remote backend. */
  readonly prefix?: string;
  cleanup(): Promise<void>;
}

interface Backend {
  readonly name: string;
  /** Whether the backend is shared by processes ("latest" is then the greatest timestamp). */
  readonly remote: boolean;
  start(): Promise<Setup>;
}

let prefixes = 0;
const uniquePrefix = (): string => `exemplars-${++prefixes}-${Math.random().toString(36).slice(2, 8)}`;

const memory: Backend = {
  name: "memory",
  remote: false,
  async start() {
    await loadBackend({ backend: "memory" });
    return { cleanup: async () => {} };
  },
};

const redis: Backend = {
  name: "redis",
  remote: true,
  async start() {
    const server = await startRedis();
    const prefix = uniquePrefix();
    const config = { url: server.url, keyPrefix: prefix, flushIntervalMs: 0 };
    try {
      await loadBackend({ backend: "redis", config });
    } catch (error) {
      await server.stop();
      throw error;
    }
    return {
      server,
      config,
      prefix,
      async cleanup() {
        try {
          await flush();
          await loadBackend({ backend: "memory" });
          await RedisBackend.close();
        } finally {
          await server.stop();
        }
      },
    };
  },
};

const upstash: Backend = {
  name: "upstash",
  remote: true,
  async start() {
    const server = await startRedis();
    let bridge: UpstashBridge | undefined;
    const prefix = uniquePrefix();
    let config: BackendConfig;
    try {
      bridge = await startUpstashBridge({ redisPort: server.port });
      config = { url: bridge.url, token: bridge.token, keyPrefix: prefix };
      await loadBackend({ backend: UpstashBackend, config });
    } catch (error) {
      await bridge?.close();
      await server.stop();
      throw error;
    }
    const started = bridge;
    return {
      server,
      bridge,
      config,
      prefix,
      async cleanup() {
        try {
          await flush();
          await loadBackend({ backend: "memory" });
          await UpstashBackend.close();
        } finally {
          await started.close();
          await server.stop();
        }
      },
    };
  },
};

const shared: Backend = {
  name: "shared memory",
  remote: false,
  async start() {
    const handle = await shareMemory();
    if (handle.memory === undefined) throw new Error("this runtime should share memory");
    return { cleanup: () => loadBackend({ backend: "memory" }) };
  },
};

const BACKENDS: readonly Backend[] = [memory, shared, redis, upstash];

async function withBackend(backend: Backend, fn: (setup: Setup) => Promise<void>): Promise<void> {
  const setup = await backend.start();
  try {
    await fn(setup);
  } finally {
    await setup.cleanup();
  }
}

// --- Helpers ---

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name);
  assert.ok(found !== undefined, `no family ${name} in ${families.map((f) => f.name).join(", ")}`);
  return found;
}

function valueSeries(
  families: readonly MetricFamily[],
  name: string,
  labels: Record<string, string>,
): ValueSeries {
  const found = family(families, name).series.find((s) => labelsText(s.labels) === labelsText(labels));
  assert.ok(found !== undefined, `no series ${JSON.stringify(labels)} in ${name}`);
  return found as ValueSeries;
}

function histogramSeries(
  families: readonly MetricFamily[],
  name: string,
  labels: Record<string, string>,
): HistogramSeries {
  return valueSeries(families, name, labels) as unknown as HistogramSeries;
}

function exemplar(labels: Record<string, string>, value: number, timestamp: number): Exemplar {
  return { labels, value, timestamp };
}

/** An exemplar as plain data, for deepEqual (the collected ones are frozen). */
function plain(e: Exemplar | undefined): Exemplar | undefined {
  return e === undefined ? undefined : { labels: { ...e.labels }, value: e.value, timestamp: e.timestamp };
}

/** A histogram series' exemplars by bucket, as plain data with `undefined` where a bucket has none. */
function byBucket(series: HistogramSeries): (Exemplar | undefined)[] {
  return series.buckets.map((_, i) => plain(series.exemplars?.[i]));
}

/** The fields of a metric, over the hashes of all its shards, read with a client of its own. */
async function hash(setup: Setup, name: string): Promise<Map<string, string>> {
  const client = new Redis(setup.server!.url);
  try {
    const fields = new Map<string, string>();
    for (let shard = 0; shard < SHARDS; shard++) {
      for (
        const [field, value] of Object.entries(await client.hgetall(metricKey(setup.prefix!, name, shard)))
      ) {
        assert.ok(!fields.has(field), `${field} is in two shards`);
        fields.set(field, value);
      }
    }
    return fields;
  } finally {
    await client.quit();
  }
}

const exemplarFields = (fields: Map<string, string>): string[] =>
  [...fields.keys()].filter((field) => field.split("|").at(-2)!.startsWith("#")).sort();

// --- Every backend ---

for (const backend of BACKENDS) {
  test(`${backend.name}: a counter's latest exemplar is written by OpenMetrics, and the text is valid`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_jobs_total", help: "Jobs", labelNames: ["queue"], registry });
      // Braces in an exemplar's label values are valid OpenMetrics, but Python's parser rejects them.
      const tricky = 'a"b\\c\nd 🎉 # x=y';
      jobs.labels({ queue: "a" }).inc(2, { trace_id: "first" }, 1700000000.5);
      jobs.labels({ queue: "a" }).inc(3, { trace_id: tricky, span_id: "s" }, 1700000001.25);
      jobs.labels({ queue: "b" }).inc();
      const text = await generateLatest(registry, { format: "openmetrics" });
      await assertOpenMetrics(text);
      assert.match(
        text,
        /^ex_jobs_total\{queue="a"\} 5 # \{trace_id="a\\"b\\\\c\\nd 🎉 # x=y",span_id="s"\} 3 1700000001\.25$/m,
      );
      assert.match(text, /^ex_jobs_total\{queue="b"\} 1$/m);
      const families = await registry.collect();
      assert.deepEqual(
        plain(valueSeries(families, "ex_jobs", { queue: "a" }).exemplar),
        exemplar({ trace_id: tricky, span_id: "s" }, 3, 1700000001.25),
      );
      assert.equal(valueSeries(families, "ex_jobs", { queue: "b" }).exemplar, undefined);
      // Without a timestamp, the exemplar is stamped now, in Unix seconds.
      const before = Date.now() / 1000;
      jobs.labels({ queue: "b" }).inc(1, { trace_id: "now" });
      const stamped = valueSeries(await registry.collect(), "ex_jobs", { queue: "b" }).exemplar;
      assert.ok(
        stamped !== undefined && stamped.timestamp! >= before - 1 &&
          stamped.timestamp! <= Date.now() / 1000 + 1,
      );
    });
  });

  test(`${backend.name}: a histogram keeps one exemplar per bucket, +Inf last`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const latency = new Histogram({
        name: "ex_seconds",
        help: "Latency",
        labelNames: ["route"],
        buckets: [0.1, 1],
        registry,
      });
      const home = latency.labels({ route: "/" });
      home.observe(0.05, { trace_id: "fast" }, 100);
      home.observe(0.07, { trace_id: "faster" }, 101);
      home.observe(0.5);
      home.observe(5, { trace_id: "slow" }, 102);
      latency.labels({ route: "/other" }).observe(0.5);
      const families = await registry.collect();
      const series = histogramSeries(families, "ex_seconds", { route: "/" });
      assert.deepEqual(series.buckets, [2, 3, 4]);
      assert.deepEqual(byBucket(series), [
        exemplar({ trace_id: "faster" }, 0.07, 101),
        undefined,
        exemplar({ trace_id: "slow" }, 5, 102),
      ]);
      assert.equal(histogramSeries(families, "ex_seconds", { route: "/other" }).exemplars, undefined);
      const text = await generateLatest(registry, { format: "openmetrics" });
      await assertOpenMetrics(text);
      assert.match(text, /^ex_seconds_bucket\{route="\/",le="0\.1"\} 2 # \{trace_id="faster"\} 0\.07 101$/m);
      assert.match(text, /^ex_seconds_bucket\{route="\/",le="1\.0"\} 3$/m);
      assert.match(text, /^ex_seconds_bucket\{route="\/",le="\+Inf"\} 4 # \{trace_id="slow"\} 5 102$/m);
      assert.match(text, /^ex_seconds_sum\{route="\/"\} 5\.62$/m);
    });
  });

  test(`${backend.name}: an exemplar alone is recorded (inc(0, exemplar)), after the values were flushed`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_alone_total", help: "Jobs", registry });
      jobs.inc(4);
      await flush();
      jobs.inc(0, { trace_id: "only" }, 50);
      const series = valueSeries(await registry.collect(), "ex_alone", {});
      assert.equal(series.value, 4);
      assert.deepEqual(plain(series.exemplar), exemplar({ trace_id: "only" }, 0, 50));
    });
  });

  test(`${backend.name}: remove(), clear() and reset() drop exemplars`, async () => {
    await withBackend(backend, async (setup) => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_gone_total", help: "Jobs", labelNames: ["queue"], registry });
      const latency = new Histogram({ name: "ex_gone_seconds", help: "Latency", buckets: [1], registry });
      jobs.labels({ queue: "a" }).inc(1, { trace_id: "a" }, 10);
      jobs.labels({ queue: "b" }).inc(1, { trace_id: "b" }, 10);
      latency.observe(0.5, { trace_id: "h" }, 10);
      await flush();
      assert.ok(valueSeries(await registry.collect(), "ex_gone", { queue: "a" }).exemplar !== undefined);

      // remove(): the series comes back, without its exemplar.
      jobs.remove({ queue: "a" });
      jobs.labels({ queue: "a" }).inc();
      let families = await registry.collect();
      assert.equal(valueSeries(families, "ex_gone", { queue: "a" }).exemplar, undefined);
      assert.ok(valueSeries(families, "ex_gone", { queue: "b" }).exemplar !== undefined);
      assert.equal(valueSeries(families, "ex_gone", { queue: "a" }).value, 1);

      // clear(), and an exemplar pending at the time, never written.
      jobs.labels({ queue: "b" }).inc(1, { trace_id: "pending" }, 20);
      jobs.clear();
      jobs.labels({ queue: "b" }).inc();
      families = await registry.collect();
      assert.equal(valueSeries(families, "ex_gone", { queue: "b" }).exemplar, undefined);

      // reset(): the metric's own series starts afresh.
      latency.reset();
      latency.observe(0.5);
      families = await registry.collect();
      assert.equal(histogramSeries(families, "ex_gone_seconds", {}).exemplars, undefined);
      assert.deepEqual(histogramSeries(families, "ex_gone_seconds", {}).buckets, [1, 1]);
      const text = await generateLatest(registry, { format: "openmetrics" });
      assert.doesNotMatch(text, / # \{/);
      await assertOpenMetrics(text);

      if (setup.server !== undefined) {
        // Nothing left in Redis either.
        assert.deepEqual(exemplarFields(await hash(setup, "ex_gone_total")), []);
        assert.deepEqual(exemplarFields(await hash(setup, "ex_gone_seconds")), []);
      }
    });
  });

  test(`${backend.name}: text 0.0.4 has no exemplars and passes promtool`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_text_total", help: "Jobs", labelNames: ["queue"], registry });
      const latency = new Histogram({
        name: "ex_text_seconds",
        help: "Latency",
        buckets: [0.1, 1],
        registry,
      });
      jobs.labels({ queue: "a" }).inc(2, { trace_id: "abc" }, 1700000000);
      latency.observe(0.05, { trace_id: "fast" }, 1700000000);
      latency.observe(3, { trace_id: "slow" }, 1700000000);
      const text = await generateLatest(registry);
      assert.doesNotMatch(text, /#\s*\{/);
      assert.doesNotMatch(text, /trace_id/);
      assert.match(text, /^ex_text_total\{queue="a"\} 2$/m);
      assert.match(text, /^ex_text_seconds_bucket\{le="\+Inf"\} 2$/m);
      await assertPromtool(text);
      // And they are still there for OpenMetrics.
      assert.match(
        await generateLatest(registry, { format: "openmetrics" }),
        /# \{trace_id="abc"\} 2 1700000000/,
      );
    });
  });

  test(`${backend.name}: gauges and summaries never have exemplars`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const gauge = new Gauge({ name: "ex_gauge", help: "G", registry });
      const summary = new Summary({ name: "ex_summary", help: "S", registry });
      gauge.set(3);
      const observe = summary.observe as (value: number, ...rest: unknown[]) => void;
      try {
        observe.call(summary, 1, { trace_id: "s" }, 10);
      } catch {
        // A summary may refuse exemplars outright; either way it has none.
      }
      const families = await registry.collect();
      for (const series of family(families, "ex_gauge").series) assert.equal("exemplar" in series, false);
      for (const series of family(families, "ex_summary").series) {
        assert.equal("exemplar" in series || "exemplars" in series, false);
      }
      await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
    });
  });
}

// --- The remote backends: the greatest timestamp wins ---

for (const backend of BACKENDS.filter((b) => b.remote)) {
  test(`${backend.name}: an older exemplar never replaces a newer one, pending or stored`, async () => {
    await withBackend(backend, async () => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_order_total", help: "Jobs", labelNames: ["queue"], registry });
      const latency = new Histogram({ name: "ex_order_seconds", help: "Latency", buckets: [1], registry });
      // Stored, then an older one in a later batch.
      jobs.labels({ queue: "stored" }).inc(1, { trace_id: "new" }, 200);
      latency.observe(0.5, { trace_id: "new" }, 200);
      await flush();
      jobs.labels({ queue: "stored" }).inc(1, { trace_id: "old" }, 100);
      latency.observe(0.6, { trace_id: "old" }, 100);
      // Both pending in one batch, the older one last.
      jobs.labels({ queue: "pending" }).inc(1, { trace_id: "new" }, 200);
      jobs.labels({ queue: "pending" }).inc(1, { trace_id: "old" }, 100);
      // A tie replaces.
      jobs.labels({ queue: "tie" }).inc(1, { trace_id: "first" }, 300);
      await flush();
      jobs.labels({ queue: "tie" }).inc(1, { trace_id: "second" }, 300);
      const families = await registry.collect();
      assert.deepEqual(
        plain(valueSeries(families, "ex_order", { queue: "stored" }).exemplar),
        exemplar({ trace_id: "new" }, 1, 200),
      );
      assert.equal(valueSeries(families, "ex_order", { queue: "stored" }).value, 2);
      assert.deepEqual(
        plain(valueSeries(families, "ex_order", { queue: "pending" }).exemplar),
        exemplar({ trace_id: "new" }, 1, 200),
      );
      assert.deepEqual(
        plain(valueSeries(families, "ex_order", { queue: "tie" }).exemplar),
        exemplar({ trace_id: "second" }, 1, 300),
      );
      assert.deepEqual(byBucket(histogramSeries(families, "ex_order_seconds", {})), [
        exemplar({ trace_id: "new" }, 0.5, 200),
        undefined,
      ]);
    });
  });

  test(`${backend.name}: two stores on one Redis keep the newest exemplar per series, whichever flushes last`, async () => {
    await withBackend(backend, async (setup) => {
      // Two config objects: two stores, each with its own process id, as two processes would be.
      const other = { ...setup.config };
      const define = (registry: Registry) => ({
        jobs: new Counter({ name: "ex_two_total", help: "Jobs", labelNames: ["queue"], registry }),
        latency: new Histogram({ name: "ex_two_seconds", help: "Latency", buckets: [1], registry }),
      });
      const first = define(new Registry());
      await loadBackend({ backend: backend.name === "redis" ? "redis" : UpstashBackend, config: other });
      const secondRegistry = new Registry();
      const second = define(secondRegistry);
      await loadBackend({
        backend: backend.name === "redis" ? "redis" : UpstashBackend,
        config: setup.config!,
      });

      first.jobs.labels({ queue: "a" }).inc(1, { trace_id: "first-a" }, 2000);
      first.jobs.labels({ queue: "b" }).inc(1, { trace_id: "first-b" }, 1000);
      first.latency.observe(0.5, { trace_id: "first" }, 1000);
      first.latency.observe(5, { trace_id: "first" }, 2000);
      await flush();
      second.jobs.labels({ queue: "a" }).inc(1, { trace_id: "second-a" }, 1000);
      second.jobs.labels({ queue: "b" }).inc(1, { trace_id: "second-b" }, 2000);
      second.latency.observe(0.25, { trace_id: "second" }, 2000);
      second.latency.observe(7, { trace_id: "second" }, 1000);
      await flush();

      const families = await secondRegistry.collect();
      assert.equal(valueSeries(families, "ex_two", { queue: "a" }).value, 2);
      assert.equal(valueSeries(families, "ex_two", { queue: "a" }).exemplar?.labels.trace_id, "first-a");
      assert.equal(valueSeries(families, "ex_two", { queue: "b" }).exemplar?.labels.trace_id, "second-b");
      assert.deepEqual(byBucket(histogramSeries(families, "ex_two_seconds", {})), [
        exemplar({ trace_id: "second" }, 0.25, 2000),
        exemplar({ trace_id: "first" }, 5, 2000),
      ]);
      await assertOpenMetrics(await generateLatest(secondRegistry, { format: "openmetrics" }));
    });
  });

  test(`${backend.name}: an exemplar's field sits next to its value's, with the hash's expiry`, async () => {
    await withBackend(backend, async (setup) => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_fields_total", help: "Jobs", labelNames: ["queue"], registry });
      const latency = new Histogram({ name: "ex_fields_seconds", help: "Latency", buckets: [0.1], registry });
      jobs.labels({ queue: "a" }).inc(2, { trace_id: "abc" }, 1700000000.5);
      latency.observe(3, { trace_id: "slow" }, 12);
      await flush();
      const counter = await hash(setup, "ex_fields_total");
      assert.deepEqual(Object.fromEntries(counter), {
        '["queue","a"]||': "2",
        '["queue","a"]|#|': '1700000000.5 2 {"trace_id":"abc"}',
      });
      const histogram = await hash(setup, "ex_fields_seconds");
      assert.deepEqual(exemplarFields(histogram), ["[]|#+Inf|"]);
      assert.equal(histogram.get("[]|#+Inf|"), '12 3 {"trace_id":"slow"}');
      const key = metricKey(
        setup.prefix!,
        "ex_fields_total",
        shardOf("ex_fields_total", labelsText({ queue: "a" })),
      );
      // Both in the hash of the series' shard, which expires as a whole.
      assert.equal(await setup.server!.cli("HGET", key, '["queue","a"]||'), "2");
      assert.equal(
        await setup.server!.cli("HGET", key, '["queue","a"]|#|'),
        '1700000000.5 2 {"trace_id":"abc"}',
      );
      const ttl = Number(await setup.server!.cli("ttl", key));
      assert.ok(ttl > 0 && ttl <= 3600, `ttl ${ttl}`);
    });
  });

  test(`${backend.name}: a series' exemplars read directly (the values hook's exemplars())`, async () => {
    await withBackend(backend, async (setup) => {
      const cls = backend.name === "redis" ? RedisBackend : UpstashBackend;
      const counter = cls.values(setup.config!, {
        name: "ex_direct_total",
        type: "counter",
        labelValues: { queue: "a" },
        labelNames: ["queue"],
      }, undefined);
      assert.equal(await counter.exemplars?.(), undefined);
      counter.inc(0, 2);
      counter.exemplar!(0, exemplar({ trace_id: "direct" }, 2, 30));
      assert.deepEqual((await counter.exemplars!())?.map(plain), [exemplar({ trace_id: "direct" }, 2, 30)]);
      assert.equal(await counter.get(0), 2);
      const histogram = cls.values(setup.config!, {
        name: "ex_direct_seconds",
        type: "histogram",
        labelValues: {},
        labelNames: [],
      }, ["1.0", "+Inf", "sum"]);
      histogram.inc(1, 1);
      histogram.inc(2, 4);
      histogram.exemplar!(1, exemplar({ trace_id: "slow" }, 4, 31));
      const read = await histogram.exemplars!();
      assert.equal(read?.length, 2);
      assert.equal(read?.[0], undefined);
      assert.deepEqual(plain(read?.[1]), exemplar({ trace_id: "slow" }, 4, 31));
      const gauge = cls.values(setup.config!, {
        name: "ex_direct_gauge",
        type: "gauge",
        labelValues: {},
        labelNames: [],
      }, undefined);
      assert.equal(gauge.exemplars?.(), undefined);
    });
  });
}

// --- Exactly once, through a retried batch ---

test(
  "upstash: a batch applied twice (connection dropped after it ran) counts once and keeps its exemplar",
  async () => {
    await withBackend(upstash, async (setup) => {
      const registry = new Registry();
      const jobs = new Counter({ name: "ex_retry_total", help: "Jobs", registry });
      jobs.inc(1, { trace_id: "one" }, 10);
      await flush();
      setup.bridge!.fail("drop", 1);
      setup.bridge!.resetCounts();
      jobs.inc(2, { trace_id: "two" }, 20);
      await flush();
      assert.ok(
        (setup.bridge!.counts.commands.EVALSHA ?? 0) >= 2,
        JSON.stringify(setup.bridge!.counts.commands),
      );
      const series = valueSeries(await registry.collect(), "ex_retry", {});
      assert.equal(series.value, 3);
      assert.deepEqual(plain(series.exemplar), exemplar({ trace_id: "two" }, 2, 20));
    });
  },
  { timeout: 30_000 },
);

// --- A fleet: a child process and this one on one Redis ---

// The child records into the same metrics, then exits; its timestamps make some of its
// exemplars newer than this process's and some older.
function childSource(mod: string, backend: string, url: string, keyPrefix: string): string {
  return `
const { Counter, Histogram, Registry, flush, loadBackend } = await import(${JSON.stringify(mod)});
const { RedisBackend } = await import(${JSON.stringify(backend)});
await loadBackend({ backend: RedisBackend, config: { url: ${JSON.stringify(url)}, keyPrefix: ${
    JSON.stringify(keyPrefix)
  }, flushIntervalMs: 0 } });
const registry = new Registry();
const jobs = new Counter({ name: "fleet_jobs_total", help: "Jobs", labelNames: ["queue"], registry });
const latency = new Histogram({ name: "fleet_seconds", help: "Latency", buckets: [0.1, 1], registry });
jobs.labels({ queue: "a" }).inc(1, { trace_id: "child-a" }, 2000);
jobs.labels({ queue: "b" }).inc(1, { trace_id: "child-b" }, 1000);
jobs.labels({ queue: "c" }).inc(1, { trace_id: "child-c" }, 1500);
latency.observe(0.05, { trace_id: "child-fast" }, 2000);
latency.observe(0.5, { trace_id: "child-mid" }, 1000);
await flush();
await RedisBackend.close();
console.log("child flushed");
`;
}

function childCommand(file: string): [string, string[]] {
  const bin = join(ROOT, "node_modules", ".bin");
  if (runtime === "deno") {
    return [join(bin, "deno"), ["run", "-A", "--quiet", "--config", join(ROOT, "deno.json"), file]];
  }
  if (runtime === "bun") return [join(bin, "bun"), [file]];
  return ["node", [file]];
}

test("redis: a fleet (a child process and this one) shows the newest exemplar per series", async () => {
  const server = await startRedis();
  const dir = mkdtempSync(join(tmpdir(), "theus-exemplars-"));
  const keyPrefix = uniquePrefix();
  try {
    await loadBackend({ backend: "redis", config: { url: server.url, keyPrefix, flushIntervalMs: 0 } });
    const registry = new Registry();
    const jobs = new Counter({ name: "fleet_jobs_total", help: "Jobs", labelNames: ["queue"], registry });
    const latency = new Histogram({ name: "fleet_seconds", help: "Latency", buckets: [0.1, 1], registry });
    // Before the child: a newer exemplar than the child's, stored first.
    jobs.labels({ queue: "c" }).inc(1, { trace_id: "parent-c" }, 3000);
    await flush();

    // Deno and Bun run the sources, Node the build in dist/ (tests/run.mjs builds it).
    const dist = process.env.THEUS_WRITER_DIST || join(ROOT, "dist");
    const [mod, backend] = runtime === "node"
      ? [join(dist, "mod.js"), join(dist, "backends", "redis.js")]
      : [join(ROOT, "mod.ts"), join(ROOT, "backends", "redis.ts")];
    const file = join(dir, "child.mjs");
    writeFileSync(
      file,
      childSource(pathToFileURL(mod).href, pathToFileURL(backend).href, server.url, keyPrefix),
    );
    const [command, args] = childCommand(file);
    const child = await startProcess({ name: `exemplar child (${runtime})`, command, args, cwd: ROOT });
    try {
      await child.waitFor(/child flushed/, 45_000);
    } finally {
      await child.stop();
    }

    // After the child: older for a, newer for b.
    jobs.labels({ queue: "a" }).inc(1, { trace_id: "parent-a" }, 1000);
    jobs.labels({ queue: "b" }).inc(1, { trace_id: "parent-b" }, 2000);
    latency.observe(0.06, { trace_id: "parent-fast" }, 1000);
    latency.observe(0.6, { trace_id: "parent-mid" }, 2000);
    latency.observe(5, { trace_id: "parent-slow" }, 1500);
    const text = await generateLatest(registry, { format: "openmetrics" });
    await assertOpenMetrics(text);
    assert.match(text, /^fleet_jobs_total\{queue="a"\} 2 # \{trace_id="child-a"\} 1 2000$/m);
    assert.match(text, /^fleet_jobs_total\{queue="b"\} 2 # \{trace_id="parent-b"\} 1 2000$/m);
    assert.match(text, /^fleet_jobs_total\{queue="c"\} 2 # \{trace_id="parent-c"\} 1 3000$/m);
    assert.match(text, /^fleet_seconds_bucket\{le="0\.1"\} 2 # \{trace_id="child-fast"\} 0\.05 2000$/m);
    assert.match(text, /^fleet_seconds_bucket\{le="1\.0"\} 4 # \{trace_id="parent-mid"\} 0\.6 2000$/m);
    assert.match(text, /^fleet_seconds_bucket\{le="\+Inf"\} 5 # \{trace_id="parent-slow"\} 5 1500$/m);
    assert.match(text, /^fleet_seconds_count 5$/m);
  } finally {
    try {
      await flush();
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}, { timeout: 90_000 });

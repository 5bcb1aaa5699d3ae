// The remote backends at scale, against a real redis-server (and the Upstash REST bridge over
// one): flushes split into bounded requests stay exact and exactly-once while requests fail,
// series that no process writes any more expire one by one, and a metric's shard too large for
// one read is read in HSCAN steps, exactly.

import assert from "node:assert/strict";
import {
  Counter,
  defaultRegistry,
  flush,
  generateLatest,
  Histogram,
  loadBackend,
  metricsHandler,
  Registry,
  type ValueFamily,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import { field, indexKey, indexMember, labelsText, metricKey, shardOf } from "../backends/_remote/layout.ts";
import { PART_SERIES, READ_BUDGET } from "../backends/_remote/reader.ts";
import { STREAM } from "../metrics/registry.ts";
import { test } from "./_harness.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "./_upstash_bridge.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let prefixes = 0;
const uniquePrefix = (name: string) =>
  `scale-${name}-${++prefixes}-${Math.random().toString(36).slice(2, 8)}`;

/** The library's own health series for one key prefix, read without flushing. */
async function health(backend: string, prefix: string): Promise<{ pending: number; failures: number }> {
  const collector = defaultRegistry.get("theus_backend");
  assert.ok(collector !== undefined, "the health collector is registered");
  const families = await collector.collect();
  const read = (name: string) =>
    (families.find((f) => f.name === name) as ValueFamily).series
      .filter((s) => s.labels.backend === backend && s.labels.key_prefix === prefix)
      .reduce((sum, s) => sum + s.value, 0);
  return { pending: read("theus_backend_pending_series"), failures: read("theus_backend_flush_failures") };
}

/** Label sets long enough that a few thousand series make a request of several hundred kB. */
function route(i: number): string {
  return `/api/v1/orders/${String(i).padStart(6, "0")}/items/details`;
}

async function withUpstash(
  maxRequestBytes: number,
  extra: Record<string, unknown>,
  fn: (bridge: UpstashBridge, prefix: string) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  let bridge: UpstashBridge | undefined;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port, maxRequestBytes });
    const prefix = uniquePrefix("upstash");
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token: bridge.token, keyPrefix: prefix, maxRequestBytes, ...extra },
    });
    await fn(bridge, prefix);
  } finally {
    try {
      await loadBackend({ backend: "memory" });
      await UpstashBackend.close();
    } finally {
      await bridge?.close();
      await redis.stop();
    }
  }
}

async function withRedis(
  extra: Record<string, unknown>,
  fn: (server: RedisServer, prefix: string) => Promise<void>,
): Promise<void> {
  const server = await startRedis();
  try {
    const prefix = uniquePrefix("redis");
    await loadBackend({ backend: "redis", config: { url: server.url, keyPrefix: prefix, ...extra } });
    await fn(server, prefix);
  } finally {
    try {
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
    } finally {
      await server.stop();
    }
  }
}

/** Every series' value of a counter family, by route, through a collection. */
async function valuesByRoute(registry: Registry, name: string): Promise<Map<string, number>> {
  // A counter's family is named without `_total`.
  const family = (await registry.collect()).find((f) => `${f.name}_total` === name) as ValueFamily;
  return new Map(family.series.map((s) => [s.labels.route, s.value]));
}

test("upstash: a flush larger than maxRequestBytes is split into requests within it, every value exact", async () => {
  const limit = 64_000;
  await withUpstash(limit, {}, async (bridge) => {
    const registry = new Registry();
    const hits = new Counter({ name: "split_hits_total", help: "H", labelNames: ["route"], registry });
    for (let i = 0; i < 3000; i++) hits.labels({ route: route(i) }).inc(i + 1);
    bridge.resetCounts();
    await flush();
    assert.ok(bridge.counts.requests >= 4, `3,000 long series in ${bridge.counts.requests} requests`);
    assert.ok(bridge.counts.largestBody <= limit, `largest request ${bridge.counts.largestBody} B`);
    assert.ok(bridge.counts.largestBody > limit / 4, `requests are filled: ${bridge.counts.largestBody} B`);
    const values = await valuesByRoute(registry, "split_hits_total");
    assert.equal(values.size, 3000);
    for (let i = 0; i < 3000; i++) assert.equal(values.get(route(i)), i + 1, route(i));
  });
});

test("upstash: a split flush stays exactly-once while requests fail, time out or lose their answers", async () => {
  const limit = 32_000;
  await withUpstash(limit, { requestTimeoutMs: 400 }, async (bridge, prefix) => {
    const registry = new Registry();
    const hits = new Counter({ name: "split_faults_total", help: "H", labelNames: ["route"], registry });
    const series = 1500;
    const failures: [Parameters<UpstashBridge["fail"]>[0], number][] = [
      ["500", 1],
      ["drop", 2],
      ["slow", 2],
      ["500", 3],
      ["drop", 1],
    ];
    let requestsFailed = 0;
    for (const [round, [mode, count]] of failures.entries()) {
      for (let i = 0; i < series; i++) hits.labels({ route: route(i) }).inc(round + 1);
      bridge.fail(mode, count, 800);
      const before = (await health("upstash", prefix)).failures;
      await flush();
      if ((await health("upstash", prefix)).failures > before) requestsFailed++;
    }
    // Whatever failed is sent again by the next flushes; the slow answers land meanwhile.
    await sleep(1000);
    for (let i = 0; i < 5 && (await health("upstash", prefix)).pending > 0; i++) await flush();
    assert.equal((await health("upstash", prefix)).pending, 0, "nothing left pending");
    assert.ok(requestsFailed >= 3, `flushes that saw a failure: ${requestsFailed}`);
    assert.ok(bridge.counts.largestBody <= limit);
    const values = await valuesByRoute(registry, "split_faults_total");
    assert.equal(values.size, series);
    const total = failures.reduce((sum, _, round) => sum + round + 1, 0);
    for (let i = 0; i < series; i++) assert.equal(values.get(route(i)), total, route(i));
  });
});

// 12,000 series make one round of batches; 40,000 make three, and a failed flush sends its first
// round only: the rest waits, still pending, for the next flush.
for (const series of [12_000, 40_000]) {
  test(
    `redis: a batch whose predecessor in its shard failed is refused, then applied once after it (${series} series)`,
    async () => {
      // A command timeout shorter than a pause: the first flush's calls are sent and not answered.
      await withRedis({ commandTimeoutMs: 300 }, async (server, prefix) => {
        const registry = new Registry();
        const hits = new Counter({ name: "order_total", help: "H", labelNames: ["route"], registry });
        for (let i = 0; i < series; i++) hits.labels({ route: route(i) }).inc();
        server.pause();
        await flush();
        const failed = await health("redis", prefix);
        assert.ok(failed.failures >= 1, "the paused flush failed");
        assert.equal(failed.pending, series, "every series is pending");
        server.resume();
        // The unanswered calls ran when Redis resumed; these are new increments of the same series.
        for (let i = 0; i < series; i++) hits.labels({ route: route(i) }).inc(2);
        for (let i = 0; i < 5 && (await health("redis", prefix)).pending > 0; i++) await flush();
        assert.equal((await health("redis", prefix)).pending, 0, "nothing left pending");
        const values = await valuesByRoute(registry, "order_total");
        assert.equal(values.size, series);
        for (let i = 0; i < series; i++) assert.equal(values.get(route(i)), 3, route(i));
      });
    },
    { timeout: 60_000 },
  );
}

type RawRead = (...args: string[]) => Promise<string>;

/** Two label sets of `name` in one shard, and one in another. */
function labelSets(name: string): { dying: string; busy: string; elsewhere: string } {
  const byShard = new Map<number, string[]>();
  for (let i = 0; i < 200; i++) {
    const r = `/r${i}`;
    const shard = shardOf(name, labelsText({ route: r }));
    byShard.set(shard, [...(byShard.get(shard) ?? []), r]);
  }
  const [same] = [...byShard.values()].filter((routes) => routes.length >= 2);
  const dyingShard = shardOf(name, labelsText({ route: same[0] }));
  const other = [...byShard.entries()].find(([shard]) => shard !== dyingShard)![1][0];
  return { dying: same[0], busy: same[1], elsewhere: other };
}

async function expiry(
  backend: "redis" | "upstash",
  fn: (prefix: string, raw: RawRead) => Promise<void>,
  expireSeconds = 1,
): Promise<void> {
  if (backend === "redis") {
    await withRedis({ expireSeconds }, (server, prefix) => fn(prefix, (...args) => server.cli(...args)));
    return;
  }
  const redis = await startRedis();
  let bridge: UpstashBridge | undefined;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    const prefix = uniquePrefix("upstash");
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token: bridge.token, keyPrefix: prefix, expireSeconds },
    });
    await fn(prefix, (...args) => redis.cli(...args));
  } finally {
    try {
      await loadBackend({ backend: "memory" });
      await UpstashBackend.close();
    } finally {
      await bridge?.close();
      await redis.stop();
    }
  }
}

for (const backend of ["redis", "upstash"] as const) {
  test(
    `${backend}: a series no process writes for expireSeconds disappears while its metric stays busy`,
    async () => {
      await expiry(backend, async (prefix, raw) => {
        const registry = new Registry();
        const name = "expiry_requests_total";
        const { dying, busy, elsewhere } = labelSets(name);
        const hits = new Counter({ name, help: "H", labelNames: ["route"], registry });
        const latency = new Histogram({
          name: "expiry_latency",
          help: "L",
          labelNames: ["route"],
          buckets: [1, 2],
          registry,
        });
        hits.labels({ route: dying }).inc(5);
        hits.labels({ route: elsewhere }).inc(7);
        latency.labels({ route: dying }).observe(1.5, { trace_id: "abc" });
        await flush();
        const hash = metricKey(
          prefix,
          name,
          shardOf(name, labelsText({ route: dying })),
        );
        const index = indexKey(
          prefix,
          name,
          shardOf(name, labelsText({ route: dying })),
        );
        assert.equal(await raw("HGET", hash, field(labelsText({ route: dying }))), "5");
        assert.notEqual(await raw("ZSCORE", index, indexMember(labelsText({ route: dying }))), "");
        // The busy series of the same shard is written for longer than the expiry (1 s, so the
        // dying one goes between 1 and 1.1 s after its last write).
        const started = Date.now();
        while (Date.now() - started < 2000) {
          hits.labels({ route: busy }).inc();
          latency.labels({ route: busy }).observe(0.5);
          await flush();
          await sleep(100);
        }
        const values = await valuesByRoute(registry, name);
        assert.equal(values.has(dying), false, "the series no one writes is gone");
        assert.ok((values.get(busy) ?? 0) >= 10, "the busy one stays");
        assert.equal(values.has(elsewhere), false, "alone in its shard, it went with its keys");
        assert.equal(
          await raw("HGET", hash, field(labelsText({ route: dying }))),
          "",
          "its field is deleted",
        );
        assert.equal(
          await raw("ZSCORE", index, indexMember(labelsText({ route: dying }))),
          "",
          "and its member",
        );
        const histogram = (await registry.collect()).find((f) => f.name === "expiry_latency")!;
        assert.deepEqual(histogram.series.map((s) => s.labels.route), [busy], "a histogram's series too");
        const histogramHash = metricKey(
          prefix,
          "expiry_latency",
          shardOf("expiry_latency", labelsText({ route: dying })),
        );
        const left = (await raw("HKEYS", histogramHash)).split("\n").filter((f) => f.includes(dying));
        assert.deepEqual(left, [], "every field of the dead histogram series, its exemplar's included");
        // Written again, it starts afresh.
        hits.labels({ route: dying }).inc(2);
        assert.equal((await valuesByRoute(registry, name)).get(dying), 2);
      });
    },
    { timeout: 30_000 },
  );
}

for (const backend of ["redis", "upstash"] as const) {
  test(
    `${backend}: a write to a series past its expiry but not yet trimmed lands, and the trim spares it`,
    async () => {
      await expiry(backend, async (prefix, raw) => {
        const registry = new Registry();
        const name = "late_requests_total";
        const { dying: late, busy: idle } = labelSets(name);
        const hits = new Counter({ name, help: "H", labelNames: ["route"], registry });
        hits.labels({ route: late }).inc(5);
        hits.labels({ route: idle }).inc(1);
        await flush();
        // Both last writes made older than the expiry while the keys are still alive, as if no
        // flush had trimmed the shard since: a trim comes only with a flush that marks a last
        // write in the shard, and takes a hundred expired series at most.
        const hash = metricKey(prefix, name, shardOf(name, labelsText({ route: late })));
        const index = indexKey(prefix, name, shardOf(name, labelsText({ route: late })));
        for (const route of [late, idle]) await raw("ZADD", index, "0", indexMember(labelsText({ route })));
        await sleep(500); // past the time a series' last write is marked again (0.4 s at most)
        // The flush that writes it again marks its last write before it trims the shard, so the
        // series is live: the increment adds to what it held. The other one, not written, goes.
        hits.labels({ route: late }).inc(2);
        await flush();
        assert.equal(await raw("HGET", hash, field(labelsText({ route: late }))), "7");
        assert.equal(await raw("HGET", hash, field(labelsText({ route: idle }))), "");
        const values = await valuesByRoute(registry, name);
        assert.equal(values.get(late), 7);
        assert.equal(values.has(idle), false);
      }, 4);
    },
    { timeout: 30_000 },
  );
}

for (const backend of ["redis", "upstash"] as const) {
  test(
    `${backend}: a metric's shard too large for one read is read in steps, every series exact`,
    async () => {
      const body = async () => {
        const registry = new Registry();
        const latency = new Histogram({
          name: "wide_latency",
          help: "L",
          labelNames: ["route"],
          buckets: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
          registry,
        });
        // 12 fields a series: about 6,000 in each shard, more than one read takes.
        for (let i = 0; i < 8000; i++) latency.labels({ route: route(i) }).observe(i % 12);
        await flush();
        const family = (await registry.collect()).find((f) => f.name === "wide_latency")!;
        assert.equal(family.series.length, 8000);
        for (const series of family.series as { labels: { route: string }; count: number; sum: number }[]) {
          const i = Number(series.labels.route.split("/")[4]);
          assert.equal(series.count, 1);
          assert.equal(series.sum, i % 12);
        }
      };
      if (backend === "redis") await withRedis({}, body);
      else await withUpstash(10_000_000, {}, body);
    },
    { timeout: 120_000 },
  );
}

test(
  "redis: a large metric's label sets are the same objects from one scrape to the next, in every shard, until one is not read",
  async () => {
    await withRedis({}, async () => {
      const registry = new Registry();
      const counter = new Counter({ name: "kept_total", help: "K", labelNames: ["route"], registry });
      // More fields than one read takes: the metric is read shard by shard.
      for (let i = 0; i < 6000; i++) counter.labels({ route: route(i) }).inc(i);
      await flush();
      const scrape = async () => {
        const family = (await registry.collect()).find((f) => f.name === "kept") as ValueFamily;
        assert.equal(family.series.length, 6000);
        return new Map(family.series.map((s) => [s.labels.route, s]));
      };
      const first = await scrape();
      for (let round = 0; round < 2; round++) {
        const next = await scrape();
        for (const [route, series] of first) {
          const again = next.get(route);
          assert.ok(again !== undefined, route);
          assert.equal(again.value, Number(route.split("/")[4]));
          assert.ok(again.labels === series.labels, `${route}: a new label object in round ${round + 2}`);
        }
      }
      // A label set one scrape did not read is forgotten when the next starts: made again, it is
      // a new object, while the others stay the same.
      const gone = route(7);
      counter.remove({ route: gone });
      await flush();
      assert.equal((await registry.collect()).find((f) => f.name === "kept")!.series.length, 5999);
      assert.equal((await registry.collect()).find((f) => f.name === "kept")!.series.length, 5999);
      counter.labels({ route: gone }).inc(7);
      await flush();
      const last = await scrape();
      assert.equal(last.get(gone)!.value, 7);
      assert.ok(last.get(gone)!.labels !== first.get(gone)!.labels, "a removed label set is forgotten");
      assert.deepEqual(last.get(gone)!.labels, first.get(gone)!.labels);
      assert.ok(last.get(route(8))!.labels === first.get(route(8))!.labels);
    });
  },
  { timeout: 60_000 },
);

// Half of 6,000 routes are read by calls of several shards; half of 90,000 give every shard more
// fields than one call reads (READ_BUDGET), read by HSCAN steps.
for (const total of [6_000, 90_000]) {
  test(
    `redis: a large counter's scrapes stay exact and in label order as its series change between them (${total} series)`,
    async () => {
      await withRedis({}, async () => {
        const registry = new Registry();
        const counter = new Counter({ name: "moving_total", help: "M", labelNames: ["route"], registry });
        // Series come shard by shard, each shard's in label order.
        const shard = (r: string) => shardOf("moving_total", labelsText({ route: r }));
        const inOrder = (routes: string[]) =>
          routes.map((r) => [shard(r), r] as const).sort(([s, a], [t, b]) =>
            s - t || (a < b ? -1 : a > b ? 1 : 0)
          )
            .map(([, r]) => r);
        // What Redis should hold, by route.
        const expected = new Map<string, number>();
        const add = (i: number, by: number) => {
          counter.labels({ route: route(i) }).inc(by);
          expected.set(route(i), (expected.get(route(i)) ?? 0) + by);
        };
        const check = async (step: string) => {
          await flush();
          const family = (await registry.collect()).find((f) => f.name === "moving") as ValueFamily;
          const routes = family.series.map((s) => s.labels.route);
          // Compared one by one: a failed deepEqual of arrays this long takes minutes to describe.
          const want = inOrder([...expected.keys()]);
          assert.equal(routes.length, want.length, `${step}: series`);
          const at = routes.findIndex((r, i) => r !== want[i]);
          assert.equal(
            at,
            -1,
            `${step}: series ${at} is ${routes[at]}, not ${want[at]} (label order, by shard)`,
          );
          const wrong = family.series.filter((s) => s.value !== expected.get(s.labels.route));
          assert.equal(
            wrong.length,
            0,
            `${step}: ${wrong.length} wrong values, first ${wrong[0]?.labels.route}`,
          );
        };
        // Every other route first, then the ones between: new fields among the old, in Redis'
        // order too.
        for (let i = 0; i < total; i += 2) add(i, i + 1);
        const sizes = new Map<number, number>();
        for (const r of expected.keys()) sizes.set(shard(r), (sizes.get(shard(r)) ?? 0) + 1);
        if (total < 10_000) {
          assert.ok(Math.max(...sizes.values()) <= READ_BUDGET, "every shard read by calls");
        } else assert.ok(Math.min(...sizes.values()) > READ_BUDGET, "every shard read by HSCAN steps");
        await check("first scrape");
        await check("nothing changed");
        for (let i = 0; i < total; i += 6) add(i, 5);
        await check("values changed");
        await check("nothing changed again");
        for (let i = 1; i < total; i += 4) add(i, 1);
        await check("series added");
        // In some shards, as many series gone as new: the same count of fields, not the same ones.
        let next = total;
        for (let i = 0; i < total; i += 7) {
          if (!expected.has(route(i))) continue;
          counter.remove({ route: route(i) });
          expected.delete(route(i));
          while (shard(route(next)) !== shard(route(i))) next++;
          add(next++, 4);
        }
        await check("series replaced");
        for (let i = 0; i < total; i += 5) {
          if (!expected.has(route(i))) continue;
          counter.remove({ route: route(i) });
          expected.delete(route(i));
        }
        await check("series removed");
        for (let i = 3; i < total; i += 4) add(i, 2);
        await check("series added after the removal");
        await check("nothing changed at the end");
      });
    },
    { timeout: 60_000 },
  );
}

test("upstash: a large scrape's body goes out while the rest is read, and holds every series", async () => {
  await withUpstash(10_000_000, {}, async (bridge) => {
    const registry = new Registry();
    const metrics = 150;
    const series = 800;
    const counters = Array.from(
      { length: metrics },
      (_, m) => new Counter({ name: `wide_${m}_total`, help: "W", labelNames: ["route"], registry }),
    );
    for (const [m, counter] of counters.entries()) {
      for (let i = 0; i < series; i++) counter.labels({ route: `/r${i}` }).inc(m + i);
    }
    await flush();
    bridge.resetCounts();
    const response = await metricsHandler({ registry, compress: false })(new Request("http://x/metrics"));
    assert.equal(response.status, 200, response.status === 200 ? "" : await response.text());
    const atResponse = bridge.counts.requests;
    const text = await response.text();
    const total = bridge.counts.requests;
    assert.ok(atResponse < total, `the response started after ${atResponse} of ${total} requests`);
    const lines = text.split("\n").filter((line) => line.startsWith("wide_"));
    assert.equal(lines.length, metrics * series);
    const seen = new Set<string>();
    for (const line of lines) {
      const match = /^wide_(\d+)_total\{route="\/r(\d+)"\} (\S+)$/.exec(line);
      assert.ok(match !== null, line);
      const [, m, i, value] = match;
      assert.equal(Number(value), Number(m) + Number(i), line);
      seen.add(`${m}/${i}`);
    }
    assert.equal(seen.size, metrics * series, "no series twice");
    // Each family's metadata once, though it came in several parts.
    assert.equal(text.split("\n").filter((line) => line.startsWith("# TYPE ")).length, metrics);
  });
}, { timeout: 120_000 });

test(
  "redis: generateLatest() of metrics read in parts writes every series once, with its metadata once",
  async () => {
    await withRedis({}, async () => {
      const registry = new Registry();
      const counter = new Counter({ name: "parts_total", help: "P", labelNames: ["route"], registry });
      const latency = new Histogram({
        name: "parts_latency",
        help: "L",
        labelNames: ["route"],
        buckets: [1],
        registry,
      });
      // More fields than one read takes: both are read, and written, shard by shard.
      for (let i = 0; i < 6000; i++) counter.labels({ route: route(i) }).inc(i + 1);
      for (let i = 0; i < 3000; i++) latency.labels({ route: route(i) }).observe(i % 2 === 0 ? 0.5 : 2);
      await flush();
      for (const format of ["prometheus", "openmetrics"] as const) {
        const text = await generateLatest(registry, { format });
        const lines = text.split("\n");
        assert.equal(
          lines.filter((line) => line === "# TYPE parts_total counter" || line === "# TYPE parts counter")
            .length,
          1,
        );
        assert.equal(lines.filter((line) => line === "# TYPE parts_latency histogram").length, 1);
        const values = new Map<number, number>();
        for (const line of lines.filter((line) => line.startsWith("parts_total{"))) {
          const match = /^parts_total\{route="\/api\/v1\/orders\/(\d+)\/items\/details"\} (\S+)$/.exec(line);
          assert.ok(match !== null, line);
          assert.ok(!values.has(Number(match[1])), `${line}: twice`);
          values.set(Number(match[1]), Number(match[2]));
        }
        assert.equal(values.size, 6000);
        for (const [i, value] of values) assert.equal(value, i + 1);
        const counts = lines.filter((line) => line.startsWith("parts_latency_count{"));
        assert.equal(counts.length, 3000);
        const below = lines.filter((line) =>
          line.startsWith("parts_latency_bucket{") && line.includes('le="1.0"} 1')
        );
        assert.equal(below.length, 1500);
        assert.equal(text.endsWith("# EOF\n"), format === "openmetrics");
      }
    });
  },
  { timeout: 60_000 },
);

test(
  "redis: a large shard of a counter comes in parts of a few thousand series, in label order within the shard",
  async () => {
    await withRedis({}, async () => {
      const registry = new Registry();
      const counter = new Counter({ name: "sliced_total", help: "S", labelNames: ["n"], registry });
      // About 4,700 series a shard: more than one part's worth in each.
      const total = 75_000;
      for (let i = 0; i < total; i++) counter.labels({ n: String(i).padStart(6, "0") }).inc(i);
      await flush();
      const pieces: { series: { labels: { n: string }; value: number }[]; continued: boolean }[] = [];
      for await (const { family, continued } of registry[STREAM]()) {
        if (family.name === "sliced") pieces.push({ series: family.series as never, continued });
      }
      assert.ok(pieces.length > 16, `${pieces.length} parts`);
      assert.deepEqual(pieces.map((piece) => piece.continued), pieces.map((_, i) => i > 0));
      for (const piece of pieces) {
        assert.ok(piece.series.length <= PART_SERIES + 256, `${piece.series.length}`);
      }
      const all = pieces.flatMap((piece) => piece.series);
      assert.equal(all.length, total);
      assert.equal(new Set(all.map((series) => series.labels.n)).size, total);
      for (const series of all) assert.equal(series.value, Number(series.labels.n));
      // In label order within each of the 16 shards: the order starts again at most 15 times.
      let restarts = 0;
      for (let i = 1; i < all.length; i++) if (all[i].labels.n < all[i - 1].labels.n) restarts++;
      assert.ok(restarts <= 15, `${restarts} restarts`);
    });
  },
  { timeout: 120_000 },
);

test("redis: a histogram's series come shard by shard, each shard's in label order, whatever order Redis keeps", async () => {
  await withRedis({}, async () => {
    const registry = new Registry();
    const latency = new Histogram({
      name: "ordered_seconds",
      help: "O",
      labelNames: ["route"],
      buckets: [1],
      registry,
    });
    // About 750 label sets a shard: more than one run of the sort in each.
    const total = 12_000;
    for (let i = total - 1; i >= 0; i -= 2) latency.labels({ route: route(i) }).observe(i % 3);
    for (let i = 0; i < total; i += 2) latency.labels({ route: route(i) }).observe(i % 3);
    await flush();
    const family = (await registry.collect()).find((f) => f.name === "ordered_seconds");
    const texts = (family?.series ?? []).map((s) => labelsText(s.labels));
    assert.equal(texts.length, total);
    const shard = (text: string) => shardOf("ordered_seconds", text);
    const misplaced = texts.findIndex((text, i) =>
      i > 0 &&
      (shard(texts[i - 1]) > shard(text) || shard(texts[i - 1]) === shard(text) && texts[i - 1] >= text)
    );
    assert.equal(misplaced, -1, `series ${misplaced} (${texts[misplaced]}) after ${texts[misplaced - 1]}`);
  });
});

test("redis: collecting no metrics reads nothing and gives no family", async () => {
  await withRedis({}, async (server, prefix) => {
    const config = { url: server.url, keyPrefix: prefix };
    assert.deepEqual(await RedisBackend.collect(config, []), []);
    const parts: unknown[] = [];
    for await (const part of RedisBackend.stream(config, [])) parts.push(part);
    assert.deepEqual(parts, []);
  });
});

// The Redis key layout: a metric's series spread over 16 shards, each with a Cluster hash tag of
// its own (the heartbeats under the prefix's), one hash per metric and shard, one field per
// value, encoded canonically and unambiguously; and label sets of any characters written and
// collected back exactly, checked against a model the test keeps.

import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "ioredis";
import { Counter, flush, Gauge, generateLatest, Histogram, loadBackend, Registry, Summary } from "../mod.ts";
import type { Labels } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import {
  indexKey,
  instancesKey,
  labelsText,
  metricKey,
  shardOf,
  SHARDS,
  shardTags,
} from "../backends/_remote/layout.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { test } from "./_harness.ts";

async function withRedis(fn: (server: RedisServer, client: Redis) => Promise<void>): Promise<void> {
  const server = await startRedis();
  const client = new Redis(server.url);
  try {
    await fn(server, client);
  } finally {
    await loadBackend({ backend: "memory" });
    await client.quit();
    await RedisBackend.close();
    await server.stop();
  }
}

/** The hash tag Redis Cluster hashes a key by: the text between the first "{" and the next "}". */
function hashTag(key: string): string {
  const open = key.indexOf("{");
  const close = key.indexOf("}", open + 1);
  return open < 0 || close <= open + 1 ? key : key.slice(open + 1, close);
}

/** The field of one value: the label set, the bucket (or "") and the instance (or ""). */
function field(labels: Labels, bucket = "", instance = ""): string {
  return `${labelsText(labels)}|${bucket}|${instance}`;
}

// Label text made of the characters that break naive encodings, plus anything else.
const tricky = fc.string({
  unit: fc.oneof(
    fc.constantFrom(
      "\n",
      "\r",
      '"',
      "\\",
      ",",
      "=",
      "{",
      "}",
      "[",
      "]",
      ":",
      "|",
      " ",
      "",
      "🎉",
      "é",
      "\u0000",
    ),
    fc.constantFrom("\ud800", "\udfff"), // lone surrogates
    fc.string({ unit: "binary", maxLength: 1 }),
  ),
  maxLength: 8,
});

test("every key of a metric's series carries one of the prefix's 16 shard tags; one field per value", async () => {
  await withRedis(async (server, client) => {
    const instanceId = "host-1";
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "myapp", flushIntervalMs: 0, instanceId },
    });
    const registry = new Registry();
    const requests = new Counter({
      name: "http_requests_total",
      help: "Requests",
      labelNames: ["method", "status"],
      registry,
    });
    requests.labels({ status: "200", method: "GET" }).inc(3);
    requests.labels({ method: "POST", status: "500" }).inc();
    new Gauge({ name: "temperature", help: "Temperature", registry }).set(-1.5);
    const latency = new Histogram({ name: "latency_seconds", help: "Latency", buckets: [0.1, 1], registry });
    for (const value of [0.0625, 0.5, 0.5, 4]) latency.observe(value);
    const size = new Summary({ name: "size_bytes", help: "Size", registry });
    size.observe(512);
    size.observe(1024);
    new Gauge({ name: "workers", help: "Workers", mode: "max", registry }).set(8);
    await flush();

    // The series written, and the shard each belongs to.
    const series: [string, Labels][] = [
      ["http_requests_total", { method: "GET", status: "200" }],
      ["http_requests_total", { method: "POST", status: "500" }],
      ["temperature", {}],
      ["latency_seconds", {}],
      ["size_bytes", {}],
      ["workers", {}],
    ];
    const shardOfSeries = (name: string, labels: Labels) => shardOf(name, labelsText(labels));
    const tags = shardTags("myapp");
    const keys = (await server.cli("--scan")).split("\n").filter((key) => key !== "").sort();
    // No key without a hash tag; the heartbeats have the prefix's own, every other key a shard's.
    for (const key of keys) {
      assert.notEqual(hashTag(key), key, `${key} has no hash tag`);
      if (key === "{myapp}:instances") continue;
      assert.ok(tags.includes(hashTag(key)), key);
      assert.match(hashTag(key), /^myapp:\d+$/, key);
    }
    const applied = keys.filter((key) => key.includes(":applied:"));
    // One marker per process in each shard it wrote.
    const written = [...new Set(series.map(([name, labels]) => shardOfSeries(name, labels)))].sort((a, b) =>
      a - b
    );
    assert.deepEqual(applied.map((key) => tags.indexOf(hashTag(key))).sort((a, b) => a - b), written);
    for (const key of applied) assert.match(key, /^\{myapp:\d+\}:applied:[\w.:-]+$/);
    assert.equal(
      new Set(applied.map((key) => key.slice(key.indexOf(":applied:")))).size,
      1,
      applied.join(" "),
    );
    // Each metric's hash and last-write index in the shard of each of its series, and nothing else.
    const expected = new Set<string>(["{myapp}:instances"]);
    for (const [name, labels] of series) {
      expected.add(metricKey("myapp", name, shardOfSeries(name, labels)));
      expected.add(indexKey("myapp", name, shardOfSeries(name, labels)));
    }
    assert.deepEqual(keys.filter((key) => !applied.includes(key)), [...expected].sort());
    for (const key of keys) {
      const type = applied.includes(key) ? "string" : key.includes(":t:") ? "zset" : "hash";
      assert.equal(await client.type(key), type, key);
    }

    // A series' fields are in its shard's hash; merged, the hashes hold one field per value.
    const hash = async (name: string) => {
      const merged: Record<string, string> = {};
      for (let shard = 0; shard < SHARDS; shard++) {
        Object.assign(merged, await client.hgetall(metricKey("myapp", name, shard)));
      }
      return merged;
    };
    const shardHash = (name: string, labels: Labels) =>
      client.hgetall(metricKey("myapp", name, shardOfSeries(name, labels)));
    assert.deepEqual(await hash("http_requests_total"), {
      [field({ method: "GET", status: "200" })]: "3",
      [field({ method: "POST", status: "500" })]: "1",
    });
    for (const labels of [{ method: "GET", status: "200" }, { method: "POST", status: "500" }]) {
      assert.ok(field(labels) in await shardHash("http_requests_total", labels), JSON.stringify(labels));
    }
    assert.deepEqual(await shardHash("temperature", {}), { [field({})]: "-1.5" });
    // Histogram buckets hold their own counts (not cumulative), bounds written canonically.
    assert.deepEqual(await shardHash("latency_seconds", {}), {
      [field({}, "0.1")]: "1",
      [field({}, "1.0")]: "2",
      [field({}, "+Inf")]: "1",
      [field({}, "sum")]: "5.0625",
    });
    assert.deepEqual(await shardHash("size_bytes", {}), {
      [field({}, "sum")]: "1536",
      [field({}, "count")]: "2",
    });
    // A per-instance gauge: one field per instance.
    assert.deepEqual(await shardHash("workers", {}), { [field({}, "", instanceId)]: "8" });
    for (const name of ["temperature", "latency_seconds", "size_bytes", "workers"]) {
      assert.deepEqual(await hash(name), await shardHash(name, {}), `${name} has one series, in one shard`);
    }
    // The last-write index: one member per series (and instance), scored with Redis' time in ms.
    const [seconds] = (await client.time()).map(Number);
    for (const [name, labels] of series) {
      const instance = name === "workers" ? instanceId : "";
      const score = await client.zscore(
        indexKey("myapp", name, shardOfSeries(name, labels)),
        `${labelsText(labels)}|${instance}`,
      );
      assert.ok(score !== null && Math.abs(Number(score) - seconds * 1000) < 5000, `${name}: ${score}`);
    }
    const beats = await client.hgetall(instancesKey("myapp"));
    assert.deepEqual(Object.keys(beats), [instanceId]);
    assert.ok(Number(beats[instanceId]) > Date.now(), "the heartbeat lies in the future");
  });
});

test("a metric with 2,000 label sets has keys in all 16 shards, each series in the shard of its labels", async () => {
  await withRedis(async (server, client) => {
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "wide", flushIntervalMs: 0 },
    });
    const requests = new Counter({
      name: "wide_total",
      help: "W",
      labelNames: ["route"],
      registry: new Registry(),
    });
    for (let i = 0; i < 2000; i++) requests.labels({ route: `/r/${i}` }).inc(i + 1);
    await flush();
    const tags = shardTags("wide");
    const keys = (await server.cli("--scan", "--pattern", "*:m:wide_total")).split("\n").filter((key) =>
      key !== ""
    );
    assert.deepEqual(keys.map(hashTag).sort(), [...tags].sort());
    let total = 0;
    for (const [shard, tag] of tags.entries()) {
      const key = metricKey("wide", "wide_total", shard);
      assert.equal(key, `{${tag}}:m:wide_total`);
      const fields = await client.hgetall(key);
      const routes = Object.keys(fields).map((f) => (JSON.parse(f.slice(0, f.indexOf("|"))) as string[])[1]);
      assert.ok(routes.length > 0, `shard ${shard}`);
      for (const route of routes) {
        assert.equal(shardOf("wide_total", labelsText({ route })), shard, route);
        assert.equal(Number(fields[field({ route })]), Number(route.slice(3)) + 1, route);
      }
      total += routes.length;
      assert.equal(
        await client.zcard(indexKey("wide", "wide_total", shard)),
        routes.length,
        `index of shard ${shard}`,
      );
    }
    assert.equal(total, 2000);
  });
});

test("labelsText() is canonical and unambiguous for any label names and values", () => {
  const labelSet = fc.uniqueArray(fc.tuple(tricky, tricky), { selector: ([name]) => name, maxLength: 5 });
  const same = (a: [string, string][], b: [string, string][]) =>
    a.length === b.length && a.every(([name, value]) => b.some(([n, v]) => n === name && v === value));
  fc.assert(
    fc.property(labelSet, labelSet, fc.nat(), (a, b, seed) => {
      const shuffled = [...a].sort((x, y) =>
        ((x[0].length * 31 + seed) % 7) - ((y[0].length * 31 + seed) % 7)
      );
      const fa = labelsText(Object.fromEntries(a));
      // The same label set in any key order: the same field.
      assert.equal(labelsText(Object.fromEntries(shuffled)), fa);
      assert.equal(labelsText(Object.fromEntries([...a].reverse())), fa);
      // Different label sets: different fields.
      assert.equal(labelsText(Object.fromEntries(b)) === fa, same(a, b));
      // The field decodes back to the label set, and is one line.
      const flat = JSON.parse(fa) as string[];
      const decoded: [string, string][] = [];
      for (let i = 0; i < flat.length; i += 2) decoded.push([flat[i], flat[i + 1]]);
      assert.ok(same(decoded, a));
      assert.ok(!fa.includes("\n"));
    }),
    { numRuns: 500 },
  );
  // Near misses, where naive joins collide.
  const pairs: [Labels, Labels][] = [
    [{ a: "1,b=2" }, { a: "1", b: "2" }],
    [{ a: '1","b' }, { a: "1", b: "" }],
    [{ a: "x|" }, { a: "x" }],
    [{ "a": "" }, {}],
    [{ a: "\ud800" }, { a: "\ufffd" }],
  ];
  for (const [x, y] of pairs) assert.notEqual(labelsText(x), labelsText(y), JSON.stringify([x, y]));
});

test("random label sets written through Redis are collected back exactly, as they are written", async () => {
  await withRedis(async (server) => {
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "prop", flushIntervalMs: 0 },
    });
    const value = fc.oneof(tricky, fc.constantFrom("", "a", "b")); // repeats make series meet again
    const op = fc.record({
      labels: fc.tuple(value, value, value),
      inc: fc.integer({ min: 0, max: 1000 }),
      set: fc.oneof(fc.double(), fc.constantFrom(Infinity, -Infinity, NaN, 0.1, 1e21, 5e-324)),
    });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 30 }), async (ops) => {
        run++;
        const registry = new Registry();
        const labelNames = ["a", "b", "c"];
        const c = new Counter({ name: `prop_c${run}`, help: "C", labelNames, registry });
        const g = new Gauge({ name: `prop_g${run}`, help: "G", labelNames, registry });
        const counts = new Map<string, number>();
        const gauges = new Map<string, number>();
        for (const { labels: [a, b, cc], inc, set } of ops) {
          // As written: a lone surrogate is U+FFFD, so values differing only there are one series.
          const key = JSON.stringify([a, b, cc].map((v) => v.toWellFormed()));
          // Half the updates in a first flush, so some series are read after two flushes.
          c.labels({ c: cc, b, a }).inc(inc);
          g.labels({ a, b, c: cc }).set(Object.is(set, -0) ? 0 : set);
          counts.set(key, (counts.get(key) ?? 0) + inc);
          gauges.set(key, Object.is(set, -0) ? 0 : set);
          if (counts.size === 2) await flush();
        }
        const families = await registry.collect();
        const read = (index: number) =>
          new Map(
            (families[index].series as { labels: Labels; value: number }[]).map((
              s,
            ) => [JSON.stringify([s.labels.a, s.labels.b, s.labels.c]), s.value]),
          );
        assert.equal(families[0].series.length, counts.size);
        assert.deepEqual(read(0), counts);
        assert.deepEqual(read(1), gauges);
      }),
      { numRuns: 40 },
    );
  });
});

test("collected label sets follow each metric's own labelNames, as on the memory backend", async () => {
  await withRedis(async (server) => {
    const a = { url: server.url, keyPrefix: "order", flushIntervalMs: 0 };
    const b = { url: server.url, keyPrefix: "order", flushIntervalMs: 0 };
    // Another process, still on an older schema of metric "z": labels a and b.
    await loadBackend({ backend: "redis", config: b });
    new Counter({ name: "z_total", help: "Z", labelNames: ["a", "b"], registry: new Registry() })
      .labels({ a: "1", b: "2" }).inc(5);
    await flush();

    await loadBackend({ backend: "redis", config: a });
    const registry = new Registry();
    const x = new Counter({ name: "x_total", help: "X", labelNames: ["a", "b"], registry });
    const y = new Counter({ name: "y_total", help: "Y", labelNames: ["b", "a"], registry });
    const z = new Counter({ name: "z_total", help: "Z", labelNames: ["a", "c"], registry });
    x.labels({ a: "1", b: "2" }).inc();
    y.labels({ a: "1", b: "2" }).inc(2);
    z.labels({ a: "1", c: "3" }).inc(3);
    const families = await registry.collect();
    assert.deepEqual(families.map((f) => f.series.map((s) => Object.keys(s.labels))), [
      [["a", "b"]],
      [["b", "a"]],
      [["a", "c"]],
    ]);
    const text = await generateLatest(registry);
    assert.ok(text.includes('\nx_total{a="1",b="2"} 1\n'), text);
    assert.ok(text.includes('\ny_total{b="2",a="1"} 2\n'), text);
    assert.ok(text.includes('\nz_total{a="1",c="3"} 3\n'), text);
    assert.ok(!text.includes('z_total{a="1",b="2"}'), text);
  });
});

test("an exemplar has a field next to its value's: the value name marked with #, and its timestamp first", async () => {
  await withRedis(async (server, client) => {
    await loadBackend({ backend: "redis", config: { url: server.url, keyPrefix: "ex", flushIntervalMs: 0 } });
    const registry = new Registry();
    const requests = new Counter({
      name: "requests_total",
      help: "Requests",
      labelNames: ["status"],
      registry,
    });
    requests.labels({ status: "200" }).inc(2, { trace_id: "4bf92f35" }, 1700000000.5);
    const latency = new Histogram({ name: "latency_seconds", help: "Latency", buckets: [0.1, 1], registry });
    latency.observe(0.0625, { trace_id: "fast" }, 1700000001);
    latency.observe(4, { trace_id: "slow" }, 1700000002);
    await flush();
    const requestsKey = metricKey(
      "ex",
      "requests_total",
      shardOf("requests_total", labelsText({ status: "200" })),
    );
    const latencyKey = metricKey("ex", "latency_seconds", shardOf("latency_seconds", labelsText({})));
    assert.deepEqual(await client.hgetall(requestsKey), {
      [field({ status: "200" })]: "2",
      [field({ status: "200" }, "#")]: '1700000000.5 2 {"trace_id":"4bf92f35"}',
    });
    assert.deepEqual(await client.hgetall(latencyKey), {
      [field({}, "0.1")]: "1",
      [field({}, "+Inf")]: "1",
      [field({}, "1.0")]: "0",
      [field({}, "sum")]: "4.0625",
      [field({}, "#0.1")]: '1700000001 0.0625 {"trace_id":"fast"}',
      [field({}, "#+Inf")]: '1700000002 4 {"trace_id":"slow"}',
    });
    // Removing the series removes its exemplars' fields with its values'.
    requests.remove({ status: "200" });
    latency.reset();
    await flush();
    assert.deepEqual(await client.hgetall(requestsKey), {});
    assert.deepEqual(
      Object.keys(await client.hgetall(latencyKey)).filter((f) => f.includes("|#")),
      [],
    );
  });
});

// The Redis key layout: one Cluster hash tag per prefix, one hash per metric, one field per
// value, encoded canonically and unambiguously; and label sets of any characters written and
// collected back exactly, checked against a model the test keeps.

import assert from "node:assert/strict";
import fc from "fast-check";
import { Redis } from "ioredis";
import { Counter, flush, Gauge, generateLatest, Histogram, loadBackend, Registry, Summary } from "../mod.ts";
import type { Labels } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { labelsText } from "../backends/_remote/layout.ts";
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

test("every key shares the {keyPrefix} hash tag; one hash per metric, one field per value", async () => {
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

    const keys = (await server.cli("--scan")).split("\n").filter((key) => key !== "").sort();
    for (const key of keys) {
      assert.ok(key.startsWith("{myapp}:"), key);
      assert.equal(hashTag(key), "myapp", key);
    }
    const applied = keys.filter((key) => key.startsWith("{myapp}:applied:"));
    assert.equal(applied.length, 1, keys.join(" ")); // one marker per process
    assert.match(applied[0], /^\{myapp\}:applied:[\w.:-]+$/);
    assert.deepEqual(keys.filter((key) => !applied.includes(key)), [
      "{myapp}:instances",
      "{myapp}:m:http_requests_total",
      "{myapp}:m:latency_seconds",
      "{myapp}:m:size_bytes",
      "{myapp}:m:temperature",
      "{myapp}:m:workers",
    ]);
    for (const key of keys) assert.equal(await client.type(key), key === applied[0] ? "string" : "hash", key);

    const hash = (name: string) => client.hgetall(`{myapp}:m:${name}`);
    assert.deepEqual(await hash("http_requests_total"), {
      [field({ method: "GET", status: "200" })]: "3",
      [field({ method: "POST", status: "500" })]: "1",
    });
    assert.deepEqual(await hash("temperature"), { [field({})]: "-1.5" });
    // Histogram buckets hold their own counts (not cumulative), bounds written canonically.
    assert.deepEqual(await hash("latency_seconds"), {
      [field({}, "0.1")]: "1",
      [field({}, "1.0")]: "2",
      [field({}, "+Inf")]: "1",
      [field({}, "sum")]: "5.0625",
    });
    assert.deepEqual(await hash("size_bytes"), { [field({}, "sum")]: "1536", [field({}, "count")]: "2" });
    // A per-instance gauge: one field per instance.
    assert.deepEqual(await hash("workers"), { [field({}, "", instanceId)]: "8" });
    const beats = await client.hgetall("{myapp}:instances");
    assert.deepEqual(Object.keys(beats), [instanceId]);
    assert.ok(Number(beats[instanceId]) > Date.now(), "the heartbeat lies in the future");
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
    assert.deepEqual(await client.hgetall("{ex}:m:requests_total"), {
      [field({ status: "200" })]: "2",
      [field({ status: "200" }, "#")]: '1700000000.5 2 {"trace_id":"4bf92f35"}',
    });
    assert.deepEqual(await client.hgetall("{ex}:m:latency_seconds"), {
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
    assert.deepEqual(await client.hgetall("{ex}:m:requests_total"), {});
    assert.deepEqual(
      Object.keys(await client.hgetall("{ex}:m:latency_seconds")).filter((f) => f.includes("|#")),
      [],
    );
  });
});

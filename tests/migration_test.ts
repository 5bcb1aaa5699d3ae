// What code coming from prom-client or client_golang reaches for: the collect option, registry-wide
// labels, the bucket helpers, timers that take labels at start and at stop, and the errors that
// answer prom-client's option names and call shapes with the theus form. Memory backend; every
// test has a registry of its own.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Counter,
  type CounterOptions,
  exponentialBuckets,
  exponentialBucketsRange,
  Gauge,
  type GaugeOptions,
  generateLatest,
  Histogram,
  type HistogramOptions,
  type HistogramSeries,
  linearBuckets,
  type MetricFamily,
  metricsHandler,
  Registry,
  Summary,
  type SummaryOptions,
  type SummarySeries,
} from "../mod.ts";
import { test } from "./_harness.ts";
import { find, parseSamples, valueOf, warningsOf } from "./_samples.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The text exposition of a registry, after promtool and the OpenMetrics parser accepted both formats. */
async function rendered(registry: Registry): Promise<string> {
  const text = await generateLatest(registry);
  await assertPromtool(text);
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  return text;
}

async function familyOf(registry: Registry, name: string): Promise<MetricFamily> {
  const family = (await registry.collect()).find((f) => f.name === name);
  assert.ok(family !== undefined, `family "${name}" was not collected`);
  return family;
}

function metricsRequest(): Request {
  return new Request("http://test/metrics", { headers: { accept: "text/plain" } });
}

/** A TypeError (or `type`) whose message contains every one of `parts`. */
function error(parts: string[], type: new (...args: never[]) => Error = TypeError): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof type, `expected a ${type.name}, got ${e}`);
    for (const part of parts) {
      assert.ok((e as Error).message.includes(part), `${part} not in: ${(e as Error).message}`);
    }
    return true;
  };
}

/** A metric called the way prom-client's typings allow, with any arguments. */
type Loose = Record<string, (...args: unknown[]) => unknown>;
const loose = (metric: object): Loose => metric as unknown as Loose;

/** Options as prom-client code writes them, past theus' option types. */
const asOptions = <T>(options: Record<string, unknown>): T => options as T;

// --- collect option ---

test("collect option: a gauge's collect() runs once per scrape, with the gauge as this, before the read", async () => {
  const registry = new Registry();
  const queue: string[] = ["a", "b"];
  const seen: unknown[] = [];
  const depth: Gauge = new Gauge({
    name: "queue_depth",
    help: "Jobs waiting",
    registry,
    collect() {
      seen.push(this);
      this.set(queue.length);
    },
  });
  assert.deepEqual(seen, [], "collect() waits for a scrape");
  assert.equal(await depth.get(), 0);
  assert.equal(valueOf(await rendered(registry), "queue_depth", {}), 2);
  // rendered() scrapes twice (two formats): once each.
  assert.equal(seen.length, 2);
  assert.ok(seen.every((self) => self === depth), "this is the gauge");
  queue.push("c", "d", "e");
  assert.deepEqual((await familyOf(registry, "queue_depth")).series, [{ labels: {}, value: 5 }]);
  assert.equal(seen.length, 3);
  queue.length = 0;
  const response = await metricsHandler({ registry })(metricsRequest());
  assert.equal(response.status, 200);
  assert.equal(valueOf(await response.text(), "queue_depth", {}), 0);
  assert.equal(seen.length, 4);
  assert.equal(await depth.get(), 0);
});

test("collect option on Counter, Histogram and Summary, sync or async, sets values each scrape reads", async () => {
  const registry = new Registry();
  let pending = 3;
  new Counter({
    name: "jobs_done_total",
    help: "Jobs done",
    registry,
    collect() {
      this.inc(pending);
      pending = 0;
    },
  });
  const sizes = [0.5, 2];
  new Histogram({
    name: "batch_seconds",
    help: "Batch durations",
    buckets: [1],
    registry,
    async collect() {
      await sleep(2);
      for (const size of sizes.splice(0)) this.observe(size);
    },
  });
  new Summary({
    name: "payload_bytes",
    help: "Payload sizes",
    labelNames: ["kind"],
    registry,
    async collect() {
      await Promise.resolve();
      this.labels({ kind: "upload" }).observe(100);
    },
  });
  // rendered() scrapes twice (text, then OpenMetrics); the text is the first of the two.
  let text = await rendered(registry);
  assert.equal(valueOf(text, "jobs_done_total", {}), 3, text);
  assert.equal(valueOf(text, "batch_seconds_count", {}), 2, text);
  assert.equal(valueOf(text, "batch_seconds_bucket", { le: "1" }), 1, text);
  assert.equal(valueOf(text, "batch_seconds_sum", {}), 2.5, text);
  assert.equal(valueOf(text, "payload_bytes_count", { kind: "upload" }), 1, text);
  pending = 4;
  sizes.push(0.25);
  text = await rendered(registry);
  assert.equal(valueOf(text, "jobs_done_total", {}), 7, text);
  assert.equal(valueOf(text, "batch_seconds_count", {}), 3, text);
  assert.equal(valueOf(text, "batch_seconds_sum", {}), 2.75, text);
  assert.equal(valueOf(text, "payload_bytes_count", { kind: "upload" }), 3, text);
  assert.equal(valueOf(text, "payload_bytes_sum", { kind: "upload" }), 300, text);
});

test("collect option: metric.collect() runs it too, and the children it sets are collected", async () => {
  const registry = new Registry();
  const depths = new Map([["email", 3], ["sms", 1]]);
  let calls = 0;
  const g = new Gauge({
    name: "queue_depth_by_queue",
    help: "Jobs waiting per queue",
    labelNames: ["queue"],
    registry,
    collect() {
      calls++;
      for (const [queue, depth] of depths) this.labels({ queue }).set(depth);
    },
  });
  const [family] = await g.collect();
  assert.equal(calls, 1);
  assert.deepEqual(family.series, [
    { labels: { queue: "email" }, value: 3 },
    { labels: { queue: "sms" }, value: 1 },
  ]);
  depths.set("sms", 9);
  const text = await rendered(registry);
  assert.equal(calls, 3);
  assert.equal(valueOf(text, "queue_depth_by_queue", { queue: "sms" }), 9, text);
});

test("a collect() that throws fails the collection with an Error naming the metric and the reason", async () => {
  const registry = new Registry();
  new Counter({ name: "fine_total", help: "Fine", registry }).inc();
  let failure: unknown = new Error("queue unreachable");
  new Gauge({
    name: "queue_depth",
    help: "Jobs waiting",
    registry,
    collect() {
      if (failure !== undefined) throw failure;
      this.set(1);
    },
  });
  const original = failure;
  await assert.rejects(registry.collect(), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, 'The collect() of metric "queue_depth" failed: queue unreachable');
    assert.equal(e.cause, original);
    return true;
  });
  await assert.rejects(
    generateLatest(registry),
    /The collect\(\) of metric "queue_depth" failed: queue unreachable/,
  );
  failure = "a plain string";
  await assert.rejects(registry.collect(), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, 'The collect() of metric "queue_depth" failed: a plain string');
    return true;
  });
  new Summary({
    name: "async_bytes",
    help: "Async",
    registry,
    async collect() {
      await sleep(1);
      throw new RangeError("disk gone");
    },
  });
  failure = undefined;
  await assert.rejects(registry.collect(), (e: unknown) => {
    assert.ok(e instanceof Error);
    assert.equal(e.message, 'The collect() of metric "async_bytes" failed: disk gone');
    assert.ok(e.cause instanceof RangeError);
    return true;
  });
});

test("metricsHandler() answers 500 with the reason when a collect() throws, and 200 once it stops", async () => {
  const registry = new Registry();
  let broken = true;
  new Gauge({
    name: "pool_size",
    help: "Connections",
    registry,
    collect() {
      if (broken) throw new Error("pool closed");
      this.set(8);
    },
  });
  const handler = metricsHandler({ registry });
  const failed = await handler(metricsRequest());
  assert.equal(failed.status, 500);
  const body = await failed.text();
  assert.ok(body.includes('The collect() of metric "pool_size" failed: pool closed'), body);
  broken = false;
  const ok = await handler(metricsRequest());
  assert.equal(ok.status, 200);
  const text = await ok.text();
  assert.equal(valueOf(text, "pool_size", {}), 8, text);
  await assertPromtool(text);
});

test("collect option: anything but a function is a TypeError naming the metric", () => {
  const registry = new Registry();
  for (const collect of [5, "set", {}, null]) {
    assert.throws(
      () => new Gauge(asOptions<GaugeOptions>({ name: "bad_collect", help: "Bad", registry, collect })),
      error(['"bad_collect"', "collect"]),
    );
  }
  assert.equal(registry.get("bad_collect"), undefined);
});

// --- registry labels ---

test("new Registry({ labels }) adds them to every series after its own, custom collectors included", async () => {
  const registry = new Registry({ labels: { region: "eu", instance: "web-1" } });
  assert.deepEqual(registry.defaultLabels, { region: "eu", instance: "web-1" });
  new Counter({ name: "requests_total", help: "Requests", labelNames: ["method"], registry })
    .labels({ method: "GET" }).inc(2);
  new Gauge({ name: "temperature_celsius", help: "Temperature", registry }).set(21.5);
  const h = new Histogram({
    name: "latency_seconds",
    help: "Latency",
    labelNames: ["route"],
    buckets: [1],
    registry,
  });
  h.labels({ route: "/a" }).observe(0.5);
  new Summary({ name: "size_bytes", help: "Sizes", registry }).observe(10);
  registry.register({
    collect: (): MetricFamily[] => [
      { name: "jobs", help: "Jobs", type: "gauge", series: [{ labels: { queue: "q" }, value: 4 }] },
    ],
  });
  const families = await registry.collect();
  assert.deepEqual(
    families.map((f) => [f.name, f.series.map((s) => Object.keys(s.labels))]),
    [
      ["requests", [["method", "region", "instance"]]],
      ["temperature_celsius", [["region", "instance"]]],
      ["latency_seconds", [["route", "region", "instance"]]],
      ["size_bytes", [["region", "instance"]]],
      ["jobs", [["queue", "region", "instance"]]],
    ],
  );
  const text = await rendered(registry);
  const lines = text.split("\n");
  for (
    const line of [
      'requests_total{method="GET",region="eu",instance="web-1"} 2',
      'temperature_celsius{region="eu",instance="web-1"} 21.5',
      'latency_seconds_bucket{route="/a",region="eu",instance="web-1",le="1.0"} 1',
      'latency_seconds_count{route="/a",region="eu",instance="web-1"} 1',
      'size_bytes_sum{region="eu",instance="web-1"} 10',
      'jobs{queue="q",region="eu",instance="web-1"} 4',
    ]
  ) {
    assert.ok(lines.includes(line), `${line} not in:\n${text}`);
  }
  const samples = parseSamples(text);
  assert.ok(samples.length > 0);
  for (const sample of samples) {
    assert.equal(sample.labels.region, "eu", `${sample.name} ${JSON.stringify(sample.labels)}`);
    assert.equal(sample.labels.instance, "web-1", `${sample.name} ${JSON.stringify(sample.labels)}`);
  }
});

test("registry labels go with the registry prefix, and the metric's own collect() stays without them", async () => {
  const registry = new Registry({ prefix: "shop", labels: { region: "eu" } });
  const c = new Counter({ name: "orders_total", help: "Orders", registry });
  c.inc(3);
  const text = await rendered(registry);
  assert.equal(valueOf(text, "shop_orders_total", { region: "eu" }), 3, text);
  assert.deepEqual((await c.collect())[0].series, [{ labels: {}, value: 3 }]);
});

test("setDefaultLabels() replaces the registry labels, {} clears them, defaultLabels reads them", async () => {
  const registry = new Registry({ labels: { region: "eu" } });
  new Counter({ name: "hits_total", help: "Hits", registry }).inc();
  assert.equal(valueOf(await rendered(registry), "hits_total", { region: "eu" }), 1);
  registry.setDefaultLabels({ zone: "b", env: "prod" });
  assert.deepEqual(registry.defaultLabels, { zone: "b", env: "prod" });
  assert.ok(Object.isFrozen(registry.defaultLabels));
  const text = await rendered(registry);
  assert.deepEqual(find(text, "hits_total").map((s) => s.labels), [{ zone: "b", env: "prod" }], text);
  registry.setDefaultLabels({});
  assert.deepEqual(registry.defaultLabels, {});
  assert.deepEqual(find(await rendered(registry), "hits_total").map((s) => s.labels), [{}]);
  // The given object is copied: changing it later changes nothing.
  const given: Record<string, string> = { region: "us" };
  registry.setDefaultLabels(given);
  given.region = "changed";
  given.extra = "x";
  assert.deepEqual(registry.defaultLabels, { region: "us" });
  assert.deepEqual(find(await rendered(registry), "hits_total").map((s) => s.labels), [{
    region: "us",
  }]);
});

test("a metric with a label the registry adds cannot be registered: TypeError naming the label", async () => {
  const registry = new Registry({ labels: { region: "eu" } });
  assert.throws(
    () => new Counter({ name: "sales_total", help: "Sales", labelNames: ["shop", "region"], registry }),
    error(['"region"', "sales_total"]),
  );
  assert.equal(registry.get("sales_total"), undefined);
  const loner = new Histogram({ name: "wait_seconds", help: "Wait", labelNames: ["region"], registry: null });
  assert.throws(() => registry.register(loner), error(['"region"', "wait_seconds"]));
  assert.equal(registry.get("wait_seconds"), undefined);
  // The registry still works, and the name is free for a metric without the label.
  new Counter({ name: "sales_total", help: "Sales", labelNames: ["shop"], registry }).labels({ shop: "x" })
    .inc();
  assert.equal(valueOf(await rendered(registry), "sales_total", { shop: "x", region: "eu" }), 1);
});

test("setDefaultLabels() with a label a registered metric has is a TypeError, and the labels stay", async () => {
  const registry = new Registry({ labels: { region: "eu" } });
  new Gauge({ name: "workers", help: "Workers", labelNames: ["pool"], registry }).labels({ pool: "a" }).set(
    2,
  );
  assert.throws(() => registry.setDefaultLabels({ region: "us", pool: "b" }), error(['"pool"', "workers"]));
  assert.deepEqual(registry.defaultLabels, { region: "eu" });
  assert.equal(valueOf(await rendered(registry), "workers", { pool: "a", region: "eu" }), 2);
  // Once the metric is gone, the name is free.
  assert.equal(registry.unregister(registry.get("workers")!), true);
  registry.setDefaultLabels({ region: "us", pool: "b" });
  assert.deepEqual(registry.defaultLabels, { region: "us", pool: "b" });
});

test("registry labels le, quantile and theus_instance are reserved; invalid names and values are TypeErrors", () => {
  for (const name of ["le", "quantile", "theus_instance"]) {
    assert.throws(() => new Registry({ labels: { [name]: "x" } }), error([`"${name}"`]), name);
    const registry = new Registry({ labels: { region: "eu" } });
    assert.throws(() => registry.setDefaultLabels({ [name]: "x" }), error([`"${name}"`]), name);
    assert.deepEqual(registry.defaultLabels, { region: "eu" });
  }
  for (const name of ["__meta", "1st", "a-b", ""]) {
    assert.throws(() => new Registry({ labels: { [name]: "x" } }), TypeError, JSON.stringify(name));
  }
  for (const value of [1, true, null, undefined]) {
    assert.throws(
      () => new Registry({ labels: asOptions<Record<string, string>>({ region: value }) }),
      error(['"region"']),
      String(value),
    );
  }
  for (const labels of [null, "region=eu", ["eu"]]) {
    assert.throws(() => new Registry({ labels: labels as unknown as Record<string, string> }), TypeError);
  }
});

test("a custom collector's series with a registry label fails the collection with a TypeError", async () => {
  const registry = new Registry({ labels: { region: "eu" } });
  registry.register({
    name: "legacy",
    collect: (): MetricFamily[] => [
      { name: "legacy", help: "Legacy", type: "gauge", series: [{ labels: { region: "us" }, value: 1 }] },
    ],
  });
  await assert.rejects(registry.collect(), error(['"region"', "legacy"]));
  const response = await metricsHandler({ registry })(metricsRequest());
  assert.equal(response.status, 500);
  assert.match(await response.text(), /"region"/);
});

test("registry labels and maxSeries: a label set past the cap is recorded, not thrown", async () => {
  // theus_series_overflow_total has a label "metric": a registry that adds "metric" must not make
  // recording throw when the first overflow creates that counter.
  const registry = new Registry({ labels: { metric: "web" } });
  const c = new Counter({ name: "calls_total", help: "Calls", labelNames: ["k"], maxSeries: 1, registry });
  const warnings = await warningsOf(async () => {
    c.labels({ k: "a" }).inc();
    assert.doesNotThrow(() => c.labels({ k: "b" }).inc(2));
    await Promise.resolve();
  });
  assert.equal(warnings.length, 1, warnings.join("\n"));
  const text = await rendered(registry);
  assert.equal(valueOf(text, "calls_total", { k: "a", metric: "web" }), 1, text);
  assert.equal(valueOf(text, "calls_total", { k: "__overflow__", metric: "web" }), 2, text);
});

// --- bucket helpers ---

// client_golang's own loops, as its histogram.go writes them.
function golangLinear(start: number, width: number, count: number): number[] {
  const buckets: number[] = [];
  for (let i = 0; i < count; i++, start += width) buckets.push(start);
  return buckets;
}

function golangExponential(start: number, factor: number, count: number): number[] {
  const buckets: number[] = [];
  for (let i = 0; i < count; i++, start *= factor) buckets.push(start);
  return buckets;
}

function assertClose(actual: readonly number[], expected: readonly number[]): void {
  assert.equal(actual.length, expected.length, `${actual} vs ${expected}`);
  actual.forEach((value, i) =>
    assert.ok(Math.abs(value - expected[i]) <= 1e-12 * Math.abs(expected[i]), `${actual} vs ${expected}`)
  );
}

test("linearBuckets() matches client_golang: LinearBuckets(1, 5, 3) is [1, 6, 11], each bound the last plus width", () => {
  assert.deepEqual(linearBuckets(1, 5, 3), [1, 6, 11]);
  assert.deepEqual(linearBuckets(7, 3, 1), [7]);
  assert.deepEqual(linearBuckets(-5, 2.5, 3), [-5, -2.5, 0]);
  // Summed step by step, as Go does (start + i * width would give 0.8 and 0.9).
  const tenths = linearBuckets(0, 0.1, 10);
  assert.equal(tenths[8], 0.7999999999999999);
  assert.equal(tenths[9], 0.8999999999999999);
  assert.deepEqual(tenths, golangLinear(0, 0.1, 10));
  fc.assert(
    fc.property(
      fc.double({ min: -1e6, max: 1e6, noNaN: true }),
      fc.double({ min: 1e-6, max: 1e6, noNaN: true }),
      fc.integer({ min: 1, max: 50 }),
      (start, width, count) => {
        assert.deepEqual(linearBuckets(start, width, count), golangLinear(start, width, count));
      },
    ),
  );
});

test("exponentialBuckets() matches client_golang: ExponentialBuckets(100, 1.2, 3) is [100, 120, 144], each bound the last times factor", () => {
  assert.deepEqual(exponentialBuckets(100, 1.2, 3), [100, 120, 144]);
  assert.deepEqual(exponentialBuckets(0.001, 10, 4), [0.001, 0.01, 0.1, 1]);
  assert.deepEqual(exponentialBuckets(3, 2, 1), [3]);
  // Multiplied step by step, as Go does (start * factor ** 5 is 1.6105100000000006).
  const steps = exponentialBuckets(1, 1.1, 6);
  assert.equal(steps[5], 1.6105100000000008);
  assert.deepEqual(steps, golangExponential(1, 1.1, 6));
  fc.assert(
    fc.property(
      fc.double({ min: 1e-9, max: 1e6, noNaN: true }),
      fc.double({ min: 1.0001, max: 10, noNaN: true }),
      fc.integer({ min: 1, max: 40 }),
      (start, factor, count) => {
        assert.deepEqual(exponentialBuckets(start, factor, count), golangExponential(start, factor, count));
      },
    ),
  );
});

test("exponentialBucketsRange() matches client_golang: ExponentialBucketsRange(1, 100, 3) is [1, 10, 100] within float error", () => {
  assertClose(exponentialBucketsRange(1, 100, 3), [1, 10, 100]);
  assertClose(exponentialBucketsRange(1, 1000, 4), [1, 10, 100, 1000]);
  assertClose(exponentialBucketsRange(0.001, 10, 5), [0.001, 0.01, 0.1, 1, 10]);
  assertClose(exponentialBucketsRange(2, 8, 2), [2, 8]);
  assert.deepEqual(exponentialBucketsRange(5, 50, 1), [5], "count 1: min alone, as Go's Pow(+Inf, 0) is 1");
  fc.assert(
    fc.property(
      fc.double({ min: 1e-6, max: 1e3, noNaN: true }),
      fc.double({ min: 1.01, max: 1e6, noNaN: true }),
      fc.integer({ min: 2, max: 30 }),
      (min, ratio, count) => {
        const max = min * ratio;
        const buckets = exponentialBucketsRange(min, max, count);
        assert.equal(buckets.length, count);
        assert.equal(buckets[0], min, "min * growth^0 is min exactly");
        // min * growth^i with growth = (max/min)^(1/(count-1)), as client_golang computes it.
        const growth = Math.pow(max / min, 1 / (count - 1));
        assertClose(buckets, buckets.map((_, i) => min * Math.pow(growth, i)));
        assertClose([buckets[count - 1]], [max]);
        for (let i = 1; i < count; i++) assert.ok(buckets[i] > buckets[i - 1], `${buckets}`);
      },
    ),
  );
});

test("bucket helpers: RangeError for a count below 1 or not whole, and for bounds client_golang panics on", () => {
  const cases: [string, () => unknown][] = [
    ["linear count 0", () => linearBuckets(1, 1, 0)],
    ["linear count -1", () => linearBuckets(1, 1, -1)],
    ["linear count 2.5", () => linearBuckets(1, 1, 2.5)],
    ["linear count NaN", () => linearBuckets(1, 1, NaN)],
    ["linear width 0", () => linearBuckets(1, 0, 3)],
    ["linear width -1", () => linearBuckets(1, -1, 3)],
    ["exponential count 0", () => exponentialBuckets(1, 2, 0)],
    ["exponential count 1.5", () => exponentialBuckets(1, 2, 1.5)],
    ["exponential start 0", () => exponentialBuckets(0, 2, 3)],
    ["exponential start -1", () => exponentialBuckets(-1, 2, 3)],
    ["exponential factor 1", () => exponentialBuckets(1, 1, 3)],
    ["exponential factor 0.5", () => exponentialBuckets(1, 0.5, 3)],
    ["range count 0", () => exponentialBucketsRange(1, 10, 0)],
    ["range count 3.5", () => exponentialBucketsRange(1, 10, 3.5)],
    ["range min 0", () => exponentialBucketsRange(0, 10, 3)],
    ["range min -1", () => exponentialBucketsRange(-1, 10, 3)],
    ["range max = min", () => exponentialBucketsRange(5, 5, 3)],
    ["range max < min", () => exponentialBucketsRange(5, 1, 3)],
  ];
  for (const [what, call] of cases) assert.throws(call, RangeError, what);
});

test("bucket helpers: TypeError for arguments that are not numbers", () => {
  const s = "3" as unknown as number;
  const u = undefined as unknown as number;
  const n = null as unknown as number;
  const cases: [string, () => unknown][] = [
    ["linear start", () => linearBuckets(s, 1, 3)],
    ["linear width", () => linearBuckets(1, n, 3)],
    ["linear count", () => linearBuckets(1, 1, s)],
    ["exponential start", () => exponentialBuckets(u, 2, 3)],
    ["exponential factor", () => exponentialBuckets(1, s, 3)],
    ["exponential count", () => exponentialBuckets(1, 2, n)],
    ["range min", () => exponentialBucketsRange(s, 10, 3)],
    ["range max", () => exponentialBucketsRange(1, u, 3)],
    ["range count", () => exponentialBucketsRange(1, 10, u)],
  ];
  const wrong: string[] = [];
  for (const [what, call] of cases) {
    try {
      call();
      wrong.push(`${what}: no error`);
    } catch (e) {
      if (!(e instanceof TypeError)) wrong.push(`${what}: ${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  assert.deepEqual(wrong, []);
});

test("a histogram with generated buckets counts into them and renders valid text and OpenMetrics", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "job_seconds",
    help: "Jobs",
    buckets: exponentialBuckets(0.25, 2, 4),
    registry,
  });
  const sizes = new Histogram({
    name: "item_bytes",
    help: "Items",
    buckets: linearBuckets(100, 100, 3),
    registry,
  });
  for (const value of [0.1, 0.5, 1.5, 3]) h.observe(value);
  for (const value of [50, 250, 1000]) sizes.observe(value);
  const text = await rendered(registry);
  assert.deepEqual(find(text, "job_seconds_bucket").map((s) => [s.labels.le, s.value]), [
    ["0.25", 1],
    ["0.5", 2],
    ["1.0", 2],
    ["2.0", 3],
    ["+Inf", 4],
  ]);
  const bounds: [string, number][] = [["100", 1], ["200", 1], ["300", 2], ["+Inf", 3]];
  for (const [le, count] of bounds) assert.equal(valueOf(text, "item_bytes_bucket", { le }), count, text);
  assert.equal(find(text, "item_bytes_bucket").length, 4, text);
});

// --- timers with labels ---

test("Histogram.startTimer(labels) binds them; stop(labels) adds those known at the end", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "request_seconds",
    help: "Requests",
    labelNames: ["method", "status"],
    buckets: [0.005, 5],
    registry,
  });
  const timer = h.startTimer({ method: "GET" });
  await sleep(20);
  const seconds = timer.stop({ status: "200" });
  assert.ok(seconds >= 0.015 && seconds < 5, `${seconds}`);
  const series = (await familyOf(registry, "request_seconds")).series as readonly HistogramSeries[];
  assert.deepEqual(series.map((s) => [s.labels, s.count, s.sum]), [[
    { method: "GET", status: "200" },
    1,
    seconds,
  ]]);
  assert.deepEqual(series[0].buckets, [0, 1, 1]);
  const text = await rendered(registry);
  assert.equal(valueOf(text, "request_seconds_count", { method: "GET", status: "200" }), 1, text);
});

test("stop() with labels still missing throws a TypeError naming them; the timer runs on and a later stop(labels) records", async () => {
  const registry = new Registry();
  const labelNames = ["method", "status", "route"] as const;
  const h = new Histogram({ name: "op_seconds", help: "Ops", labelNames, buckets: [5], registry });
  const s = new Summary({ name: "op_bytes", help: "Ops", labelNames, registry });
  const g = new Gauge({ name: "op_last_seconds", help: "Ops", labelNames, registry });
  for (const metric of [h, s, g]) {
    const timer = metric.startTimer({ method: "GET" });
    assert.throws(() => timer.stop(), error(['"status"', '"route"']), metric.name);
    assert.throws(() => timer.stop({ route: "/a" }), error(['"status"']), metric.name);
    assert.deepEqual(
      (await familyOf(registry, metric.name)).series,
      [],
      `${metric.name}: nothing recorded yet`,
    );
    await sleep(20);
    const seconds = timer.stop({ route: "/a", status: "200" });
    assert.ok(seconds >= 0.015 && seconds < 5, `${metric.name}: ${seconds}`);
  }
  const labels = { method: "GET", status: "200", route: "/a" };
  const [hs] = (await familyOf(registry, "op_seconds")).series as readonly HistogramSeries[];
  assert.deepEqual([hs.labels, hs.count], [labels, 1]);
  assert.ok(hs.sum >= 0.015, `${hs.sum}`);
  const [ss] = (await familyOf(registry, "op_bytes")).series as readonly SummarySeries[];
  assert.deepEqual([ss.labels, ss.count], [labels, 1]);
  assert.ok(ss.sum >= 0.015, `${ss.sum}`);
  assert.ok((await g.labels(labels).get()) >= 0.015);
  await rendered(registry);
});

test("stop() twice records once, returning the same seconds, whatever labels the second call gives", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "twice_seconds",
    help: "Twice",
    labelNames: ["status"],
    buckets: [5],
    registry,
  });
  const timer = h.startTimer();
  const first = timer.stop({ status: "200" });
  await sleep(5);
  assert.equal(timer.stop({ status: "500" }), first);
  assert.equal(timer.stop(), first);
  const series = (await familyOf(registry, "twice_seconds")).series as readonly HistogramSeries[];
  assert.deepEqual(series.map((s) => [s.labels, s.count, s.sum]), [[{ status: "200" }, 1, first]]);
});

test("using still works with startTimer(labels): disposal stops the timer, and records nothing after stop()", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "scope_seconds",
    help: "Scopes",
    labelNames: ["method", "status"],
    buckets: [5],
    registry,
  });
  {
    using _ = h.startTimer({ method: "GET", status: "200" });
    await sleep(20);
  }
  {
    using timer = h.startTimer({ method: "POST" });
    await sleep(5);
    timer.stop({ status: "201" });
  }
  assert.throws(() => {
    using _ = h.startTimer({ method: "PUT" });
  }, error(['"status"']));
  const series = (await familyOf(registry, "scope_seconds")).series as readonly HistogramSeries[];
  assert.deepEqual(series.map((s) => [s.labels, s.count]), [
    [{ method: "GET", status: "200" }, 1],
    [{ method: "POST", status: "201" }, 1],
  ]);
  assert.ok(series[0].sum >= 0.015, `${series[0].sum}`);
  await rendered(registry);
});

test("Gauge and Summary startTimer(labels) with stop(labels) record into the child of both label sets", async () => {
  const registry = new Registry();
  const g = new Gauge({
    name: "last_run_seconds",
    help: "Last run",
    labelNames: ["job", "result"],
    registry,
  });
  const s = new Summary({ name: "run_seconds", help: "Runs", labelNames: ["job", "result"], registry });
  const gt = g.startTimer({ job: "backup" });
  const st = s.startTimer({ job: "backup" });
  await sleep(20);
  const gs = gt.stop({ result: "ok" });
  const ss = st.stop({ result: "failed" });
  assert.equal(await g.labels({ job: "backup", result: "ok" }).get(), gs);
  assert.deepEqual((await familyOf(registry, "last_run_seconds")).series, [
    { labels: { job: "backup", result: "ok" }, value: gs },
  ]);
  assert.deepEqual((await familyOf(registry, "run_seconds")).series, [
    { labels: { job: "backup", result: "failed" }, count: 1, sum: ss },
  ]);
  assert.ok(gs >= 0.015 && ss >= 0.015, `${gs} ${ss}`);
  await rendered(registry);
});

test("startTimer() and stop() reject unknown labels and non-string values with a TypeError; the timer runs on", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "strict_seconds",
    help: "Strict",
    labelNames: ["status"],
    buckets: [5],
    registry,
  });
  assert.throws(() => loose(h).startTimer({ stauts: "200" }), error(['"stauts"']));
  assert.throws(() => loose(h).startTimer({ status: 200 }), error(['"status"', '{ status: "200" }']));
  const timer = h.startTimer();
  assert.throws(() => loose(timer).stop({ stauts: "200" }), error(['"stauts"']));
  assert.throws(() => loose(timer).stop({ status: 500 }), error(['{ status: "500" }']));
  timer.stop({ status: "500" });
  const series = (await familyOf(registry, "strict_seconds")).series as readonly HistogramSeries[];
  assert.deepEqual(series.map((s) => [s.labels, s.count]), [[{ status: "500" }, 1]]);
});

// --- strict options and prom-client's call shapes ---

test("an unknown option is a TypeError naming it, and the metric is not registered", () => {
  const registry = new Registry();
  const cases: [string, () => unknown][] = [
    [
      "lables",
      () => new Counter(asOptions<CounterOptions>({ name: "a_total", help: "A", lables: ["x"], registry })),
    ],
    [
      "mode",
      () => new Counter(asOptions<CounterOptions>({ name: "b_total", help: "B", mode: "sum", registry })),
    ],
    [
      "buckets",
      () => new Summary(asOptions<SummaryOptions>({ name: "c", help: "C", buckets: [1], registry })),
    ],
    [
      "mode",
      () => new Histogram(asOptions<HistogramOptions>({ name: "d", help: "D", mode: "max", registry })),
    ],
    ["helpText", () => new Gauge(asOptions<GaugeOptions>({ name: "e", help: "E", helpText: "E", registry }))],
  ];
  for (const [option, create] of cases) assert.throws(create, error([`"${option}"`]), option);
  for (const name of ["a_total", "b_total", "c", "d", "e"]) assert.equal(registry.get(name), undefined, name);
  // The options a type does have are accepted.
  new Gauge({ name: "e", help: "E", mode: "max", registry });
  new Histogram({ name: "d", help: "D", buckets: [1], registry });
});

test("prom-client's option names give theus' own: registers → registry, percentiles → quantiles, aggregator → mode", () => {
  const registry = new Registry();
  const registers = [registry];
  for (
    const create of [
      () => new Counter(asOptions<CounterOptions>({ name: "r_total", help: "R", registers })),
      () => new Gauge(asOptions<GaugeOptions>({ name: "r_gauge", help: "R", registers })),
      () => new Histogram(asOptions<HistogramOptions>({ name: "r_seconds", help: "R", registers })),
      () => new Summary(asOptions<SummaryOptions>({ name: "r_bytes", help: "R", registers })),
    ]
  ) {
    assert.throws(create, error(['"registers"', '"registry"']));
  }
  assert.throws(
    () => new Summary(asOptions<SummaryOptions>({ name: "p", help: "P", percentiles: [0.5, 0.9], registry })),
    error(['"percentiles"', '"quantiles"']),
  );
  assert.throws(
    () => new Gauge(asOptions<GaugeOptions>({ name: "g", help: "G", aggregator: "sum", registry })),
    error(['"aggregator"', '"mode"']),
  );
  for (const name of ["r_total", "r_gauge", "r_seconds", "r_bytes", "p", "g"]) {
    assert.equal(registry.get(name), undefined, name);
  }
});

test("prom-client's labels-first calls are TypeErrors showing the theus form, and record nothing", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "http_requests_total", help: "Requests", labelNames: ["method"], registry });
  const g = new Gauge({ name: "in_use", help: "In use", labelNames: ["a"], registry });
  const h = new Histogram({ name: "latency_seconds", help: "Latency", labelNames: ["a"], registry });
  const s = new Summary({ name: "size_bytes", help: "Sizes", labelNames: ["a"], registry });
  const cases: [string, () => unknown][] = [
    ['labels({ method: "GET" }).inc(2)', () => loose(c).inc({ method: "GET" }, 2)],
    ['labels({ method: "GET" }).inc()', () => loose(c).inc({ method: "GET" })],
    ['labels({ a: "b" }).observe(1)', () => loose(h).observe({ a: "b" }, 1)],
    ['labels({ a: "b" }).observe(1)', () => loose(s).observe({ a: "b" }, 1)],
    ['labels({ a: "b" }).set(3)', () => loose(g).set({ a: "b" }, 3)],
    ['labels({ a: "b" }).inc(4)', () => loose(g).inc({ a: "b" }, 4)],
    ['labels({ a: "b" }).dec()', () => loose(g).dec({ a: "b" })],
  ];
  for (const [form, call] of cases) assert.throws(call, error([form]), form);
  for (const family of await registry.collect()) assert.deepEqual(family.series, [], family.name);
});

test('positional labels("GET", "200") is a TypeError showing labels({ method: "GET", status: "…" })', async () => {
  const registry = new Registry();
  const c = new Counter({ name: "hits_total", help: "Hits", labelNames: ["method", "status"], registry });
  // The first value is shown; the others are left for the reader to fill in (reading every argument
  // would cost the lookup path of labels() its speed).
  assert.throws(() => loose(c).labels("GET", "200"), error(['labels({ method: "GET", status: "…" })']));
  const h = new Histogram({ name: "wait_seconds", help: "Wait", labelNames: ["queue"], registry });
  assert.throws(() => loose(h).labels("email"), error(['labels({ queue: "email" })']));
  assert.deepEqual((await familyOf(registry, "hits")).series, []);
});

test('numeric and boolean label values are TypeErrors showing the string form: { code: "200" }', async () => {
  const registry = new Registry();
  const c = new Counter({ name: "responses_total", help: "Responses", labelNames: ["code", "ok"], registry });
  assert.throws(() => loose(c).labels({ code: 200 }), error(['{ code: "200" }']));
  assert.throws(() => loose(c).labels({ code: "200", ok: true }), error(['{ ok: "true" }']));
  assert.throws(() => loose(c).remove({ code: 404, ok: "false" }), error(['{ code: "404" }']));
  assert.throws(
    () =>
      new Counter(
        asOptions<CounterOptions>({
          name: "d_total",
          help: "D",
          labelNames: ["code"],
          defaultLabels: { code: 500 },
          registry,
        }),
      ),
    error(['{ code: "500" }']),
  );
  c.labels({ code: "200", ok: "true" }).inc();
  assert.deepEqual((await familyOf(registry, "responses")).series, [{
    labels: { code: "200", ok: "true" },
    value: 1,
  }]);
});

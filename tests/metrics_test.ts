import assert from "node:assert/strict";
import {
  Counter,
  DEFAULT_BUCKETS,
  Gauge,
  Histogram,
  type HistogramSeries,
  type Metric,
  type MetricFamily,
  Summary,
  type SummarySeries,
  type ValueSeries,
} from "../mod.ts";
import { test } from "./_harness.ts";

// Metrics here register nowhere, so names may repeat between tests.
const NONE = { help: "Help", registry: null } as const;

function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function family(metric: Metric): Promise<MetricFamily> {
  const families = await metric.collect();
  assert.equal(families.length, 1);
  return families[0];
}

async function histogramSeries(metric: Histogram): Promise<HistogramSeries> {
  const f = await family(metric);
  assert.equal(f.type, "histogram");
  assert.equal(f.series.length, 1);
  return f.series[0] as HistogramSeries;
}

async function summarySeries(metric: Summary): Promise<SummarySeries> {
  const f = await family(metric);
  assert.equal(f.type, "summary");
  assert.equal(f.series.length, 1);
  return f.series[0] as SummarySeries;
}

async function labelSets(metric: Metric): Promise<unknown[]> {
  return (await family(metric)).series.map((s) => s.labels);
}

function assertSeconds(value: unknown, min: number, max = 5): void {
  assert.equal(typeof value, "number");
  const seconds = value as number;
  assert.ok(seconds >= min && seconds < max, `expected between ${min} and ${max} seconds, got ${seconds}`);
}

// --- Counter ---

test("Counter.get() is 0 for a new counter", async () => {
  const c = new Counter({ name: "c", ...NONE });
  assert.equal(await c.get(), 0);
});

test("Counter.inc() adds 1 by default", async () => {
  const c = new Counter({ name: "c", ...NONE });
  c.inc();
  c.inc();
  assert.equal(await c.get(), 2);
});

test("Counter.inc(value) adds the value, zero included", async () => {
  const c = new Counter({ name: "c", ...NONE });
  c.inc(2.5);
  c.inc(0);
  c.inc(4);
  assert.equal(await c.get(), 6.5);
});

test("Counter.inc() rejects negative values with a RangeError naming the counter", async () => {
  const c = new Counter({ name: "c_neg", ...NONE });
  c.inc(1);
  assert.throws(() => c.inc(-1), (e: unknown) => e instanceof RangeError && e.message.includes('"c_neg"'));
  assert.throws(() => c.inc(-Infinity), RangeError);
  assert.equal(await c.get(), 1);
});

test("Counter.inc() rejects NaN with a RangeError", async () => {
  const c = new Counter({ name: "c", ...NONE });
  assert.throws(() => c.inc(NaN), RangeError);
  assert.equal(await c.get(), 0);
});

test("Counter.inc() rejects a value that is not a number with a TypeError", async () => {
  const c = new Counter({ name: "c", ...NONE });
  for (const bad of ["1", null, {}, 1n, true]) {
    assert.throws(() => c.inc(bad as unknown as number), TypeError, `inc(${String(bad)})`);
  }
  assert.equal(await c.get(), 0);
});

test("Counter.countExceptions() returns the result of a sync function and counts nothing", async () => {
  const c = new Counter({ name: "c", ...NONE });
  assert.equal(c.countExceptions(() => 42), 42);
  assert.equal(await c.get(), 0);
});

test("Counter.countExceptions() counts and rethrows what a sync function throws", async () => {
  const c = new Counter({ name: "c", ...NONE });
  const error = new Error("boom");
  for (let i = 0; i < 2; i++) {
    assert.throws(
      () =>
        c.countExceptions(() => {
          throw error;
        }),
      (e: unknown) => e === error,
    );
  }
  assert.equal(await c.get(), 2);
});

test("Counter.countExceptions() passes through a resolved promise and counts nothing", async () => {
  const c = new Counter({ name: "c", ...NONE });
  const result = c.countExceptions(async () => {
    await sleep(1);
    return "done";
  });
  assert.ok(result instanceof Promise);
  assert.equal(await result, "done");
  assert.equal(await c.get(), 0);
});

test("Counter.countExceptions() counts and rethrows an async rejection", async () => {
  const c = new Counter({ name: "c", ...NONE });
  const error = new Error("async boom");
  const result = c.countExceptions(async () => {
    await sleep(1);
    throw error;
  });
  assert.equal(await c.get(), 0, "nothing is counted before the promise settles");
  await assert.rejects(result, (e: unknown) => e === error);
  assert.equal(await c.get(), 1);
});

// --- Gauge ---

test("Gauge.inc() and Gauge.dec() move by 1 by default and by the value given", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  g.inc();
  g.inc(5);
  g.dec();
  g.dec(1.5);
  assert.equal(await g.get(), 3.5);
  g.dec(10);
  assert.equal(await g.get(), -6.5);
});

test("Gauge.set() replaces the value, negative values included", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  g.inc(3);
  g.set(-2.25);
  assert.equal(await g.get(), -2.25);
  g.set(7);
  assert.equal(await g.get(), 7);
});

test("Gauge.inc(), dec() and set() reject values that are not numbers with a TypeError", async () => {
  const g = new Gauge({ name: "g_types", ...NONE });
  for (const bad of ["1", null, {}, 1n]) {
    const value = bad as unknown as number;
    assert.throws(
      () => g.inc(value),
      (e: unknown) => e instanceof TypeError && e.message.includes('"g_types"'),
    );
    assert.throws(() => g.dec(value), TypeError);
    assert.throws(() => g.set(value), TypeError);
  }
  assert.equal(await g.get(), 0);
});

test("Gauge.setToCurrentTime() sets the Unix time in seconds", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  const before = Date.now() / 1000;
  g.setToCurrentTime();
  const after = Date.now() / 1000;
  const value = await g.get();
  assert.ok(value >= before && value <= after, `${value} not in [${before}, ${after}]`);
});

test("Gauge.trackInProgress() increments for the scope of a using block", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  {
    using _outer = g.trackInProgress();
    assert.equal(await g.get(), 1);
    {
      using _inner = g.trackInProgress();
      assert.equal(await g.get(), 2);
    }
    assert.equal(await g.get(), 1);
  }
  assert.equal(await g.get(), 0);
});

test("Gauge.trackInProgress() decrements when the using block throws", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  let inside: unknown;
  assert.throws(() => {
    using _ = g.trackInProgress();
    inside = g.get();
    throw new Error("boom");
  }, /boom/);
  assert.equal(inside, 1);
  assert.equal(await g.get(), 0);
});

test("Gauge.trackInProgress() end() decrements only once, disposal included", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  const tracker = g.trackInProgress();
  assert.equal(await g.get(), 1);
  tracker.end();
  tracker.end();
  tracker[Symbol.dispose]();
  assert.equal(await g.get(), 0);
});

test("Gauge.startTimer() sets the elapsed seconds at the end of a using block", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  g.set(-1);
  {
    using _ = g.startTimer();
    busyWait(20);
    assert.equal(await g.get(), -1, "the gauge is set when the timer stops, not before");
  }
  assertSeconds(await g.get(), 0.02);
});

test("Gauge.startTimer() stop() records once and returns the same seconds every time", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  const started = performance.now();
  const timer = g.startTimer();
  busyWait(10);
  const seconds = timer.stop();
  const elapsed = (performance.now() - started) / 1000;
  assertSeconds(seconds, 0.01, elapsed + 1e-9);
  assert.equal(await g.get(), seconds);
  g.set(42);
  busyWait(5);
  assert.equal(timer.stop(), seconds);
  timer[Symbol.dispose]();
  assert.equal(await g.get(), 42);
});

test("Gauge.time() sets the duration of a sync function and returns its result", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  const result = g.time(() => {
    busyWait(20);
    return "sync";
  });
  assert.equal(result, "sync");
  assertSeconds(await g.get(), 0.02);
});

test("Gauge.time() sets the duration of an async function once it settles", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  const result = g.time(async () => {
    await sleep(30);
    return "async";
  });
  assert.equal(await g.get(), 0, "nothing is set before the promise settles");
  assert.equal(await result, "async");
  assertSeconds(await g.get(), 0.02);
});

test("Gauge.time() rethrows and still sets the duration when the function throws", async () => {
  const g = new Gauge({ name: "g", ...NONE });
  assert.throws(
    () =>
      g.time(() => {
        busyWait(10);
        throw new Error("sync boom");
      }),
    /sync boom/,
  );
  assertSeconds(await g.get(), 0.01);
  g.set(0);
  await assert.rejects(
    g.time(async () => {
      await sleep(20);
      throw new Error("async boom");
    }),
    /async boom/,
  );
  assertSeconds(await g.get(), 0.01);
});

test("Gauge.time() rejects an argument that is not a function with a TypeError", () => {
  const g = new Gauge({ name: "g", ...NONE });
  assert.throws(() => g.time(42 as unknown as () => void), TypeError);
});

// --- Histogram ---

test("Histogram default buckets are pytheus' buckets", async () => {
  const expected = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity];
  assert.deepEqual([...DEFAULT_BUCKETS], expected);
  const h = new Histogram({ name: "h", ...NONE });
  const f = await family(h);
  assert.equal(f.type, "histogram");
  assert.deepEqual(f.type === "histogram" ? [...f.buckets] : undefined, expected);
});

test("Histogram adds a trailing +Inf bucket when missing", async () => {
  const h = new Histogram({ name: "h", buckets: [1, 2], ...NONE });
  const f = await family(h);
  assert.deepEqual(f.type === "histogram" ? [...f.buckets] : undefined, [1, 2, Infinity]);
  const withInf = new Histogram({ name: "h", buckets: [1, Infinity], ...NONE });
  const g = await family(withInf);
  assert.deepEqual(g.type === "histogram" ? [...g.buckets] : undefined, [1, Infinity]);
});

test("Histogram with empty buckets has only the +Inf bucket", async () => {
  const h = new Histogram({ name: "h", buckets: [], ...NONE });
  h.observe(3);
  const f = await family(h);
  assert.deepEqual(f.type === "histogram" ? [...f.buckets] : undefined, [Infinity]);
  assert.deepEqual(f.series, [{ labels: {}, buckets: [1], sum: 3, count: 1 }]);
});

test("Histogram.observe() counts a value in the first bucket whose bound is >= the value", async () => {
  const h = new Histogram({ name: "h", buckets: [1, 2, 5], ...NONE });
  for (const value of [0.5, 1, 1.5, 2, 5, 7, -3]) h.observe(value);
  // Per bucket: le=1 {0.5, 1, -3}, le=2 {1.5, 2}, le=5 {5}, +Inf {7}; exposed cumulatively.
  assert.deepEqual(await histogramSeries(h), { labels: {}, buckets: [3, 5, 6, 7], sum: 14, count: 7 });
});

test("Histogram.observe() counts negative values, -Inf included, in the first bucket", async () => {
  const h = new Histogram({ name: "h", buckets: [-1, 0, 1], ...NONE });
  h.observe(-5);
  h.observe(-1);
  h.observe(-0.5);
  h.observe(-Infinity);
  assert.deepEqual(await histogramSeries(h), {
    labels: {},
    buckets: [3, 4, 4, 4],
    sum: -Infinity,
    count: 4,
  });
});

test("Histogram.observe() counts +Inf in the +Inf bucket only", async () => {
  const h = new Histogram({ name: "h", buckets: [1, 10], ...NONE });
  h.observe(Infinity);
  assert.deepEqual(await histogramSeries(h), { labels: {}, buckets: [0, 0, 1], sum: Infinity, count: 1 });
});

test("Histogram.observe() rejects NaN with a RangeError and non-numbers with a TypeError", async () => {
  const h = new Histogram({ name: "h_bad", buckets: [1], ...NONE });
  assert.throws(
    () => h.observe(NaN),
    (e: unknown) => e instanceof RangeError && e.message.includes('"h_bad"'),
  );
  for (const bad of ["1", null, undefined, {}]) {
    assert.throws(() => h.observe(bad as unknown as number), TypeError, `observe(${String(bad)})`);
  }
  assert.deepEqual(await histogramSeries(h), { labels: {}, buckets: [0, 0], sum: 0, count: 0 });
});

test("Histogram rejects buckets that are not sorted, with a RangeError naming the histogram", () => {
  assert.throws(
    () => new Histogram({ name: "h_unsorted", buckets: [2, 1], ...NONE }),
    (e: unknown) => e instanceof RangeError && e.message.includes('"h_unsorted"'),
  );
});

test("Histogram rejects duplicate buckets with a RangeError", () => {
  assert.throws(() => new Histogram({ name: "h", buckets: [0.5, 1, 1, 2], ...NONE }), RangeError);
});

test("Histogram rejects +Inf before the last bucket, and -Inf, with a RangeError", () => {
  assert.throws(() => new Histogram({ name: "h", buckets: [1, Infinity, 2], ...NONE }), RangeError);
  assert.throws(() => new Histogram({ name: "h", buckets: [Infinity, Infinity], ...NONE }), RangeError);
  assert.throws(() => new Histogram({ name: "h", buckets: [-Infinity, 1], ...NONE }), RangeError);
});

test("Histogram rejects NaN and non-number buckets with a TypeError", () => {
  assert.throws(() => new Histogram({ name: "h", buckets: [1, NaN], ...NONE }), TypeError);
  assert.throws(
    () => new Histogram({ name: "h", buckets: [1, "2" as unknown as number], ...NONE }),
    TypeError,
  );
});

test("Histogram rejects buckets that are not an array with a TypeError", () => {
  for (const bad of ["1,2", 5, {}, null]) {
    assert.throws(
      () => new Histogram({ name: "h_shape", buckets: bad as unknown as number[], ...NONE }),
      (e: unknown) => e instanceof TypeError && e.message.includes('"h_shape"'),
      `buckets: ${String(bad)}`,
    );
  }
});

test("Histogram.startTimer() observes the elapsed seconds at the end of a using block", async () => {
  const h = new Histogram({ name: "h", buckets: [0.01, 10], ...NONE });
  {
    using _ = h.startTimer();
    busyWait(20);
  }
  const s = await histogramSeries(h);
  assert.deepEqual(s.buckets, [0, 1, 1]);
  assert.equal(s.count, 1);
  assertSeconds(s.sum, 0.02);
});

test("Histogram.startTimer() stop() observes once and returns the seconds", async () => {
  const h = new Histogram({ name: "h", buckets: [10], ...NONE });
  const timer = h.startTimer();
  busyWait(10);
  const seconds = timer.stop();
  assertSeconds(seconds, 0.01);
  assert.equal(timer.stop(), seconds);
  timer[Symbol.dispose]();
  assert.deepEqual(await histogramSeries(h), { labels: {}, buckets: [1, 1], sum: seconds, count: 1 });
});

test("Histogram.time() observes the duration of a sync function and returns its result", async () => {
  const h = new Histogram({ name: "h", buckets: [0.01, 10], ...NONE });
  assert.equal(
    h.time(() => {
      busyWait(20);
      return 7;
    }),
    7,
  );
  const s = await histogramSeries(h);
  assert.deepEqual(s.buckets, [0, 1, 1]);
  assertSeconds(s.sum, 0.02);
});

test("Histogram.time() observes the duration of an async function once it settles", async () => {
  const h = new Histogram({ name: "h", buckets: [0.01, 10], ...NONE });
  const result = h.time(async () => {
    await sleep(30);
    return "async";
  });
  assert.equal((await histogramSeries(h)).count, 0, "nothing is observed before the promise settles");
  assert.equal(await result, "async");
  const s = await histogramSeries(h);
  assert.deepEqual(s.buckets, [0, 1, 1]);
  assertSeconds(s.sum, 0.02);
});

test("Histogram.time() rethrows and still observes when the function throws or rejects", async () => {
  const h = new Histogram({ name: "h", buckets: [10], ...NONE });
  assert.throws(
    () =>
      h.time(() => {
        throw new Error("sync boom");
      }),
    /sync boom/,
  );
  await assert.rejects(
    h.time(async () => {
      await sleep(5);
      throw new Error("async boom");
    }),
    /async boom/,
  );
  const s = await histogramSeries(h);
  assert.equal(s.count, 2);
  assert.deepEqual(s.buckets, [2, 2]);
  assertSeconds(s.sum, 0);
});

// --- Summary ---

test("Summary.observe() adds to the count and the sum", async () => {
  const s = new Summary({ name: "s", ...NONE });
  assert.deepEqual(await summarySeries(s), { labels: {}, count: 0, sum: 0 });
  s.observe(1.5);
  s.observe(2.5);
  s.observe(-1);
  assert.deepEqual(await summarySeries(s), { labels: {}, count: 3, sum: 3 });
});

test("Summary.observe() rejects NaN with a RangeError and non-numbers with a TypeError", async () => {
  const s = new Summary({ name: "s_bad", ...NONE });
  assert.throws(
    () => s.observe(NaN),
    (e: unknown) => e instanceof RangeError && e.message.includes('"s_bad"'),
  );
  for (const bad of ["1", null, undefined, {}]) {
    assert.throws(() => s.observe(bad as unknown as number), TypeError, `observe(${String(bad)})`);
  }
  assert.deepEqual(await summarySeries(s), { labels: {}, count: 0, sum: 0 });
});

test("Summary.startTimer() observes the elapsed seconds at the end of a using block, once", async () => {
  const s = new Summary({ name: "s", ...NONE });
  let seconds = 0;
  {
    using timer = s.startTimer();
    busyWait(20);
    seconds = timer.stop();
  }
  assertSeconds(seconds, 0.02);
  assert.deepEqual(await summarySeries(s), { labels: {}, count: 1, sum: seconds });
});

test("Summary.time() observes sync, async and throwing functions", async () => {
  const s = new Summary({ name: "s", ...NONE });
  assert.equal(
    s.time(() => {
      busyWait(10);
      return 1;
    }),
    1,
  );
  assert.equal(
    await s.time(async () => {
      await sleep(20);
      return 2;
    }),
    2,
  );
  assert.throws(
    () =>
      s.time(() => {
        throw new Error("boom");
      }),
    /boom/,
  );
  const series = await summarySeries(s);
  assert.equal(series.count, 3);
  assertSeconds(series.sum, 0.025);
});

// --- remove() and clear() ---

test("remove() drops a child from collection and returns whether it existed", async () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b"], ...NONE });
  c.labels({ a: "1", b: "x" }).inc();
  c.labels({ a: "1", b: "y" }).inc(2);
  c.labels({ a: "2", b: "x" }).inc(3);
  assert.equal(c.remove({ b: "x", a: "1" }), true);
  assert.equal(c.remove({ a: "1", b: "x" }), false);
  assert.equal(c.remove({ a: "3", b: "x" }), false);
  const f = await family(c);
  assert.deepEqual(f.series, [
    { labels: { a: "1", b: "y" }, value: 2 },
    { labels: { a: "2", b: "x" }, value: 3 },
  ]);
});

test("remove() leaves a removed child working but unexported; labels() then makes a fresh child", async () => {
  const g = new Gauge({ name: "g", labelNames: ["a"], ...NONE });
  const child = g.labels({ a: "1" });
  child.set(5);
  assert.equal(g.remove({ a: "1" }), true);
  child.inc();
  assert.equal(await child.get(), 6);
  assert.deepEqual(await labelSets(g), []);
  const fresh = g.labels({ a: "1" });
  assert.notEqual(fresh, child);
  assert.equal(await fresh.get(), 0);
  assert.deepEqual((await family(g)).series, [{ labels: { a: "1" }, value: 0 }]);
});

test("remove() merges its labels onto the labels already bound", async () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b"], defaultLabels: { b: "d" }, ...NONE });
  c.labels({ a: "1" }).inc();
  c.labels({ a: "1", b: "x" }).inc();
  assert.equal(c.labels({ b: "x" }).remove({ a: "1" }), true);
  assert.equal(c.remove({ a: "1" }), true);
  assert.deepEqual(await labelSets(c), []);
});

test("remove() rejects an incomplete or unknown label set with a TypeError naming the labels", () => {
  const c = new Counter({ name: "c_rm", labelNames: ["a", "b"], ...NONE });
  c.labels({ a: "1", b: "2" }).inc();
  assert.throws(
    () => c.remove({ a: "1" }),
    (e: unknown) => e instanceof TypeError && e.message.includes('"b"') && e.message.includes('"c_rm"'),
  );
  assert.throws(
    // @ts-expect-error: a label the metric does not have (typed label names), refused at run time too
    () => c.remove({ a: "1", b: "2", zzz: "3" }),
    (e: unknown) => e instanceof TypeError && e.message.includes('"zzz"'),
  );
});

test("remove() never removes a metric whose default labels make it complete", async () => {
  const c = new Counter({ name: "c", labelNames: ["a"], defaultLabels: { a: "d" }, ...NONE });
  c.inc();
  assert.equal(c.remove({ a: "d" }), false);
  assert.deepEqual((await family(c)).series, [{ labels: { a: "d" }, value: 1 }]);
});

test("clear() drops every child", async () => {
  const h = new Histogram({ name: "h", labelNames: ["a"], buckets: [1], ...NONE });
  const child = h.labels({ a: "1" });
  child.observe(0.5);
  h.labels({ a: "2" }).observe(2);
  h.clear();
  assert.deepEqual((await family(h)).series, []);
  assert.notEqual(h.labels({ a: "1" }), child);
  assert.deepEqual((await family(h)).series, [{ labels: { a: "1" }, buckets: [0, 0], sum: 0, count: 0 }]);
});

test("clear() keeps a metric whose default labels make it complete", async () => {
  const g = new Gauge({ name: "g", labelNames: ["a"], defaultLabels: { a: "d" }, ...NONE });
  g.set(4);
  g.labels({ a: "other" }).set(1);
  g.clear();
  assert.deepEqual((await family(g)).series, [{ labels: { a: "d" }, value: 4 }]);
  assert.equal(g.labels({}), g);
});

test("clear() on a metric without labels keeps its value", async () => {
  const c = new Counter({ name: "c", ...NONE });
  c.inc(2);
  c.clear();
  assert.deepEqual((await family(c)).series, [{ labels: {}, value: 2 }] satisfies ValueSeries[]);
});

// Summary quantiles: within 1 % of the exact quantiles of a million samples of each of several
// distributions; what prom-client's cluster aggregation does to quantiles instead; the sliding
// window on a fake clock; option checks; children, remove(), reset() and timers; and the
// exposition of quantile lines through promtool and the strict OpenMetrics parser.
//
// "Exact" is always the definition the Summary documents: the value of rank floor(q * (n - 1))
// among the n observations sorted ascending, computed here from the samples themselves.

import assert from "node:assert/strict";
import fc from "fast-check";
import { AggregatorRegistry, Registry as PromRegistry, Summary as PromSummary } from "prom-client";
import { generateLatest, type MetricFamily, Registry, Summary, type SummarySeries } from "../mod.ts";
import { test } from "./_harness.ts";
import { find, parseSamples, valueOf } from "./_samples.ts";
import { assertOpenMetrics, assertPromtool, goFloat, type ParsedFamily } from "./_validate.ts";

// --- samples ------------------------------------------------------------------------------

/** mulberry32: a seeded generator of uniform numbers in [0, 1), so that failures reproduce. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller); `1 - random()` keeps the logarithm finite. */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

type Draw = (random: () => number) => number;

const lognormal = (mu: number, sigma: number): Draw => (random) => Math.exp(mu + sigma * normal(random));

/** The distributions of the accuracy tests, each a draw from a seeded generator. */
const DISTRIBUTIONS: Record<string, Draw> = {
  // Latencies in seconds: median 50 ms, a long tail.
  "lognormal": lognormal(Math.log(0.05), 1),
  "uniform(0, 1)": (random) => random(),
  "uniform(0, 1e9)": (random) => random() * 1e9,
  // A cache in front of a database: 80 % around 1 ms, 20 % around 1 s.
  "bimodal (1 ms and 1 s)": (random) =>
    random() < 0.8 ? lognormal(Math.log(0.001), 0.3)(random) : lognormal(0, 0.3)(random),
  "constant 42": () => 42,
  "constant 0": () => 0,
  // Gains and losses: 60 % negative, so the median is negative and the tail positive.
  "negative and positive": (random) => (random() < 0.6 ? -1 : 1) * lognormal(2, 1.5)(random),
};

function draw(distribution: Draw, n: number, seed: number): Float64Array {
  const random = mulberry32(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = distribution(random);
  return out;
}

/** The exact quantile q of sorted values, as the Summary defines it. */
function exact(sorted: Float64Array, q: number): number {
  return sorted[Math.floor(q * (sorted.length - 1))];
}

function sortedCopy(values: ArrayLike<number>): Float64Array {
  return Float64Array.from(values).sort();
}

/**
 * The relative error a bucket of schema 6 allows: (base - 1) / (base + 1), base = 2 ** (1/64),
 * from the bucket bounds alone (about 0.54 %), what the Summary documents.
 */
const BUCKET_ERROR = (2 ** (1 / 64) - 1) / (2 ** (1 / 64) + 1);

/** Throws unless `got` is within 1 % (and the bucket error) of `want`; exactly 0 for 0. */
function assertClose(got: number, want: number, what: string): void {
  if (want === 0) {
    assert.ok(got === 0, `${what}: exact 0, estimate ${got}`);
    return;
  }
  const error = Math.abs(got - want) / Math.abs(want);
  assert.ok(error <= 0.01, `${what}: exact ${want}, estimate ${got}, ${(error * 100).toFixed(3)} % off`);
  assert.ok(
    error <= BUCKET_ERROR * (1 + 1e-9),
    `${what}: exact ${want}, estimate ${got}, ${
      (error * 100).toFixed(3)
    } % off, more than one bucket's error`,
  );
}

// --- reading a summary --------------------------------------------------------------------

async function seriesOf(summary: Summary): Promise<SummarySeries[]> {
  const families = await summary.collect();
  assert.equal(families.length, 1);
  assert.equal(families[0].type, "summary");
  return families[0].series as SummarySeries[];
}

async function onlySeries(summary: Summary): Promise<SummarySeries> {
  const series = await seriesOf(summary);
  assert.equal(series.length, 1, JSON.stringify(series));
  return series[0];
}

/** The quantile values of a series, in the order of its ranks. */
function valuesOf(series: SummarySeries): number[] {
  assert.ok(series.quantiles !== undefined, `no quantiles in ${JSON.stringify(series)}`);
  return series.quantiles.map((q) => q.value);
}

/** Checks every quantile of a series against the exact ones of the values observed. */
function assertQuantiles(
  series: SummarySeries,
  ranks: readonly number[],
  sorted: Float64Array,
  what: string,
) {
  assert.deepEqual(series.quantiles?.map((q) => q.quantile), [...ranks].sort((a, b) => a - b), what);
  for (const { quantile, value } of series.quantiles!) {
    assertClose(value, exact(sorted, quantile), `${what} p${quantile * 100}`);
  }
}

// --- a fake clock -------------------------------------------------------------------------

/** A Unix time in ms that starts a slice of every window used here (divisible by 120 s). */
const ALIGNED = 1_700_000_040_000;

/** Runs `body` with `Date.now()` reading `clock.now`; the real one is restored after. */
async function withClock(start: number, body: (clock: { now: number }) => Promise<void>): Promise<void> {
  const real = Date.now;
  const clock = { now: start };
  Date.now = () => clock.now;
  try {
    await body(clock);
  } finally {
    Date.now = real;
  }
}

const RANKS = [0.5, 0.9, 0.99, 0.999];

// --- accuracy -----------------------------------------------------------------------------

for (const [name, distribution] of Object.entries(DISTRIBUTIONS)) {
  test(`Summary quantiles of 1,000,000 samples (${name}) are within 1 % of the exact ones`, async () => {
    const n = 1_000_000;
    const values = draw(distribution, n, 0x5eed + name.length);
    await withClock(ALIGNED + 1000, async () => {
      const summary = new Summary({ name: "accuracy", help: "Accuracy", quantiles: RANKS, registry: null });
      let sum = 0;
      for (let i = 0; i < n; i++) {
        summary.observe(values[i]);
        sum += values[i];
      }
      const series = await onlySeries(summary);
      assert.equal(series.count, n);
      assert.ok(Math.abs(series.sum - sum) <= 1e-9 * Math.max(1, Math.abs(sum)), `sum ${series.sum}, ${sum}`);
      assertQuantiles(series, RANKS, sortedCopy(values), name);
    });
  });
}

test("Summary quantiles match the exact ones for other seeds, sizes and ranks (fast-check)", async () => {
  const names = Object.keys(DISTRIBUTIONS);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      fc.constantFrom(...names),
      fc.integer({ min: 1, max: 20_000 }),
      fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
      async (seed, name, n, ranks) => {
        const values = draw(DISTRIBUTIONS[name], n, seed);
        const summary = new Summary({ name: "property", help: "Property", quantiles: ranks, registry: null });
        for (const value of values) summary.observe(value);
        const series = await onlySeries(summary);
        assert.equal(series.count, n);
        assertQuantiles(series, ranks, sortedCopy(values), `${name}, seed ${seed}, n ${n}`);
      },
    ),
    { numRuns: 40, seed: 20240611 },
  );
});

test("Summary quantiles match the exact ones for arbitrary values, zeros and signs mixed (fast-check)", async () => {
  // Magnitudes from 1e-100 to 1e100: the exponents of every realistic measurement, and far beyond.
  const magnitude = fc.double({ min: 1e-100, max: 1e100, noNaN: true });
  const value = fc.oneof(fc.constant(0), magnitude, magnitude.map((v) => -v));
  await fc.assert(
    fc.asyncProperty(
      fc.array(value, { minLength: 1, maxLength: 500 }),
      fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
      async (values, ranks) => {
        const summary = new Summary({
          name: "arbitrary",
          help: "Arbitrary",
          quantiles: ranks,
          registry: null,
        });
        for (const v of values) summary.observe(v);
        assertQuantiles(await onlySeries(summary), ranks, sortedCopy(values), JSON.stringify(values));
      },
    ),
    { numRuns: 200, seed: 424242 },
  );
});

// Schema 6 buckets reach from 2 ** -1074 to 2 ** 1024; every finite value has one, and the
// value that stands for a bucket must be within the bucket's error of the values it holds, for
// magnitudes where 2 * lower * upper would overflow (above about 1.3e154) or underflow (below
// about 1.5e-154) as much as for any other.
test("Summary quantiles of very large and very small magnitudes are within 1 % (1e160, 1e-200, 1.7e308)", async () => {
  const wrong: string[] = [];
  for (const value of [1e160, -1e160, 1e200, 1.7e308, 1e-160, 1e-200, -1e-300, 2 ** -1060]) {
    const summary = new Summary({ name: "extreme", help: "Extreme", quantiles: [0.5], registry: null });
    summary.observe(value);
    summary.observe(value);
    const [got] = valuesOf(await onlySeries(summary));
    if (!(Math.abs(got - value) <= BUCKET_ERROR * Math.abs(value))) {
      wrong.push(`observing ${value}: p50 ${got}`);
    }
  }
  assert.deepEqual(wrong, []);
});

// --- what prom-client's cluster aggregation does ------------------------------------------

// prom-client's AggregatorRegistry (lib/cluster.js) merges the workers' getMetricsAsJSON() with
// `aggregators[metric.aggregator]` (lib/metricAggregators.js). Every metric's `aggregator` is
// "sum" unless the metric is created with another (lib/metric.js), a Summary included
// (lib/summary.js passes it on in get()). The "sum" aggregator groups the values by sample name
// and labels, the `quantile` label included, and adds them up: the quantile series of the
// cluster is the SUM of the workers' quantiles. "average" averages them instead. Neither is a
// quantile of the union of the observations; a theus Summary on a shared backend adds up bucket
// counts (a sketch), and its quantile is that of the union. The fleet itself (processes on one
// Redis) is tested in tests/once/; here one theus summary observes the whole union.

type PromJson = Awaited<ReturnType<PromRegistry["getMetricsAsJSON"]>>;

/** prom-client's workers, one registry each, every one with a Summary of the same name. */
async function promWorkers(parts: readonly Float64Array[], aggregator: "sum" | "average"): Promise<{
  own: number[];
  aggregated: number;
}> {
  const jsons: PromJson[] = [];
  for (const part of parts) {
    const registry = new PromRegistry();
    const summary = new PromSummary({
      name: "cluster_seconds",
      help: "Latency",
      percentiles: [0.99],
      aggregator,
      registers: [registry],
    });
    for (const value of part) summary.observe(value);
    jsons.push(await registry.getMetricsAsJSON());
  }
  const p99 = (metrics: PromJson) => {
    const values = metrics[0].values as readonly { labels: { quantile?: unknown }; value: number }[];
    const sample = values.find((v) => v.labels.quantile === 0.99);
    assert.ok(sample !== undefined, JSON.stringify(values));
    return sample.value;
  };
  const aggregated = await AggregatorRegistry.aggregate(jsons).getMetricsAsJSON();
  return { own: jsons.map(p99), aggregated: p99(aggregated) };
}

function relativeError(got: number, want: number): number {
  return Math.abs(got - want) / Math.abs(want);
}

test("prom-client's cluster aggregation sums the workers' p99 (or averages it): far from the union's; a theus summary of the union is within 1 %", async () => {
  const n = 40_000;
  const random = mulberry32(99);
  const part = (mu: number) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = lognormal(mu, 1)(random);
    return out;
  };
  const p99 = (values: readonly Float64Array[]) => exact(sortedCopy(values.flatMap((v) => [...v])), 0.99);

  // The same traffic split three ways: the sum of the parts' p99 is about three times the union's.
  const even = [part(Math.log(0.05)), part(Math.log(0.05)), part(Math.log(0.05))];
  const union = p99(even);
  const summed = even.reduce((total, values) => total + p99([values]), 0);
  assert.ok(relativeError(summed, union) > 0.1, `sum of the exact p99s ${summed}, union ${union}`);
  const bySum = await promWorkers(even, "sum");
  assert.ok(
    Math.abs(bySum.aggregated - (bySum.own[0] + bySum.own[1] + bySum.own[2])) <= 1e-12 * bySum.aggregated,
    `prom-client's aggregate ${bySum.aggregated} is not the sum of ${bySum.own}`,
  );
  assert.ok(relativeError(bySum.aggregated, union) > 0.1, `prom-client: ${bySum.aggregated}, union ${union}`);

  // One slow worker: the average of the parts' p99 is far below the union's, whose slowest 1 %
  // all come from that worker.
  const skewed = [part(Math.log(0.05)), part(Math.log(0.05)), part(Math.log(1))];
  const skewedUnion = p99(skewed);
  const averaged = skewed.reduce((total, values) => total + p99([values]), 0) / skewed.length;
  assert.ok(relativeError(averaged, skewedUnion) > 0.1, `average ${averaged}, union ${skewedUnion}`);
  const byAverage = await promWorkers(skewed, "average");
  assert.ok(
    Math.abs(byAverage.aggregated - (byAverage.own[0] + byAverage.own[1] + byAverage.own[2]) / 3) <=
      1e-12 * byAverage.aggregated,
    `prom-client's aggregate ${byAverage.aggregated} is not the average of ${byAverage.own}`,
  );
  assert.ok(
    relativeError(byAverage.aggregated, skewedUnion) > 0.1,
    `prom-client: ${byAverage.aggregated}, union ${skewedUnion}`,
  );

  // A theus summary that sees every part: the union's p99.
  for (const [split, want] of [[even, union], [skewed, skewedUnion]] as const) {
    const summary = new Summary({ name: "union_seconds", help: "Union", quantiles: [0.99], registry: null });
    for (const values of split) for (const value of values) summary.observe(value);
    const [got] = valuesOf(await onlySeries(summary));
    assertClose(got, want, "theus p99 of the union");
  }
});

// --- the sliding window ---------------------------------------------------------------------

test("Summary window: an observation stays for maxAge less one slice, leaves at its slice's end plus maxAge; count and sum stay", async () => {
  // maxAge 60 s in 3 slices of 20 s, aligned to Unix time: [ALIGNED, ALIGNED + 20 s), ...
  for (const offset of [0, 1, 5_000, 19_999]) {
    await withClock(ALIGNED + offset, async (clock) => {
      const observed = clock.now;
      const summary = new Summary({
        name: "window",
        help: "Window",
        quantiles: [0.5],
        maxAgeSeconds: 60,
        ageBuckets: 3,
        registry: null,
      });
      summary.observe(10);
      const at = async (now: number) => {
        clock.now = now;
        return await onlySeries(summary);
      };
      assertClose(valuesOf(await at(observed))[0], 10, "at once");
      // Within maxAge less one slice, whatever the slice: still there.
      assertClose(valuesOf(await at(observed + 40_000 - 1))[0], 10, "40 s later, less 1 ms");
      // Until the end of its slice plus 40 s: the window then holds its 3 slices.
      assertClose(valuesOf(await at(ALIGNED + 60_000 - 1))[0], 10, "at the last ms of the window");
      let series = await at(ALIGNED + 60_000);
      assert.ok(Number.isNaN(valuesOf(series)[0]), `gone once its slice left: ${valuesOf(series)}`);
      assert.deepEqual([series.count, series.sum], [1, 10], "count and sum are cumulative");
      series = await at(observed + 60_000);
      assert.ok(Number.isNaN(valuesOf(series)[0]), `gone after maxAge: ${valuesOf(series)}`);
      // A new observation, the window moved on: the old one is not counted.
      summary.observe(1000);
      series = await onlySeries(summary);
      assertClose(valuesOf(series)[0], 1000, "after the window moved");
      assert.deepEqual([series.count, series.sum], [2, 1010]);
    });
  }
});

test("Summary window: slices are aligned to Unix time, and an observation leaves whether or not another one moves the window", async () => {
  await withClock(ALIGNED + 19_999, async (clock) => {
    const summary = new Summary({
      name: "aligned",
      help: "Aligned",
      labelNames: ["path"],
      quantiles: [0, 1],
      maxAgeSeconds: 60,
      ageBuckets: 3,
      registry: null,
    });
    // The same two observations, with and without a later observation moving the window.
    const quiet = summary.labels({ path: "quiet" });
    const busy = summary.labels({ path: "busy" });
    quiet.observe(1); // the last ms of a slice
    busy.observe(1);
    clock.now = ALIGNED + 20_000; // the first of the next
    quiet.observe(100);
    busy.observe(100);
    const minMax = async () => {
      busy.observe(50); // moves busy's window to now, and counts in it
      const out: Record<string, number[]> = {};
      for (const series of await seriesOf(summary)) out[series.labels.path] = valuesOf(series);
      return out;
    };
    clock.now = ALIGNED + 59_999;
    let seen = await minMax();
    assertClose(seen.quiet[0], 1, "quiet min at 59.999 s");
    assertClose(seen.quiet[1], 100, "quiet max at 59.999 s");
    assertClose(seen.busy[0], 1, "busy min at 59.999 s");
    clock.now = ALIGNED + 60_000; // the first slice leaves
    seen = await minMax();
    assertClose(seen.quiet[0], 100, "quiet min at 60 s");
    assertClose(seen.busy[0], 50, "busy min at 60 s");
    assertClose(seen.busy[1], 100, "busy max at 60 s");
    clock.now = ALIGNED + 79_999;
    seen = await minMax();
    assertClose(seen.quiet[0], 100, "quiet at 79.999 s");
    clock.now = ALIGNED + 80_000; // the second slice leaves too
    seen = await minMax();
    assert.ok(seen.quiet.every(Number.isNaN), `quiet at 80 s: ${seen.quiet}`);
    assertClose(seen.busy[0], 50, "busy min at 80 s");
    assertClose(seen.busy[1], 50, "busy max at 80 s");
  });
});

test("Summary window: the defaults are 600 s in 5 slices; ageBuckets: 1 is one slice of maxAge", async () => {
  await withClock(ALIGNED, async (clock) => {
    const defaults = new Summary({ name: "defaults", help: "Defaults", quantiles: [0.5], registry: null });
    const one = new Summary({
      name: "one",
      help: "One slice",
      quantiles: [0.5],
      maxAgeSeconds: 10,
      ageBuckets: 1,
      registry: null,
    });
    defaults.observe(3);
    one.observe(3);
    clock.now = ALIGNED + 9_999;
    one.observe(4);
    assert.deepEqual(valuesOf(await onlySeries(one)).map(Number.isNaN), [false]);
    const [low] = valuesOf(await onlySeries(one));
    assertClose(low, 3, "one slice, both values: the lower median");
    clock.now = ALIGNED + 10_000;
    let series = await onlySeries(one);
    assert.ok(Number.isNaN(valuesOf(series)[0]), `one slice at 10 s: ${valuesOf(series)}`);
    assert.deepEqual([series.count, series.sum], [2, 7]);
    clock.now = ALIGNED + 599_999;
    assertClose(valuesOf(await onlySeries(defaults))[0], 3, "defaults at 599.999 s");
    clock.now = ALIGNED + 600_000;
    series = await onlySeries(defaults);
    assert.ok(Number.isNaN(valuesOf(series)[0]), `defaults at 600 s: ${valuesOf(series)}`);
    assert.deepEqual([series.count, series.sum], [1, 3]);
  });
});

test("Summary window: an empty window gives NaN quantiles, written NaN in both formats", async () => {
  await withClock(ALIGNED, async (clock) => {
    const registry = new Registry();
    const summary = new Summary({
      name: "empty_seconds",
      help: "Empty",
      quantiles: [0.5, 0.99],
      maxAgeSeconds: 30,
      ageBuckets: 3,
      registry,
    });
    const series = await onlySeries(summary);
    assert.deepEqual([series.count, series.sum], [0, 0]);
    assert.ok(valuesOf(series).every(Number.isNaN), JSON.stringify(series));
    summary.observe(0.25);
    clock.now += 40_000;
    for (const format of ["prometheus", "openmetrics"] as const) {
      const text = await generateLatest(registry, { format });
      assert.ok(text.includes('\nempty_seconds{quantile="0.5"} NaN\n'), text);
      assert.ok(text.includes('\nempty_seconds{quantile="0.99"} NaN\n'), text);
      assert.equal(valueOf(text, "empty_seconds_count", {}), 1, text);
      assert.equal(valueOf(text, "empty_seconds_sum", {}), 0.25, text);
      if (format === "prometheus") await assertPromtool(text);
      else await assertOpenMetrics(text);
    }
  });
});

// --- options ------------------------------------------------------------------------------

function assertThrowsNaming(options: Record<string, unknown>, kind: typeof TypeError, option: RegExp): void {
  assert.throws(
    () => new Summary({ name: "bad", help: "Bad", registry: null, ...options } as never),
    (error: Error) => {
      assert.ok(error instanceof kind, `${JSON.stringify(options)}: ${error}`);
      assert.match(error.message, option, JSON.stringify(options));
      return true;
    },
  );
}

test("Summary rejects invalid quantiles, maxAgeSeconds and ageBuckets with errors naming the option", () => {
  for (const quantiles of [[1.5], [-0.1], [NaN], [0.5, Infinity], ["0.5"], [null]]) {
    assertThrowsNaming({ quantiles }, RangeError, /^Invalid quantiles for summary "bad"/);
  }
  assertThrowsNaming({ quantiles: [0.5, 0.9, 0.5] }, RangeError, /^Invalid quantiles .*0\.5 is given twice/);
  for (const quantiles of [0.5, "0.5", { 0: 0.5 }, null]) {
    assertThrowsNaming({ quantiles }, TypeError, /^Invalid quantiles for summary "bad"/);
  }
  for (const maxAgeSeconds of [0, -1, NaN, Infinity]) {
    assertThrowsNaming({ quantiles: [0.5], maxAgeSeconds }, RangeError, /^Invalid maxAgeSeconds for summary/);
  }
  for (const ageBuckets of [0, -1, 1.5, 1001, NaN]) {
    assertThrowsNaming({ quantiles: [0.5], ageBuckets }, RangeError, /^Invalid ageBuckets for summary/);
  }
  // A value of another type is a TypeError that shows it, quoted.
  assertThrowsNaming({ quantiles: [0.5], maxAgeSeconds: "600" }, TypeError, /^Invalid maxAgeSeconds .*"600"/);
  assertThrowsNaming({ quantiles: [0.5], ageBuckets: "5" }, TypeError, /^Invalid ageBuckets .*"5"/);
  // A window without quantiles is a mistake, not a no-op.
  assertThrowsNaming({ maxAgeSeconds: 60 }, TypeError, /^Invalid maxAgeSeconds .*"quantiles" is not given/);
  assertThrowsNaming({ ageBuckets: 3 }, TypeError, /^Invalid ageBuckets .*"quantiles" is not given/);
  // prom-client's names point at theus'.
  assertThrowsNaming({ percentiles: [0.5] }, TypeError, /^Unknown option "percentiles" .*"quantiles"/);
  assertThrowsNaming({ quantiles: [0.5], pruneAgedBuckets: true }, TypeError, /"pruneAgedBuckets"/);
  assertThrowsNaming({ quantiles: [0.5], labelNames: ["quantile"] }, TypeError, /quantile/);
  // The edges are ranks too, and 1000 slices are allowed.
  for (const options of [{ quantiles: [0, 1] }, { quantiles: [0.5], maxAgeSeconds: 0.5, ageBuckets: 1000 }]) {
    assert.ok(new Summary({ name: "good", help: "Good", registry: null, ...options }) instanceof Summary);
  }
});

test("Summary sorts the quantiles it is given: collected in ascending rank", async () => {
  const summary = new Summary({
    name: "sorted",
    help: "Sorted",
    quantiles: [0.99, 0, 0.5, 1],
    registry: null,
  });
  for (let i = 1; i <= 100; i++) summary.observe(i);
  const series = await onlySeries(summary);
  assertQuantiles(
    series,
    [0, 0.5, 0.99, 1],
    sortedCopy(Array.from({ length: 100 }, (_, i) => i + 1)),
    "1..100",
  );
  assertClose(valuesOf(series)[0], 1, "p0 is the minimum");
  assertClose(valuesOf(series)[3], 100, "p100 is the maximum");
});

// --- children, remove(), reset(), timers ---------------------------------------------------

test("Summary children keep their own quantiles; remove() and reset() clear them", async () => {
  const summary = new Summary({
    name: "children",
    help: "Children",
    labelNames: ["route"],
    quantiles: [0.5, 0.9],
    registry: null,
  });
  const fast = Array.from({ length: 100 }, (_, i) => (i + 1) / 1000);
  const slow = Array.from({ length: 50 }, (_, i) => 10 + i);
  for (const v of fast) summary.labels({ route: "/fast" }).observe(v);
  for (const v of slow) summary.labels({ route: "/slow" }).observe(v);
  const byRoute = async () => new Map((await seriesOf(summary)).map((s) => [s.labels.route, s]));
  let series = await byRoute();
  assert.deepEqual([...series.keys()].sort(), ["/fast", "/slow"]);
  assertQuantiles(series.get("/fast")!, [0.5, 0.9], sortedCopy(fast), "/fast");
  assertQuantiles(series.get("/slow")!, [0.5, 0.9], sortedCopy(slow), "/slow");
  assert.equal(series.get("/slow")!.count, 50);

  assert.equal(summary.remove({ route: "/fast" }), true);
  series = await byRoute();
  assert.deepEqual([...series.keys()], ["/slow"]);
  summary.labels({ route: "/fast" }).observe(7); // a fresh series: none of the old values
  series = await byRoute();
  assert.deepEqual([series.get("/fast")!.count, series.get("/fast")!.sum], [1, 7]);
  assertQuantiles(series.get("/fast")!, [0.5, 0.9], sortedCopy([7]), "/fast after remove()");

  summary.reset();
  assert.deepEqual(await seriesOf(summary), []);
  summary.labels({ route: "/slow" }).observe(3);
  series = await byRoute();
  assert.deepEqual([...series.keys()], ["/slow"]);
  assert.deepEqual([series.get("/slow")!.count, series.get("/slow")!.sum], [1, 3]);
  assertQuantiles(series.get("/slow")!, [0.5, 0.9], sortedCopy([3]), "/slow after reset()");
});

test("Summary.reset() of an unlabelled summary zeroes its count and sum, and empties its window", async () => {
  const summary = new Summary({ name: "unlabelled", help: "Unlabelled", quantiles: [0.5], registry: null });
  for (let i = 1; i <= 10; i++) summary.observe(i);
  summary.reset();
  const series = await onlySeries(summary);
  assert.deepEqual([series.labels, series.count, series.sum], [{}, 0, 0]);
  assert.ok(Number.isNaN(valuesOf(series)[0]), JSON.stringify(series));
  summary.observe(2);
  assertQuantiles(await onlySeries(summary), [0.5], sortedCopy([2]), "after reset()");
});

test("Summary.startTimer() and time() observe durations into the quantiles", async () => {
  const summary = new Summary({
    name: "timer_seconds",
    help: "Timer",
    labelNames: ["route", "status"],
    quantiles: [0.5],
    registry: null,
  });
  const timer = summary.startTimer({ route: "/a" });
  const end = performance.now() + 20;
  while (performance.now() < end) { /* spin */ }
  const seconds = timer.stop({ status: "200" });
  assert.ok(seconds >= 0.015 && seconds < 5, `${seconds} s`);
  {
    using _ = summary.labels({ route: "/b", status: "500" }).startTimer();
  }
  summary.labels({ route: "/c", status: "200" }).time(() => 1);
  const series = new Map((await seriesOf(summary)).map((s) => [s.labels.route, s]));
  assert.deepEqual(series.get("/a")!.labels, { route: "/a", status: "200" });
  assertQuantiles(series.get("/a")!, [0.5], sortedCopy([seconds]), "timed /a");
  for (const route of ["/b", "/c"]) {
    const [median] = valuesOf(series.get(route)!);
    assert.ok(median >= 0 && median < 5 && series.get(route)!.count === 1, `${route}: ${median}`);
  }
});

// --- exposition ---------------------------------------------------------------------------

/** What the OpenMetrics parser must read for a summary family: quantiles, _sum (never negative), _count. */
function expectedSamples(family: MetricFamily): [string, Record<string, string>, number][] {
  const out: [string, Record<string, string>, number][] = [];
  for (const series of family.series as readonly SummarySeries[]) {
    for (const { quantile, value } of series.quantiles ?? []) {
      out.push([family.name, { ...series.labels, quantile: String(quantile) }, value]);
    }
    if (series.sum >= 0) out.push([`${family.name}_sum`, { ...series.labels }, series.sum]);
    out.push([`${family.name}_count`, { ...series.labels }, series.count]);
  }
  return out;
}

function parsedSamples(family: ParsedFamily): [string, Record<string, string>, number][] {
  return family.samples.map(([name, labels, value]) => {
    const out = { ...labels };
    if ("quantile" in out) out.quantile = String(goFloat(out.quantile));
    return [name, out, goFloat(value)];
  });
}

test("Summary quantile lines come before _sum and _count, and pass promtool and the OpenMetrics parser", async () => {
  await withClock(ALIGNED, async (clock) => {
    const registry = new Registry();
    const summary = new Summary({
      name: "payload_bytes",
      help: "Payload sizes",
      labelNames: ["kind"],
      quantiles: [0, 0.5, 0.9, 0.99, 1],
      maxAgeSeconds: 60,
      registry,
    });
    summary.labels({ kind: "idle" }).observe(5); // leaves the window: NaN quantiles
    clock.now += 120_000;
    const json = Array.from({ length: 100 }, (_, i) => (i + 1) * 10);
    for (const v of json) summary.labels({ kind: "json" }).observe(v);
    summary.labels({ kind: 'a "quoted" \\ kind\n' }).observe(7);
    new Summary({ name: "plain_bytes", help: "Without quantiles", registry }).observe(3);

    const families = await registry.collect();
    const series = new Map((families[0].series as SummarySeries[]).map((s) => [s.labels.kind, s]));
    assertQuantiles(series.get("json")!, [0, 0.5, 0.9, 0.99, 1], sortedCopy(json), "json");
    assert.ok(valuesOf(series.get("idle")!).every(Number.isNaN));
    assert.equal(families[1].series.length, 1);
    assert.equal((families[1].series[0] as SummarySeries).quantiles, undefined);

    const text = await generateLatest(registry);
    await assertPromtool(text);
    // Each series: its quantile lines in ascending rank (the rank compared as a number, however
    // it is written), then _sum and _count; the values those collected.
    const written = parseSamples(text).filter((sample) => sample.labels.kind === "json");
    assert.deepEqual(
      written.map((
        { name, labels, value },
      ) => [name, labels.quantile === undefined ? "" : Number(labels.quantile), value]),
      [
        ...series.get("json")!.quantiles!.map(({ quantile, value }) => ["payload_bytes", quantile, value]),
        ["payload_bytes_sum", "", 50500],
        ["payload_bytes_count", "", 100],
      ],
    );
    assert.equal(find(text, "payload_bytes").length, 15, text);
    assert.equal(find(text, "plain_bytes").length, 0, text);
    assert.ok(text.includes("\nplain_bytes_sum 3\nplain_bytes_count 1\n"), text);

    const om = await generateLatest(registry, { format: "openmetrics" });
    const parsed = await assertOpenMetrics(om);
    assert.deepEqual(parsed.map((f) => [f.name, f.type]), [["payload_bytes", "summary"], [
      "plain_bytes",
      "summary",
    ]]);
    const want = expectedSamples(families[0]);
    assert.equal(want.length, 15 + 3 + 3);
    const got = parsedSamples(parsed[0]);
    assert.equal(got.length, want.length, om);
    for (let i = 0; i < want.length; i++) {
      assert.deepEqual(got[i].slice(0, 2), want[i].slice(0, 2), `sample ${i}`);
      assert.ok(
        Object.is(got[i][2], want[i][2]),
        `sample ${i}: parsed ${got[i][2]}, collected ${want[i][2]}`,
      );
    }
  });
});

// OpenMetrics 1.0 has a summary's quantile values, like its _sum, never negative; the strict
// parser rejects a negative one ("Quantile values cannot be negative"). The writer already
// leaves out a negative _sum in OpenMetrics; a summary of signed values (gains and losses,
// clock offsets) must give an exposition the parser accepts too.
test("Summary of negative values: the OpenMetrics exposition passes the strict parser, and text 0.0.4 promtool", async () => {
  const registry = new Registry();
  const summary = new Summary({
    name: "offset_seconds",
    help: "Clock offsets",
    quantiles: [0.5, 0.99],
    registry,
  });
  for (const v of [-0.25, -0.5, -0.125, 0.0625]) summary.observe(v);
  const [series] = (await registry.collect())[0].series as SummarySeries[];
  assertQuantiles(series, [0.5, 0.99], sortedCopy([-0.25, -0.5, -0.125, 0.0625]), "offsets");
  const text = await generateLatest(registry);
  await assertPromtool(text);
  assertClose(valueOf(text, "offset_seconds", { quantile: "0.5" })!, -0.25, "p50 in text 0.0.4");
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
});

// Native histograms: bucket indices against hand-computed ones and against a reference written
// here from the definition (bucket k of schema s holds (2 ** ((k - 1) * 2 ** -s), 2 ** (k * 2 ** -s)]);
// the schema client_golang picks for a bucket factor; schema reduction past maxBuckets; classic
// buckets and exemplars alongside; option checks; custom collectors' native buckets and quantiles.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  type Collector,
  generateLatest,
  Histogram,
  type HistogramFamily,
  type HistogramSeries,
  type MetricFamily,
  type NativeBuckets,
  Registry,
} from "../mod.ts";
import {
  bucketIndex,
  bucketIndexByLog,
  fractions,
  SCHEMA_MAX,
  SCHEMA_MIN,
  schemaFor,
} from "../core/_exponential.ts";
import { test } from "./_harness.ts";
import { find, valueOf } from "./_samples.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

// --- the reference ------------------------------------------------------------------------

/** The exponent e of a finite positive number: 2 ** e <= v < 2 ** (e + 1), exactly. */
function exponent(v: number): number {
  let e = Math.floor(Math.log2(v));
  // Powers of two are exact from 2 ** -1074 to 2 ** 1023, so the comparisons are too.
  while (e > -1074 && 2 ** e > v) e--;
  while (e < 1023 && 2 ** (e + 1) <= v) e++;
  return e;
}

/**
 * The index of the bucket of schema `schema` that holds `v` > 0, by the definition: the least k
 * with v <= 2 ** (k * 2 ** -schema).
 */
function referenceIndex(v: number, schema: number): number {
  const e = exponent(v);
  const m = v / 2 ** e; // in [1, 2), exactly: a division by a power of two
  if (schema <= 0) {
    // At schema 0 the index is e for a power of two, e + 1 otherwise; coarser schemas merge
    // 2 ** -schema of those: the least k with k * 2 ** -schema >= it.
    const k0 = m === 1 ? e : e + 1;
    return Math.ceil(k0 / 2 ** -schema) + 0; // + 0: no -0
  }
  const n = 2 ** schema;
  // The least j in 0..n with m <= 2 ** (j / n).
  let j = Math.max(0, Math.ceil(Math.log2(m) * n));
  while (m > 2 ** (j / n)) j++;
  while (j > 0 && m <= 2 ** ((j - 1) / n)) j--;
  return e * n + j;
}

/** mulberry32: a seeded generator of uniform numbers in [0, 1). */
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

/** A positive double with a random mantissa and an exponent from `low` to `high`. */
function randomDouble(random: () => number, low: number, high: number): number {
  const e = low + Math.floor(random() * (high - low + 1));
  return (1 + random()) * 2 ** e;
}

// --- reading a histogram ------------------------------------------------------------------

async function seriesOf(histogram: Histogram): Promise<HistogramSeries[]> {
  const families = await histogram.collect();
  assert.equal(families.length, 1);
  assert.equal(families[0].type, "histogram");
  return families[0].series as HistogramSeries[];
}

async function nativeOf(histogram: Histogram): Promise<NativeBuckets> {
  const series = await seriesOf(histogram);
  assert.equal(series.length, 1);
  assert.ok(series[0].native !== undefined, JSON.stringify(series[0]));
  return series[0].native;
}

/** The native buckets of values, counted here from the reference indices. */
function referenceBuckets(
  values: readonly number[],
  schema: number,
  zeroThreshold: number,
): Pick<NativeBuckets, "zeroCount" | "positive" | "negative"> {
  const positive = new Map<number, number>();
  const negative = new Map<number, number>();
  let zeroCount = 0;
  for (const v of values) {
    if (Math.abs(v) <= zeroThreshold) zeroCount++;
    else {
      const side = v > 0 ? positive : negative;
      const k = referenceIndex(Math.abs(v), schema);
      side.set(k, (side.get(k) ?? 0) + 1);
    }
  }
  const sorted = (map: Map<number, number>) =>
    [...map].sort(([a], [b]) => a - b).map(([index, count]) => ({ index, count }));
  return { zeroCount, positive: sorted(positive), negative: sorted(negative) };
}

const NONE = { help: "Help", registry: null } as const;

// --- schema and indices -------------------------------------------------------------------

test("native bucketFactor picks client_golang's schema: the coarsest whose buckets grow by no more", async () => {
  // floor(log2(log2(factor))), negated, clamped to -4..8: worked out by hand.
  const cases: [number, number][] = [
    [1.1, 3], // log2(1.1) = 0.1375, log2 of that -2.86
    [2, 0],
    [4, -1],
    [1.5, 1], // log2(0.585) = -0.77
    [1.2, 2], // log2(0.263) = -1.93
    [1.05, 4], // log2(0.0704) = -3.83
    [1.01, 7], // log2(0.01436) = -6.12
    [1.003, 8], // log2(0.00432) = -7.85
    [1.0001, 8], // -12.8, clamped
    [65536, -4], // log2(16) = 4
    [1e300, -4],
    [2 ** 2 ** 3, -3], // 256: log2(8) = 3
  ];
  for (const [factor, schema] of cases) {
    // == 0 here: that schema 0 is not -0 is the next test's.
    assert.ok(schemaFor(factor) === schema, `bucketFactor ${factor}: schema ${schemaFor(factor)}`);
    const h = new Histogram({ name: "factor", ...NONE, native: { bucketFactor: factor } });
    h.observe(3);
    const got = (await nativeOf(h)).schema;
    assert.ok(got === schema, `histogram with bucketFactor ${factor}: schema ${got}`);
  }
  const defaults = new Histogram({ name: "defaults", ...NONE, native: true });
  defaults.observe(1);
  assert.equal((await nativeOf(defaults)).schema, 3, "bucketFactor 1.1 by default");
});

// -floor(log2(log2(2))) is -0: the schema a Histogram collects and exposes must be 0, as
// client_golang's int32 is (deepStrictEqual, Object.is and 1 / schema tell -0 apart).
test("native bucketFactor 2 gives schema 0, not -0", async () => {
  assert.ok(
    Object.is(schemaFor(2), 0),
    `schemaFor(2) is ${Object.is(schemaFor(2), -0) ? "-0" : schemaFor(2)}`,
  );
  const h = new Histogram({ name: "factor_two", ...NONE, native: { bucketFactor: 2 } });
  h.observe(3);
  const { schema } = await nativeOf(h);
  assert.ok(Object.is(schema, 0), `collected schema ${Object.is(schema, -0) ? "-0" : schema}`);
});

test("native buckets at schema 3 (bucketFactor 1.1): hand-computed indices, negatives by magnitude, the zero bucket", async () => {
  const h = new Histogram({ name: "hand", ...NONE, native: { bucketFactor: 1.1 } });
  // ceil(log2(v) * 8): 1 -> 0, 2 -> 8, 1.5 -> ceil(4.68) = 5, 0.5 -> -8, 3 -> ceil(12.68) = 13,
  // 2 ** -127 -> -1016; 2 ** -128 and less in magnitude (the default threshold): zero.
  for (const v of [1, 2, 1.5, 0.5, 3, 2 ** -127, -1.5, -2, 0, -0, 1e-40, -1e-40, 2 ** -128, 2]) h.observe(v);
  assert.deepEqual(await nativeOf(h), {
    schema: 3,
    zeroThreshold: 2 ** -128,
    zeroCount: 5,
    positive: [
      { index: -1016, count: 1 },
      { index: -8, count: 1 },
      { index: 0, count: 1 },
      { index: 5, count: 1 },
      { index: 8, count: 2 },
      { index: 13, count: 1 },
    ],
    negative: [{ index: 5, count: 1 }, { index: 8, count: 1 }],
  });
  const [series] = await seriesOf(h);
  assert.equal(series.count, 14);
  assert.equal(series.sum, 1 + 2 + 1.5 + 0.5 + 3 + 2 ** -127 - 1.5 - 2 + 1e-40 - 1e-40 + 2 ** -128 + 2);

  // A zero threshold of its own: 0.01 and -0.01 are zero, 0.011 is not.
  const wide = new Histogram({ name: "wide", ...NONE, native: { zeroThreshold: 0.01 } });
  for (const v of [0.01, -0.01, 0.011, 0]) wide.observe(v);
  const native = await nativeOf(wide);
  assert.equal(native.zeroThreshold, 0.01);
  assert.equal(native.zeroCount, 3);
  // log2(0.011) * 8 = -52.05 -> -52
  assert.deepEqual(native.positive, [{ index: -52, count: 1 }]);
});

test("bucketIndex: exact powers of two and their neighbours at schemas 0, -1, -4 and 3", () => {
  for (let e = -1022; e <= 1023; e++) {
    const v = 2 ** e;
    assert.equal(bucketIndex(v, 0), e, `2 ** ${e} at schema 0`);
    assert.equal(bucketIndex(v, -1), Math.ceil(e / 2) + 0, `2 ** ${e} at schema -1`); // + 0: no -0
    assert.equal(bucketIndex(v, -4), Math.ceil(e / 16) + 0, `2 ** ${e} at schema -4`);
    assert.equal(bucketIndex(v, 3), 8 * e, `2 ** ${e} at schema 3`);
    if (e < 1023) {
      // The next double up starts the next bucket of schema 0 and 3.
      const above = v * (1 + Number.EPSILON);
      assert.equal(bucketIndex(above, 0), e + 1, `just above 2 ** ${e}`);
      assert.equal(bucketIndex(above, 3), 8 * e + 1, `just above 2 ** ${e} at schema 3`);
    }
  }
  // Hand-worked: schema -1 buckets are (4 ** (k - 1), 4 ** k].
  const schemaMinus1: [number, number][] = [
    [1, 0],
    [0.5, 0],
    [0.25, -1],
    [0.125, -1],
    [2, 1],
    [4, 1],
    [5, 2],
    [
      16,
      2,
    ],
    [17, 3],
  ];
  for (const [v, k] of schemaMinus1) assert.equal(bucketIndex(v, -1), k, `${v} at schema -1`);
  // Schema -4: (65536 ** (k - 1), 65536 ** k].
  for (const [v, k] of [[1, 0], [65536, 1], [65537, 2], [2 ** -16, -1], [2 ** -16 * 1.5, 0]]) {
    assert.equal(bucketIndex(v, -4), k, `${v} at schema -4`);
  }
  // The largest finite values are in the last bucket with a finite lower bound, whose upper
  // bound, 2 ** 1024, is +Inf as a double; Infinity is in that one or the next.
  for (let schema = SCHEMA_MIN; schema <= SCHEMA_MAX; schema++) {
    const top = schema > 0 ? 1024 * 2 ** schema : 1024 / 2 ** -schema;
    assert.equal(bucketIndex(Number.MAX_VALUE, schema), top, `MAX_VALUE at schema ${schema}`);
    const infinity = bucketIndex(Infinity, schema);
    assert.ok(infinity === top || infinity === top + 1, `Infinity at schema ${schema}: ${infinity}`);
  }
});

test("bucketIndex and bucketIndexByLog agree with the definition for random values at every schema -4..8", () => {
  const random = mulberry32(0xb0c4e7);
  for (let schema = SCHEMA_MIN; schema <= SCHEMA_MAX; schema++) {
    for (let i = 0; i < 4000; i++) {
      // Mostly realistic magnitudes, some from the whole normal range.
      const v = i % 4 === 0 ? randomDouble(random, -1022, 1023) : randomDouble(random, -40, 40);
      const want = referenceIndex(v, schema);
      assert.equal(bucketIndex(v, schema), want, `bucketIndex(${v}, ${schema})`);
      // + 0: bucketIndexByLog gives -0 for index 0 (Math.ceil of a small negative logarithm),
      // which a Map key or an index comparison takes for 0.
      assert.equal(bucketIndexByLog(v, schema) + 0, want, `bucketIndexByLog(${v}, ${schema})`);
    }
  }
});

// Below 2 ** -1022 a bound 2 ** (k / 2 ** schema) is rounded to a multiple of 2 ** -1074, so
// comparing a value with the bounds as doubles no longer follows the definition; client_golang
// compares the mantissa from math.Frexp with the fractions instead, which stays exact.
test("bucketIndex agrees with the definition for subnormal values at every schema (fast-check)", () => {
  for (let e = -1074; e < -1022; e++) {
    for (let schema = SCHEMA_MIN; schema <= SCHEMA_MAX; schema++) {
      const want = schema > 0 ? e * 2 ** schema : Math.ceil(e / 2 ** -schema) + 0;
      assert.equal(bucketIndex(2 ** e, schema), want, `2 ** ${e} at schema ${schema}`);
    }
  }
  fc.assert(
    fc.property(
      fc.double({ min: Number.MIN_VALUE, max: 2 ** -1022, noNaN: true }),
      fc.integer({ min: SCHEMA_MIN, max: SCHEMA_MAX }),
      (v, schema) => {
        assert.equal(bucketIndex(v, schema), referenceIndex(v, schema), `bucketIndex(${v}, ${schema})`);
      },
    ),
    { numRuns: 2000, seed: 77 },
  );
});

test("a native histogram counts values in the buckets the definition gives, at every bucket factor (fast-check)", async () => {
  const magnitude = fc.double({ min: 1e-30, max: 1e30, noNaN: true });
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.oneof(magnitude, magnitude.map((v) => -v), fc.constant(0)), {
        minLength: 1,
        maxLength: 200,
      }),
      fc.integer({ min: SCHEMA_MIN, max: SCHEMA_MAX }),
      async (values, schema) => {
        // A factor whose schema is `schema`: log2(log2(factor)) = -schema + log2(1.5).
        const h = new Histogram({
          name: "property",
          ...NONE,
          native: { bucketFactor: 2 ** (1.5 * 2 ** -schema), maxBuckets: Infinity },
        });
        for (const v of values) h.observe(v);
        const native = await nativeOf(h);
        assert.ok(native.schema === schema, `schema ${native.schema}`);
        assert.deepEqual(
          { zeroCount: native.zeroCount, positive: native.positive, negative: native.negative },
          referenceBuckets(values, schema, 2 ** -128),
        );
      },
    ),
    { numRuns: 100, seed: 31337 },
  );
});

// --- schema reduction ---------------------------------------------------------------------

test("native maxBuckets: past it the schema goes down until the buckets fit, counts kept exactly", async () => {
  const h = new Histogram({ name: "reduce", ...NONE, native: { bucketFactor: 1.1, maxBuckets: 4 } });
  const values = [1, 2, 4, 8, 16, 32];
  for (const v of values) h.observe(v);
  // At schema 3 the indices are 0, 8, 16, 24, 32, 40: six buckets. Schemas 2, 1 and 0 still
  // have five for the first five values; schema -1, buckets (4 ** (k - 1), 4 ** k], has three,
  // then four with 32.
  assert.deepEqual(await nativeOf(h), {
    schema: -1,
    zeroThreshold: 2 ** -128,
    zeroCount: 0,
    positive: [{ index: 0, count: 1 }, { index: 1, count: 2 }, { index: 2, count: 2 }, {
      index: 3,
      count: 1,
    }],
    negative: [],
  });
  // The indices are those of schema 3, merged four steps: ceil(k / 16).
  const steps = 3 - -1;
  assert.deepEqual(
    values.map((v) => Math.ceil(referenceIndex(v, 3) / 2 ** steps)),
    [0, 1, 1, 2, 2, 3],
  );
});

test("native maxBuckets: random signed values end at the finest schema that fits, indices ceil(k / 2 ** steps)", async () => {
  const random = mulberry32(2024);
  for (const maxBuckets of [1, 2, 5, 20, 60]) {
    const values: number[] = [];
    for (let i = 0; i < 3000; i++) {
      const r = random();
      values.push(r < 0.05 ? 0 : (r < 0.4 ? -1 : 1) * Math.exp(6 * (random() - 0.5) * 2));
    }
    const h = new Histogram({ name: "random", ...NONE, native: { maxBuckets } });
    for (const v of values) h.observe(v);
    const native = await nativeOf(h);
    const [series] = await seriesOf(h);
    const size = (buckets: ReturnType<typeof referenceBuckets>) =>
      buckets.positive.length + buckets.negative.length + (buckets.zeroCount > 0 ? 1 : 0);
    // Counts kept exactly: every observation in one bucket.
    const total = native.zeroCount +
      [...native.positive, ...native.negative].reduce((n, b) => n + b.count, 0);
    assert.equal(total, values.length);
    assert.equal(series.count, values.length);
    // The indices: those of schema 3, merged by the steps down.
    const steps = 3 - native.schema;
    const merged = referenceBuckets(values.map((v) => v), native.schema, 2 ** -128);
    assert.deepEqual(
      { zeroCount: native.zeroCount, positive: native.positive, negative: native.negative },
      merged,
      `maxBuckets ${maxBuckets}`,
    );
    for (const { index } of native.positive) {
      assert.ok(
        values.some((v) => v > 0 && Math.ceil(referenceIndex(v, 3) / 2 ** steps) === index),
        `positive index ${index} is no merged index of schema 3`,
      );
    }
    // The finest schema that fits, not below -4: one step finer would not.
    if (native.schema > SCHEMA_MIN) assert.ok(size(merged) <= maxBuckets, `maxBuckets ${maxBuckets}`);
    if (native.schema < 3) {
      assert.ok(
        size(referenceBuckets(values, native.schema + 1, 2 ** -128)) > maxBuckets,
        `schema ${native.schema + 1} would have fitted ${maxBuckets} buckets`,
      );
    }
  }
});

test("native maxBuckets: the schema stops at -4 even when the buckets still do not fit", async () => {
  const h = new Histogram({ name: "floor", ...NONE, native: { maxBuckets: 1 } });
  for (const v of [1, 1e100, -1e100, 0, 1e-30]) h.observe(v);
  // log2(1e100) = 332.2: index 333 at schema 0, ceil(333 / 16) = 21 at -4; log2(1e-30) = -99.66:
  // index -99 at schema 0, ceil(-99 / 16) = -6 at -4.
  assert.deepEqual(await nativeOf(h), {
    schema: -4,
    zeroThreshold: 2 ** -128,
    zeroCount: 1,
    positive: [{ index: -6, count: 1 }, { index: 0, count: 1 }, { index: 21, count: 1 }],
    negative: [{ index: 21, count: 1 }],
  });
});

// --- classic buckets alongside ------------------------------------------------------------

test("native with buckets keeps the classic buckets too; without, only +Inf", async () => {
  const registry = new Registry();
  const both = new Histogram({
    name: "both_seconds",
    help: "Both",
    buckets: [1, 5],
    native: true,
    registry,
  });
  const only = new Histogram({ name: "only_seconds", help: "Only native", native: true, registry });
  for (const v of [0.5, 1, 3, 7, -2]) {
    both.observe(v);
    only.observe(v);
  }
  const [bothFamily, onlyFamily] = (await registry.collect()) as HistogramFamily[];
  assert.deepEqual(bothFamily.buckets, [1, 5, Infinity]);
  assert.deepEqual(onlyFamily.buckets, [Infinity]);
  // 0.5 -> -8, 1 -> 0, 3 -> 13, 7 -> ceil(2.807 * 8) = 23; -2 -> negative 8.
  const native = {
    schema: 3,
    zeroThreshold: 2 ** -128,
    zeroCount: 0,
    positive: [{ index: -8, count: 1 }, { index: 0, count: 1 }, { index: 13, count: 1 }, {
      index: 23,
      count: 1,
    }],
    negative: [{ index: 8, count: 1 }],
  };
  assert.deepEqual(bothFamily.series, [{ labels: {}, buckets: [3, 4, 5], sum: 9.5, count: 5, native }]);
  assert.deepEqual(onlyFamily.series, [{ labels: {}, buckets: [5], sum: 9.5, count: 5, native }]);

  const text = await generateLatest(registry);
  await assertPromtool(text);
  assert.equal(valueOf(text, "both_seconds_bucket", { le: "1" }), 3, text);
  assert.equal(valueOf(text, "both_seconds_bucket", { le: "5" }), 4, text);
  assert.equal(valueOf(text, "both_seconds_bucket", { le: "+Inf" }), 5, text);
  assert.deepEqual(find(text, "only_seconds_bucket"), [
    { name: "only_seconds_bucket", labels: { le: "+Inf" }, value: 5 },
  ]);
  assert.equal(valueOf(text, "only_seconds_count", {}), 5, text);
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
});

test("native histogram: exemplars on its classic buckets (memory backend), written in OpenMetrics", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "traced_seconds",
    help: "Traced",
    labelNames: ["route"],
    buckets: [1],
    native: true,
    registry,
  });
  h.labels({ route: "/a" }).observe(0.5, { trace_id: "abc" }, 1_700_000_000);
  h.labels({ route: "/a" }).observe(3, { trace_id: "def" }, 1_700_000_001);
  h.labels({ route: "/a" }).observe(0.25);
  const [series] = ((await registry.collect())[0] as HistogramFamily).series;
  assert.deepEqual(series.buckets, [2, 3]);
  assert.deepEqual(series.exemplars, [
    { labels: { trace_id: "abc" }, value: 0.5, timestamp: 1_700_000_000 },
    { labels: { trace_id: "def" }, value: 3, timestamp: 1_700_000_001 },
  ]);
  assert.deepEqual(series.native?.positive, [
    { index: -16, count: 1 },
    { index: -8, count: 1 },
    { index: 13, count: 1 },
  ]);
  const om = await generateLatest(registry, { format: "openmetrics" });
  assert.ok(
    om.includes('traced_seconds_bucket{route="/a",le="1.0"} 2 # {trace_id="abc"} 0.5 1700000000\n'),
    om,
  );
  assert.ok(
    om.includes('traced_seconds_bucket{route="/a",le="+Inf"} 3 # {trace_id="def"} 3 1700000001\n'),
    om,
  );
  await assertOpenMetrics(om);
});

// --- options ------------------------------------------------------------------------------

function assertThrowsNaming(native: unknown, kind: typeof TypeError, option: RegExp): void {
  assert.throws(
    () => new Histogram({ name: "bad", ...NONE, native } as never),
    (error: Error) => {
      assert.ok(error instanceof kind, `${JSON.stringify(native)}: ${error}`);
      assert.match(error.message, option, JSON.stringify(native));
      return true;
    },
  );
}

test("native histogram options are checked at construction, errors naming the option", () => {
  for (const bucketFactor of [1, 0.5, 0, -2, NaN, Infinity, "1.1"]) {
    assertThrowsNaming({ bucketFactor }, RangeError, /^Invalid native\.bucketFactor for histogram "bad"/);
  }
  for (const maxBuckets of [0, -1, 1.5, NaN, "160"]) {
    assertThrowsNaming({ maxBuckets }, RangeError, /^Invalid native\.maxBuckets for histogram "bad"/);
  }
  for (const zeroThreshold of [-1, -Number.MIN_VALUE, NaN, Infinity, "0"]) {
    assertThrowsNaming({ zeroThreshold }, RangeError, /^Invalid native\.zeroThreshold for histogram "bad"/);
  }
  assertThrowsNaming({ factor: 1.1 }, TypeError, /^Unknown option "native\.factor" of histogram "bad"/);
  assertThrowsNaming({ schema: 3 }, TypeError, /"native\.schema"/);
  for (const native of ["yes", 1, null, [1.1]]) {
    assertThrowsNaming(native, TypeError, /^Invalid native for histogram "bad"/);
  }
  // Classic buckets are checked as for a classic histogram.
  assert.throws(
    () => new Histogram({ name: "bad", ...NONE, buckets: [5, 1], native: true }),
    /^RangeError: Invalid buckets for histogram "bad"/,
  );
  // The edges that are allowed.
  for (
    const native of [{ maxBuckets: 1 }, { maxBuckets: Infinity }, { zeroThreshold: 0 }, {
      bucketFactor: 1e300,
    }]
  ) {
    assert.ok(new Histogram({ name: "good", ...NONE, native }) instanceof Histogram);
  }
});

test("native: false is a classic histogram, with no native buckets", async () => {
  const h = new Histogram({ name: "classic", ...NONE, buckets: [1], native: false });
  h.observe(2);
  assert.deepEqual(await seriesOf(h), [{ labels: {}, buckets: [0, 1], sum: 2, count: 1 }]);
});

test("native histogram children keep their own buckets; remove() and reset() drop them", async () => {
  const h = new Histogram({ name: "children", ...NONE, labelNames: ["k"], native: true });
  h.labels({ k: "a" }).observe(1);
  h.labels({ k: "b" }).observe(2);
  h.labels({ k: "b" }).observe(-2);
  const byK = async () => new Map((await seriesOf(h)).map((s) => [s.labels.k, s.native]));
  let native = await byK();
  assert.deepEqual(native.get("a")?.positive, [{ index: 0, count: 1 }]);
  assert.deepEqual([native.get("b")?.positive, native.get("b")?.negative], [[{ index: 8, count: 1 }], [{
    index: 8,
    count: 1,
  }]]);
  assert.equal(h.remove({ k: "a" }), true);
  assert.deepEqual([...(await byK()).keys()], ["b"]);
  h.labels({ k: "a" }).observe(4);
  native = await byK();
  assert.deepEqual(native.get("a")?.positive, [{ index: 16, count: 1 }]);
  h.reset();
  assert.deepEqual(await seriesOf(h), []);
  h.labels({ k: "b" }).observe(0.5);
  native = await byK();
  assert.deepEqual([...native.keys()], ["b"]);
  assert.deepEqual([native.get("b")?.positive, native.get("b")?.negative], [[{ index: -8, count: 1 }], []]);
});

// --- custom collectors --------------------------------------------------------------------

function collecting(families: MetricFamily[]): Registry {
  const registry = new Registry();
  const collector: Collector = { collect: () => families };
  registry.register(collector);
  return registry;
}

const NATIVE: NativeBuckets = {
  schema: 2,
  zeroThreshold: 0.001,
  zeroCount: 1,
  positive: [{ index: -3, count: 2 }, { index: 4, count: 1 }],
  negative: [{ index: 0, count: 1 }],
};

function histogramWith(native: unknown): MetricFamily {
  return {
    name: "custom_seconds",
    help: "Custom",
    type: "histogram",
    buckets: [Infinity],
    series: [{ labels: {}, buckets: [5], sum: 2.5, count: 5, native: native as NativeBuckets }],
  };
}

function summaryWith(quantiles: unknown): MetricFamily {
  return {
    name: "custom_bytes",
    help: "Custom",
    type: "summary",
    series: [{
      labels: {},
      sum: 10,
      count: 4,
      quantiles: quantiles as { quantile: number; value: number }[],
    }],
  };
}

test("custom collectors: native buckets and quantiles that break the rules fail the collection with a TypeError", async () => {
  const bad: [MetricFamily, RegExp][] = [
    [histogramWith({ ...NATIVE, schema: 9 }), /native\.schema must be a whole number from -4 to 8/],
    [histogramWith({ ...NATIVE, schema: -5 }), /native\.schema/],
    [histogramWith({ ...NATIVE, schema: 2.5 }), /native\.schema/],
    [histogramWith({ ...NATIVE, schema: "3" }), /native\.schema/],
    [histogramWith({ ...NATIVE, zeroThreshold: -1 }), /native\.zeroThreshold/],
    [histogramWith({ ...NATIVE, zeroCount: -1 }), /native\.zeroCount/],
    [histogramWith({ ...NATIVE, positive: [{ index: 4, count: 1 }, { index: -3, count: 2 }] }), /ascending/],
    [histogramWith({ ...NATIVE, positive: [{ index: 4, count: 1 }, { index: 4, count: 2 }] }), /once/],
    [histogramWith({ ...NATIVE, negative: [{ index: 1.5, count: 1 }] }), /native\.negative indices/],
    [histogramWith({ ...NATIVE, negative: [{ index: 1, count: -1 }] }), /native\.negative counts/],
    [histogramWith({ ...NATIVE, positive: undefined }), /native\.positive must be an array/],
    [histogramWith("native"), /native must be an object/],
    [summaryWith([{ quantile: 0.9, value: 2 }, { quantile: 0.5, value: 1 }]), /ascending order/],
    [summaryWith([{ quantile: 0.5, value: 1 }, { quantile: 0.5, value: 1 }]), /given once/],
    [summaryWith([{ quantile: 1.5, value: 1 }]), /between 0 and 1/],
    [summaryWith([{ quantile: -0.5, value: 1 }]), /between 0 and 1/],
    [summaryWith([{ quantile: 0.5, value: "1" }]), /number value/],
    [summaryWith([{ quantile: 0.5 }]), /number value/],
    [summaryWith({ 0.5: 1 }), /quantiles must be an array/],
  ];
  for (const [family, message] of bad) {
    await assert.rejects(collecting([family]).collect(), (error: Error) => {
      assert.ok(error instanceof TypeError, String(error));
      assert.match(error.message, /^Invalid family "custom_(seconds|bytes)" from a custom collector: /);
      assert.match(error.message, message);
      return true;
    }, JSON.stringify(family));
  }
});

test("custom collectors: valid native buckets and quantiles are collected as given and written", async () => {
  const quantiles = [{ quantile: 0, value: 1 }, { quantile: 0.5, value: 2.5 }, { quantile: 1, value: NaN }];
  const families = [histogramWith(NATIVE), summaryWith(quantiles)];
  const registry = collecting(families);
  assert.deepEqual(await registry.collect(), families);
  const text = await generateLatest(registry);
  await assertPromtool(text);
  assert.equal(valueOf(text, "custom_bytes", { quantile: "0.5" }), 2.5, text);
  assert.deepEqual(
    find(text, "custom_bytes").map((sample) => [Number(sample.labels.quantile), sample.value]),
    [[0, 1], [0.5, 2.5], [1, NaN]],
  );
  assert.equal(valueOf(text, "custom_seconds_bucket", { le: "+Inf" }), 5, text);
  const parsed = await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  assert.deepEqual(
    parsed[1].samples.filter(([name]) => name === "custom_bytes").map((
      [, labels, value],
    ) => [Object.keys(labels), Number(labels.quantile), value]),
    [[["quantile"], 0, "1.0"], [["quantile"], 0.5, "2.5"], [["quantile"], 1, "NaN"]],
  );
});

test("the bounds within a power of two are the doubles nearest 2 ** (j / 2 ** schema), checked exactly", () => {
  const f64 = new Float64Array(1);
  const bits = new BigUint64Array(f64.buffer);
  for (let schema = 1; schema <= SCHEMA_MAX; schema++) {
    const n = 1 << schema;
    const table = fractions(schema);
    assert.equal(table.length, n + 1);
    assert.equal(table[0], 1);
    assert.equal(table[n], 2);
    for (let j = 1; j < n; j++) {
      // bound = M / 2 ** 52 with M in [2 ** 52, 2 ** 53): the exact 2 ** (j / n) lies between the
      // midpoints to its neighbours, (2M - 1) / 2 ** 53 and (2M + 1) / 2 ** 53, so their n-th powers
      // bracket 2 ** j.
      f64[0] = table[j];
      const m = (bits[0] & ((1n << 52n) - 1n)) | (1n << 52n);
      const target = 1n << BigInt(j + 53 * n);
      const ok = (2n * m - 1n) ** BigInt(n) <= target && target <= (2n * m + 1n) ** BigInt(n);
      assert.ok(ok, `schema ${schema}, j ${j}: ${table[j]} is not the double nearest 2 ** (${j} / ${n})`);
    }
  }
});

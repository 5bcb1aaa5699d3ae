/**
 * Summary quantiles and native histograms: what an `observe()` costs, against a classic theus
 * histogram and against prom-client's Summary, what a series weighs on the heap, and what it
 * costs on Redis (bytes sent per flush, Redis memory per series). Runs on Deno, Bun and Node:
 *
 *   ./node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/quantiles.ts [--quick]
 *   ./node_modules/.bin/bun bench/quantiles.ts [--quick]
 *   node --expose-gc <outDir>/bench/quantiles.js [--quick]   (after tsc; `node bench/run.mjs
 *                                                            --only quantiles` does it all)
 *
 * Observations: 16,384 latencies drawn once from a lognormal distribution (median 50 ms,
 * σ = 1 in log space: p90 180 ms, p99 522 ms, from 0.8 ms to 2.4 s), from a seeded generator,
 * the same array for every side, cycled (`OBSERVED[i & 16383]`): the classic histogram's bucket
 * search and the sketches' bucket lookups see values in random order, as in a server.
 *
 * 1. `observe()` on the memory backend, unlabelled and on a cached labelled child
 *    (`labels({ method, status })` once, outside the loop):
 *    - theus alone, in one timing: a classic `Histogram` (default buckets), a `Summary` with
 *      `quantiles: [0.5, 0.9, 0.99]`, a native `Histogram` (`native: true`), and a native one
 *      with the default classic buckets too. Ratio = variant ÷ classic (lower is better); target
 *      ≤ 3× for the summary and the native histogram.
 *    - against prom-client, in another timing (prom-client's garbage is collected during theus'
 *      rounds too, which can only make theus look slower): theus' summary, prom-client's
 *      `Summary` with `percentiles: [0.5, 0.9, 0.99]` and no window (its default) and with
 *      theus' default window (`maxAgeSeconds: 600, ageBuckets: 5`), theus' classic histogram and
 *      prom-client's `Histogram`. Ratio = prom-client ÷ theus (higher is better); target ≥ 5× for
 *      the summary, against the faster of prom-client's two summaries.
 *    `timeSides()` of bench/_harness.ts: every side runs the same batches (so the same values in
 *    the same order), in rounds whose order alternates; the median of the rounds.
 * 2. Heap per series (needs a GC: `--expose-gc`), as bench/bench.ts measures it: the heap's growth
 *    while 100 labelled series (--quick: 20), each given 10,000 observations, are added to a
 *    registry that holds the metric already, checked against what dropping the registry releases
 *    (less what the empty one took); the smallest of two consistent runs, after a first build of
 *    5 series that compiles the code (compiled code is on the heap too). theus' summary beside
 *    prom-client's Summary (ratio prom-client ÷ theus); theus' native histogram beside theus'
 *    classic one (ratio native ÷ classic), prom-client's Histogram shown for scale. The summaries
 *    once more with each series' observations spread over 10 minutes (`Date.now()` stubbed while
 *    the series are filled, see overTime()): the state of a window of 600 s in 5 slices in a
 *    server that has been observing for that long, each slice holding buckets of its own.
 * 3. Redis (a real redis-server started on a free loopback port, as bench/remote.ts does): the
 *    Redis backend is given an ioredis client wrapped so that every script call is measured
 *    before it is passed on (the backend's `client` option). Bytes per flush = the UTF-8 bytes of
 *    the flush's EVALSHA arguments (KEYS and ARGV; the SHA and the key count left out); the RESP
 *    bytes of the whole command (what goes on the socket) are shown beside them. One series, 1,000
 *    observations, then a flush; then 1,000 more and another flush. Redis memory per series =
 *    `MEMORY USAGE <metric hash> SAMPLES 0` (every field counted), summed over the metric's hashes
 *    in its shards (its last-write indexes, the same for every kind, left out) ÷ 100 series
 *    (--quick: 20) of 1,000 observations each; for the summary also with the observations spread
 *    over 10 minutes, as above. Summary and native histogram ÷ classic histogram (lower is better).
 *
 * Sanity checks (the exit code is non-zero when one fails): every side counted every
 * observation; the native histograms' sum equals the classic one's, and the classic buckets of
 * the native histogram equal the classic histogram's; theus' quantiles are within 1.5 % of the
 * exact quantiles of the observed values; prom-client's counts agree; what was read back from
 * Redis holds the counts written. A missed target is reported, never fatal.
 *
 * @module
 */

import client from "prom-client";
import { Redis as IoRedis } from "ioredis";
import {
  DEFAULT_BUCKETS,
  flush,
  Histogram,
  type HistogramSeries,
  loadBackend,
  type MetricFamily,
  Registry,
  Summary,
  type SummarySeries,
} from "../mod.ts";
import { RedisBackend, type RedisClientLike } from "../backends/redis.ts";
import { metricKey, SHARDS } from "../backends/_remote/layout.ts";
import { startRedis } from "../tests/_redis.ts";
import {
  ARGS,
  detectRuntime,
  fmt,
  type PairResult,
  type Runtime,
  settle,
  type Side,
  sink,
  timeSides,
  type TimingOptions,
} from "./_harness.ts";
import {
  atMost,
  check,
  exitProcess,
  failures,
  familyOf,
  infoRow,
  notes,
  printReport,
  rows,
} from "./_report.ts";

const quick = ARGS.includes("--quick");
const runtime: Runtime = detectRuntime();

/** theus' sides alone: a few tens of ns each, ~1M observations per round. */
const THEUS_TIMING: TimingOptions = quick
  ? { roundMs: 15, rounds: 5, warmupRounds: 1 }
  : { roundMs: 40, rounds: 21, warmupRounds: 3 };
/** Against prom-client: rounds sized on its windowed summary (~2 µs), so theus' get 5-10 ms. */
const PROM_TIMING: TimingOptions = quick
  ? { roundMs: 60, rounds: 5, warmupRounds: 1 }
  : { roundMs: 250, rounds: 11, warmupRounds: 2 };
const HEAP_SERIES = quick ? 20 : 100;
const HEAP_OBSERVATIONS = 10_000;
const REDIS_OBSERVATIONS = 1_000;
const REDIS_SERIES = quick ? 20 : 100;

const QUANTILES = [0.5, 0.9, 0.99];
const LABEL_NAMES = ["method", "status"];
const GET_200 = { method: "GET", status: "200" };

// ---------------------------------------------------------------------------------------------
// The observations

const SIZE = 1 << 14;
const MASK = SIZE - 1;

/** mulberry32: a small seeded generator, the same numbers on every runtime. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Lognormal latencies in seconds: median 50 ms, σ = 1 (Box-Muller). */
const OBSERVED: Float64Array = (() => {
  const random = generator(20261201);
  const out = new Float64Array(SIZE);
  for (let i = 0; i < SIZE; i++) {
    const u = 1 - random(); // (0, 1]
    const v = random();
    out[i] = 0.05 * Math.exp(Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v));
  }
  return out;
})();

/** The exact value of rank `q * (n - 1)` among the observed values, as theus defines a quantile. */
function exactQuantiles(values: Float64Array, ranks: readonly number[]): number[] {
  const sorted = Float64Array.from(values).sort();
  return ranks.map((q) => sorted[Math.floor(q * (sorted.length - 1))]);
}
const EXACT = exactQuantiles(OBSERVED, QUANTILES);

// ---------------------------------------------------------------------------------------------
// Rows

/** A row whose ratio should be at least `min` (prom-client ÷ theus); no target without one. */
function atLeast(name: string, theus: string, baseline: string, ratio: number, min?: number): void {
  rows.push({
    case: name,
    theus,
    baseline,
    ratio,
    target: min === undefined ? "-" : `>= ${min}x`,
    status: min === undefined ? "-" : ratio >= min ? "met" : "MISSED",
  });
}

const bytes = (n: number) => fmt(n, "B");

// ---------------------------------------------------------------------------------------------
// 1. observe()

/** An observer: what the loops call (a theus metric or child, a prom-client child). */
interface Observes {
  observe(value: number): void;
}

// The timed loops are written out one per side, as in bench/bench.ts: closures made by one shared
// helper would share one call site for `observe()`, which would see every side's class and stop
// being inlined (megamorphic), slowing every side by the others' presence.

// deno-lint-ignore no-explicit-any
type PromMetric = any;

/** The four theus metrics, in a registry of their own, labelled or not. */
function theusMetrics(labelled: boolean) {
  const registry = new Registry();
  const labelNames = labelled ? LABEL_NAMES : [];
  const make = {
    classic: new Histogram({ name: "classic_seconds", help: "h", labelNames, registry }),
    summary: new Summary({ name: "summary_seconds", help: "h", labelNames, quantiles: QUANTILES, registry }),
    native: new Histogram({ name: "native_seconds", help: "h", labelNames, native: true, registry }),
    both: new Histogram({
      name: "both_seconds",
      help: "h",
      labelNames,
      native: true,
      buckets: DEFAULT_BUCKETS,
      registry,
    }),
  };
  const pick = <T extends { labels(l: typeof GET_200): T }>(m: T): T => labelled ? m.labels(GET_200) : m;
  return {
    registry,
    classic: pick(make.classic),
    summary: pick(make.summary),
    native: pick(make.native),
    both: pick(make.both),
  };
}

async function histogramOf(registry: Registry, name: string): Promise<HistogramSeries> {
  return familyOf(await registry.collect(), name)!.series[0] as HistogramSeries;
}
async function summaryOf(registry: Registry, name: string): Promise<SummarySeries> {
  return familyOf(await registry.collect(), name)!.series[0] as SummarySeries;
}

/** Checks theus' quantiles against the exact ones of the observed values. */
function checkQuantiles(what: string, series: SummarySeries): void {
  const got = series.quantiles?.map((q) => q.value) ?? [];
  check(`${what}: quantiles given`, got.length, QUANTILES.length);
  for (let i = 0; i < QUANTILES.length; i++) {
    check(`${what}: quantile ${QUANTILES[i]} (exact ${EXACT[i].toPrecision(6)})`, got[i], EXACT[i], 0.015);
  }
}

async function observeTheus(labelled: boolean): Promise<void> {
  const t = theusMetrics(labelled);
  const sides: Side[] = [
    {
      lib: "theus",
      label: "classic",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.classic.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "theus",
      label: "summary",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.summary.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "theus",
      label: "native",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.native.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "theus",
      label: "native + classic",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.both.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
  ];
  const result: PairResult = timeSides(sides, THEUS_TIMING);
  const [classic, summary, native, both] = result.nsPerOp;
  const where = labelled ? "labelled child" : "unlabelled";
  const base = `${fmt(classic, "ns")} classic`;
  infoRow(`observe() ${where}: classic histogram, 12 buckets`, fmt(classic, "ns"));
  atMost(
    `observe() ${where}: summary, 3 quantiles ÷ classic`,
    fmt(summary, "ns"),
    base,
    summary / classic,
    3,
  );
  atMost(`observe() ${where}: native histogram ÷ classic`, fmt(native, "ns"), base, native / classic, 3);
  atMost(`  native + 12 classic buckets ÷ classic`, fmt(both, "ns"), base, both / classic);

  // Every side recorded every observation, the same values.
  const c = await histogramOf(t.registry, "classic_seconds");
  const s = await summaryOf(t.registry, "summary_seconds");
  const n = await histogramOf(t.registry, "native_seconds");
  const b = await histogramOf(t.registry, "both_seconds");
  check(`${where}: classic count`, c.count, result.totalOps);
  check(`${where}: summary count`, s.count, result.totalOps);
  check(`${where}: native count`, n.count, result.totalOps);
  check(`${where}: native + classic count`, b.count, result.totalOps);
  check(`${where}: summary sum`, s.sum, c.sum);
  check(`${where}: native sum`, n.sum, c.sum);
  check(`${where}: native + classic buckets`, b.buckets, c.buckets);
  const nativeTotal = (n.native?.positive ?? []).reduce((sum, bucket) => sum + bucket.count, 0) +
    (n.native?.zeroCount ?? 0);
  check(`${where}: native buckets' total`, nativeTotal, result.totalOps);
  checkQuantiles(`${where} summary`, s);
  if (!labelled) {
    notes.push(
      `native histogram (bucketFactor 1.1): schema ${n.native?.schema}, ${n.native?.positive.length} ` +
        `buckets in use for ${SIZE} distinct values`,
    );
  }
}

async function observeProm(labelled: boolean): Promise<void> {
  const t = theusMetrics(labelled);
  const registers: client.Registry[] = [new client.Registry()];
  const labelNames = labelled ? LABEL_NAMES : [];
  const pick = (m: PromMetric): Observes => labelled ? m.labels({ ...GET_200 }) : m;
  const pSummary = new client.Summary({
    name: "p_summary_seconds",
    help: "h",
    labelNames,
    percentiles: QUANTILES,
    registers,
  });
  const pWindowed = new client.Summary({
    name: "p_windowed_seconds",
    help: "h",
    labelNames,
    percentiles: QUANTILES,
    maxAgeSeconds: 600,
    ageBuckets: 5,
    registers,
  });
  const pHistogram = new client.Histogram({ name: "p_histogram_seconds", help: "h", labelNames, registers });
  const promSummary = pick(pSummary);
  const promWindowed = pick(pWindowed);
  const promHistogram = pick(pHistogram);
  const sides: Side[] = [
    {
      lib: "theus",
      label: "summary",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.summary.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "prom-client",
      label: "Summary",
      loop: (n) => {
        for (let i = 0; i < n; i++) promSummary.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "prom-client",
      label: "Summary, window",
      loop: (n) => {
        for (let i = 0; i < n; i++) promWindowed.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "theus",
      label: "classic",
      loop: (n) => {
        for (let i = 0; i < n; i++) t.classic.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
    {
      lib: "prom-client",
      label: "Histogram",
      loop: (n) => {
        for (let i = 0; i < n; i++) promHistogram.observe(OBSERVED[i & MASK]);
        return n;
      },
    },
  ];
  const result: PairResult = timeSides(sides, PROM_TIMING);
  const [summary, promPlain, promWindow, classic, promHist] = result.nsPerOp;
  const where = labelled ? "labelled child" : "unlabelled";
  const best = Math.min(promPlain, promWindow);
  atLeast(
    `observe() ${where}: summary vs prom-client Summary, percentiles`,
    fmt(summary, "ns"),
    `${fmt(promPlain, "ns")} prom-client`,
    promPlain / summary,
    promPlain === best ? 5 : undefined,
  );
  atLeast(
    `  vs prom-client Summary, maxAgeSeconds 600, ageBuckets 5`,
    fmt(summary, "ns"),
    `${fmt(promWindow, "ns")} prom-client`,
    promWindow / summary,
    promWindow === best && promWindow !== promPlain ? 5 : undefined,
  );
  atLeast(
    `  classic histogram vs prom-client Histogram (for scale)`,
    fmt(classic, "ns"),
    `${fmt(promHist, "ns")} prom-client`,
    promHist / classic,
  );

  const s = await summaryOf(t.registry, "summary_seconds");
  check(`${where} vs prom: summary count`, s.count, result.totalOps);
  checkQuantiles(`${where} vs prom: summary`, s);
  const promValues = async (m: PromMetric) =>
    (await m.get()).values as { metricName?: string; labels: Record<string, unknown>; value: number }[];
  for (const [name, metric] of [["Summary", pSummary], ["Summary, window", pWindowed]] as const) {
    const values = await promValues(metric);
    const count = values.find((v) => v.metricName?.endsWith("_count"))?.value;
    check(`${where}: prom-client ${name} count`, count, result.totalOps);
    if (!labelled) {
      const q = QUANTILES.map((rank) => values.find((v) => v.labels.quantile === rank)?.value ?? NaN);
      notes.push(
        `quantiles 0.5 / 0.9 / 0.99: exact ${EXACT.map((v) => v.toPrecision(4)).join(" / ")}; ` +
          `theus ${s.quantiles!.map((v) => v.value.toPrecision(4)).join(" / ")}; ` +
          `prom-client ${name} ${q.map((v) => v.toPrecision(4)).join(" / ")}`,
      );
    }
  }
  const h = await histogramOf(t.registry, "classic_seconds");
  const hv = await promValues(pHistogram);
  check(
    `${where}: prom-client Histogram buckets`,
    hv.filter((v) => v.metricName?.endsWith("_bucket")).map((v) => v.value),
    h.buckets,
  );
}

// ---------------------------------------------------------------------------------------------
// 2. Heap per series

/** A registry with one metric and no series yet, and how to give it series. */
interface Built {
  registry: object;
  fill(n: number): void;
}

// Heap growth per series while the series are added to a registry that holds the metric
// already (with only 100 series, the registry's and the metric's own few kB would otherwise
// weigh on the small figures), and the heap released when the whole registry is dropped, less
// what the empty one took; runs where the two disagree by more than 10 % are discarded
// (bench/bench.ts' method).
function heapPerSeries(make: () => Built): { grew: number; released: number } {
  settle(runtime);
  const nothing = runtime.heapUsed();
  let built: Built | undefined = make();
  settle(runtime);
  const empty = runtime.heapUsed();
  built.fill(HEAP_SERIES);
  settle(runtime);
  const full = runtime.heapUsed();
  if (typeof built.registry !== "object") throw new Error("unreachable"); // live while the heap is read
  built = undefined;
  settle(runtime);
  const dropped = runtime.heapUsed();
  return {
    grew: (full - empty) / HEAP_SERIES,
    released: (full - dropped - (empty - nothing)) / HEAP_SERIES,
  };
}

// The smallest consistent figure of a few runs, after one run of a few series that compiles
// the code the build runs (compiled code is on the heap too); NaN when no run was consistent.
function bytesPerSeries(make: () => Built): number {
  make().fill(5);
  const good: number[] = [];
  for (let run = 0; run < 6 && good.length < 2; run++) {
    const { grew, released } = heapPerSeries(make);
    if (grew > 0 && Math.abs(grew - released) <= 0.1 * grew) good.push(grew);
  }
  return good.length > 0 ? Math.min(...good) : NaN;
}

// Label values created once and shared by every build, as bench/bench.ts does.
const M100 = Array.from({ length: 100 }, (_, i) => `M${i}`);
const S100 = Array.from({ length: 100 }, (_, i) => `S${String(i).padStart(2, "0")}`);
const labelsOf = (i: number) => ({ method: M100[i % 100], status: S100[Math.floor(i / 100) % 100] });

/** 10,000 observations for series `i`: a stretch of the observed values that starts at its own place. */
function feed(target: Observes, i: number, count = HEAP_OBSERVATIONS): void {
  const start = (i * 7919) & MASK;
  for (let j = 0; j < count; j++) target.observe(OBSERVED[(start + j) & MASK]);
}

/** How long the observations of one series take in the "over 10 minutes" builds: the window. */
const SPREAD_MS = 600_000;
/** A slice of that window: maxAgeSeconds ÷ ageBuckets, 600 s ÷ 5. */
const SLICE_MS = 120_000;

/**
 * Fills a registry with `Date.now()` stubbed so that each series' 10,000 observations are 60 ms
 * apart, 10 minutes in all: a window of 600 s in 5 slices then holds a slice's worth of buckets 5
 * times over, as it does in a server that has been observing for 10 minutes (theus' summary and
 * prom-client's windowed one both read the clock through `Date.now()`). The clock is restored
 * before the heap is read.
 */
function overTime(
  observe: (i: number, at: (j: number) => void) => void,
  count = HEAP_OBSERVATIONS,
): (n: number) => void {
  return (n) => {
    const real = Date.now;
    // From the start of a slice (theus' slices start at multiples of 120 s, Unix time): the 10
    // minutes fill 5 slices exactly, all still in the window at the end, whatever the real time.
    const start = Math.ceil(real() / SLICE_MS) * SLICE_MS;
    let now = start;
    Date.now = () => now;
    try {
      for (let i = 0; i < n; i++) observe(i, (j) => (now = start + (j * SPREAD_MS) / count));
    } finally {
      Date.now = real;
    }
  };
}

/** As {@linkcode feed}, the clock set before each observation. */
function feedOverTime(target: Observes, i: number, at: (j: number) => void, count = HEAP_OBSERVATIONS): void {
  const start = (i * 7919) & MASK;
  for (let j = 0; j < count; j++) {
    at(j);
    target.observe(OBSERVED[(start + j) & MASK]);
  }
}

function heap(): void {
  const name = (what: string) => `heap per ${what} series, ${HEAP_OBSERVATIONS / 1000}k observations`;
  if (runtime.gc === undefined) {
    infoRow(`${name("summary")}: no gc, run with --expose-gc`, "n/a");
    return;
  }
  const fill = (m: PromMetric, spread: boolean) =>
    spread ? overTime((i, at) => feedOverTime(m.labels(labelsOf(i)), i, at)) : (n: number) => {
      for (let i = 0; i < n; i++) feed(m.labels(labelsOf(i)), i);
    };
  const theus = (options: Record<string, unknown>, spread = false) => (): Built => {
    const registry = new Registry();
    const m = options.quantiles !== undefined
      ? new Summary({ name: "heap_seconds", help: "h", labelNames: LABEL_NAMES, registry, ...options })
      : new Histogram({ name: "heap_seconds", help: "h", labelNames: LABEL_NAMES, registry, ...options });
    return { registry, fill: fill(m, spread) };
  };
  const prom = (make: (registers: client.Registry[]) => PromMetric, spread = false) => (): Built => {
    const registry = new client.Registry();
    return { registry, fill: fill(make([registry]), spread) };
  };
  const promSummary = (window: boolean, spread = false) =>
    prom((registers) =>
      new client.Summary({
        name: "heap_seconds",
        help: "h",
        labelNames: LABEL_NAMES,
        percentiles: QUANTILES,
        registers,
        ...(window ? { maxAgeSeconds: 600, ageBuckets: 5 } : {}),
      }), spread);
  const figures = {
    summary: bytesPerSeries(theus({ quantiles: QUANTILES })),
    native: bytesPerSeries(theus({ native: true })),
    both: bytesPerSeries(theus({ native: true, buckets: DEFAULT_BUCKETS })),
    classic: bytesPerSeries(theus({})),
    promSummary: bytesPerSeries(promSummary(false)),
    promWindowed: bytesPerSeries(promSummary(true)),
    summarySpread: bytesPerSeries(theus({ quantiles: QUANTILES }, true)),
    promWindowedSpread: bytesPerSeries(promSummary(true, true)),
    promHistogram: bytesPerSeries(
      prom((registers) =>
        new client.Histogram({ name: "heap_seconds", help: "h", labelNames: LABEL_NAMES, registers })
      ),
    ),
  };
  for (const [what, value] of Object.entries(figures)) {
    if (Number.isNaN(value)) failures.push(`heap (${what}): no consistent measurement`);
  }
  const n = `(N=${HEAP_SERIES})`;
  atLeast(
    `${name("summary")}, 3 quantiles ${n}`,
    bytes(figures.summary),
    `${bytes(figures.promSummary)} prom-client`,
    figures.promSummary / figures.summary,
  );
  atLeast(
    `  vs prom-client Summary, maxAgeSeconds 600, ageBuckets 5`,
    bytes(figures.summary),
    `${bytes(figures.promWindowed)} prom-client`,
    figures.promWindowed / figures.summary,
  );
  atLeast(
    `${name("summary")} over 10 min (5 slices), 3 quantiles ${n}`,
    bytes(figures.summarySpread),
    `${bytes(figures.promWindowedSpread)} prom-client`,
    figures.promWindowedSpread / figures.summarySpread,
  );
  atLeast(
    `  vs prom-client Summary, no window (time plays no part)`,
    bytes(figures.summarySpread),
    `${bytes(figures.promSummary)} prom-client`,
    figures.promSummary / figures.summarySpread,
  );
  atMost(
    `${name("native histogram")} ${n}`,
    bytes(figures.native),
    `${bytes(figures.classic)} classic`,
    figures.native / figures.classic,
  );
  atMost(
    `  native + 12 classic buckets`,
    bytes(figures.both),
    `${bytes(figures.classic)} classic`,
    figures.both / figures.classic,
  );
  atLeast(
    `  classic histogram vs prom-client Histogram (for scale)`,
    bytes(figures.classic),
    `${bytes(figures.promHistogram)} prom-client`,
    figures.promHistogram / figures.classic,
  );
}

// ---------------------------------------------------------------------------------------------
// 3. Redis: bytes per flush, memory per series

/** One script call as the wrapped client saw it. */
interface Call {
  flush: boolean;
  /** UTF-8 bytes of KEYS and ARGV. */
  argBytes: number;
  /** RESP bytes of the whole command. */
  respBytes: number;
  /** The flush's changes that write a field (index writes and trims left out); 0 for another script. */
  changes: number;
  /** The last such change (key index, op, field, value), as sent. */
  last: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const utf8 = (text: string) => encoder.encode(text).length;
const bulk = (length: number) => `$${length}\r\n`.length + length + 2;

/** An ioredis client whose script calls are measured before they are passed on. */
function measuredClient(io: IoRedis): RedisClientLike & { calls: Call[] } {
  const calls: Call[] = [];
  // Arguments as one array, as the backend's own transport passes them (ioredis flattens it): a
  // flush of 100 summary series has 140,000 of them, too many to spread into a call on V8.
  const passed = io as unknown as RedisClientLike;
  // A flush's changes come as bytes (Buffers of their UTF-8 text), the rest as strings.
  const measure = (
    command: string,
    first: string,
    numKeys: number,
    given: readonly (string | Uint8Array)[],
  ) => {
    const args = given.map((arg) => typeof arg === "string" ? arg : decoder.decode(arg));
    let argBytes = 0;
    let respBytes = `*${3 + args.length}\r\n`.length + bulk(command.length) + bulk(utf8(first)) +
      bulk(String(numKeys).length);
    for (const arg of given) {
      const n = typeof arg === "string" ? utf8(arg) : arg.length;
      argBytes += n;
      respBytes += bulk(n);
    }
    // The flush script's KEYS[1] is the first batch's marker (this process's last batch applied in
    // the batch's shard). ARGV[7] is the batch count; then per batch its first key, sequence
    // number, "known" flag and its changes as one text, 4 parts each, each ended by a line feed
    // (see scripts.ts).
    const flush = numKeys >= 2 && args[0].includes(":applied:");
    let changes = 0;
    let last = "";
    if (flush) {
      const argv = args.slice(numKeys);
      let pos = 7;
      for (let b = 0; b < Number(argv[6]); b++, pos += 4) {
        const parts = argv[pos + 3].split("\n");
        for (let c = 0; c + 4 < parts.length; c += 4) {
          if (parts[c + 1] === "t" || parts[c + 1] === "e") continue;
          changes++;
          last = parts.slice(c, c + 4).join(" ");
        }
      }
    }
    calls.push({ flush, argBytes, respBytes, changes, last });
  };
  return {
    calls,
    evalsha(sha, numKeys, args) {
      measure("EVALSHA", sha, numKeys, args);
      return passed.evalsha(sha, numKeys, args);
    },
    eval(source, numKeys, args) {
      measure("EVAL", source, numKeys, args);
      return passed.eval(source, numKeys, args);
    },
  };
}

/**
 * A metric's hashes in the shards that hold one: their memory (`MEMORY USAGE ... SAMPLES 0`,
 * every field counted), their fields, and their encodings (a set, joined by "/").
 */
async function metricHashes(
  io: IoRedis,
  prefix: string,
  name: string,
): Promise<{ memory: number; fields: number; encoding: string }> {
  let memory = 0;
  let fields = 0;
  const encodings = new Set<string>();
  for (let shard = 0; shard < SHARDS; shard++) {
    const key = metricKey(prefix, name, shard);
    const n = await io.hlen(key);
    if (n === 0) continue;
    memory += Number(await io.call("memory", "usage", key, "samples", "0"));
    fields += n;
    encodings.add(String(await io.call("object", "encoding", key)));
  }
  return { memory, fields, encoding: [...encodings].sort().join("/") };
}

type Kind = "classic" | "summary" | "native";

function remoteMetric(kind: Kind, name: string, registry: Registry) {
  const common = { name, help: "h", labelNames: LABEL_NAMES, registry };
  if (kind === "summary") return new Summary({ ...common, quantiles: QUANTILES });
  return new Histogram({ ...common, ...(kind === "native" ? { native: true } : {}) });
}

async function redis(): Promise<void> {
  const server = await startRedis();
  const io = new IoRedis({ port: server.port, host: "127.0.0.1" });
  const version = (await server.cli("info", "server")).match(/^redis_version:(.*)$/m)?.[1]?.trim();
  const measured = measuredClient(io);
  try {
    const figures = new Map<
      Kind,
      {
        first: Call;
        next: Call;
        memory: number;
        fields: number;
        encoding: string;
        spread?: { memory: number; fields: number };
      }
    >();
    for (const kind of ["classic", "summary", "native"] as const) {
      const prefix = `bench-q-${kind}`;
      await loadBackend({
        backend: RedisBackend,
        config: { client: measured, keyPrefix: prefix, flushIntervalMs: 0 },
      });
      const registry = new Registry();
      const one = remoteMetric(kind, "one_seconds", registry);
      const child = one.labels(GET_200);
      await flush(); // the series' creation
      const flushes = async (): Promise<Call> => {
        measured.calls.length = 0;
        await flush();
        const sent = measured.calls.filter((c) => c.flush);
        check(`redis ${kind}: flush script calls`, sent.length, 1);
        return sent[0] ?? { flush: true, argBytes: NaN, respBytes: NaN, changes: NaN, last: "" };
      };
      feed(child, 0, REDIS_OBSERVATIONS);
      const first = await flushes();
      feed(child, 1, REDIS_OBSERVATIONS);
      const next = await flushes();

      // Memory: 100 series of 1,000 observations each, in hashes of their own (one per shard).
      const many = remoteMetric(kind, "many_seconds", registry);
      for (let i = 0; i < REDIS_SERIES; i++) feed(many.labels(labelsOf(i)), i, REDIS_OBSERVATIONS);
      await flush();
      const { memory: usage, fields, encoding } = await metricHashes(io, prefix, "many_seconds");
      // A summary's window over 10 minutes: 5 slices of buckets per series (see overTime()).
      let spread: { memory: number; fields: number } | undefined;
      if (kind === "summary") {
        const timed = remoteMetric(kind, "spread_seconds", registry);
        overTime(
          (i, at) => feedOverTime(timed.labels(labelsOf(i)), i, at, REDIS_OBSERVATIONS),
          REDIS_OBSERVATIONS,
        )(REDIS_SERIES);
        await flush();
        const hashes = await metricHashes(io, prefix, "spread_seconds");
        spread = { memory: hashes.memory / REDIS_SERIES, fields: hashes.fields / REDIS_SERIES };
      }
      figures.set(kind, {
        first,
        next,
        memory: usage / REDIS_SERIES,
        fields: fields / REDIS_SERIES,
        encoding,
        spread,
      });

      // Read back through the backend: every observation is there.
      const families: MetricFamily[] = await registry.collect();
      const counts = (name: string) =>
        (familyOf(families, name)?.series ?? []).map((s) => (s as HistogramSeries | SummarySeries).count);
      check(`redis ${kind}: one series' count`, counts("one_seconds"), [2 * REDIS_OBSERVATIONS]);
      for (const name of kind === "summary" ? ["many_seconds", "spread_seconds"] : ["many_seconds"]) {
        check(
          `redis ${kind}: ${name} series' counts`,
          counts(name),
          Array.from({ length: REDIS_SERIES }, () => REDIS_OBSERVATIONS),
        );
      }
    }
    const classic = figures.get("classic")!;
    for (const kind of ["classic", "summary", "native"] as const) {
      const f = figures.get(kind)!;
      const label = kind === "classic"
        ? "classic histogram"
        : kind === "summary"
        ? "summary, 3 quantiles"
        : "native histogram";
      const base = (value: number, unit: string) => `${fmt(value, unit)} classic`;
      if (kind === "classic") {
        infoRow(
          `redis flush of 1 series, ${REDIS_OBSERVATIONS} observations: ${label}`,
          bytes(f.first.argBytes),
        );
      } else {
        atMost(
          `redis flush of 1 series, ${REDIS_OBSERVATIONS} observations: ${label}`,
          bytes(f.first.argBytes),
          base(classic.first.argBytes, "B"),
          f.first.argBytes / classic.first.argBytes,
        );
      }
      infoRow(
        `  RESP bytes of the whole EVALSHA (changes: fields written)`,
        `${bytes(f.first.respBytes)} (${f.first.changes} changes)`,
        `${bytes(classic.first.respBytes)} (${classic.first.changes})`,
      );
      infoRow(
        `  the next flush, ${REDIS_OBSERVATIONS} more observations: KEYS + ARGV bytes (changes)`,
        `${bytes(f.next.argBytes)} (${f.next.changes} changes)`,
        `${bytes(classic.next.argBytes)} (${classic.next.changes})`,
      );
      if (kind === "classic") {
        infoRow(`redis memory per series (${REDIS_SERIES} series): ${label}`, bytes(f.memory));
      } else {
        atMost(
          `redis memory per series (${REDIS_SERIES} series): ${label}`,
          bytes(f.memory),
          base(classic.memory, "B"),
          f.memory / classic.memory,
        );
      }
      infoRow(`  hash fields per series`, f.fields.toFixed(1), classic.fields.toFixed(1));
      if (f.spread !== undefined) {
        atMost(
          `redis memory per series (${REDIS_SERIES} series): ${label}, over 10 min (5 slices)`,
          bytes(f.spread.memory),
          base(classic.memory, "B"),
          f.spread.memory / classic.memory,
        );
        infoRow(`  hash fields per series`, f.spread.fields.toFixed(1), classic.fields.toFixed(1));
      }
    }
    const limits = (await io.call("config", "get", "hash-max-listpack-*")) as string[];
    notes.push(
      `redis-server ${version} (${limits.join(" ")}); hash encodings: ${
        [...figures].map(([kind, f]) => `${kind} ${f.encoding}`).join(", ")
      }`,
    );
    for (const [kind, f] of figures) {
      notes.push(`redis ${kind}: a change as sent (key index, op, field, value): ${f.first.last}`);
    }
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
    io.disconnect();
    await server.stop();
  }
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
console.log(`theus summary quantiles and native histograms — ${runtime.version}${quick ? " — quick" : ""}`);
try {
  // Timings first, while only the memory backend's classes have been seen by the engine; the
  // heap next, while the heap holds little else; Redis last.
  await observeTheus(false);
  await observeTheus(true);
  await observeProm(false);
  await observeProm(true);
  heap();
  await redis();
} catch (error) {
  failures.push(
    `the benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
  );
}
printReport({
  runtime,
  kind: "quantiles",
  quick,
  ratios: `ratio: "÷ classic" rows = theus variant / theus classic histogram (lower is better); ` +
    `"vs prom-client" rows = prom-client / theus (higher is better)`,
  elapsedMs: performance.now() - started,
  sane: "every side counted every observation; theus' quantiles within 1.5 % of the exact ones; " +
    "Redis holds every count",
  sink,
});
exitProcess();

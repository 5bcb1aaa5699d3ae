// Quantiles and native histograms of a fleet: three writer processes, one on Deno, one on Bun,
// one on Node (from the build in dist/), each observe one third of the same deterministic
// samples (tests/_quantile_writer.ts) into one Summary (quantiles 0.5, 0.9, 0.99, 0.999) and
// one native Histogram (client_golang's defaults: schema 3, at most 160 buckets), on one real
// redis-server, then through the Upstash REST bridge (the real @upstash/redis client) over
// another, and flush. This process then reads the union back, as any process of the fleet
// would, and checks it against what it computes from the samples itself:
//
// - each quantile within 1 % of the exact one, sorted[Math.floor(q * (n - 1))] of all samples
//   (the summary keeps schema-6 buckets: 0.54 % at most);
// - the summary's and the histogram's count exact, their sum within float rounding;
// - the native histogram's schema, zero count and every bucket count exact, against the bucket
//   indices of tests/_exponential_reference.ts (a logarithm, then the bounds decide; the bounds
//   are 2 ** (j / 2 ** schema) rounded to nearest, each checked exactly in BigInt arithmetic).
//   Each process reduces its own schema when its buckets pass 160, so the union comes at the
//   coarsest schema of the three: computed here too.
//
// And what prom-client's cluster mode reports for the same fleet, which must miss by far.
//
// The samples: the Deno writer gets a lognormal third (median 50 ms), the Bun writer a bimodal
// one (80 % near 20 ms, 20 % near 1.5 s), the Node writer a uniform one on [-0.5, 4) with exact
// zeros and exact powers of two (a value on a bound belongs to the bucket below it). The fleet's
// p99 is none of the three processes' p99.
//
// A last test checks that a value on a bucket bound, or one double away from it, goes to the
// same bucket on every runtime. It fails on Node 20: core/_exponential.ts takes the bounds from
// Math.pow(2, j / 2 ** schema), which V8 in Node 20.20 rounds the other way than Deno 2.9 and
// Bun 1.4 (whose results are the nearest doubles) for 64 of the 510 fractions of schemas 1 to 8,
// so the processes of one fleet put such values in different buckets.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AggregatorRegistry } from "prom-client";
import { loadBackend, type MetricFamily, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { UpstashBackend } from "../../backends/upstash.ts";
import type { HistogramFamily, NativeBuckets, SummaryFamily } from "../../core/types.ts";
import {
  bound,
  finalSchema,
  nativeOf,
  nextDown,
  nextUp,
  normal,
  type ReferenceBuckets,
  TABLES,
  uniform,
  writeSamples,
  ZERO_THRESHOLD,
} from "../_exponential_reference.ts";
import { test } from "../_harness.ts";
import {
  BOUNDS,
  type BoundsReport,
  defineQuantileMetrics,
  NATIVE,
  partOf,
  type PromClientJson,
  QUANTILES,
  SUMMARY,
  type WriterReport,
} from "../_quantile_writer.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import { childCommand, ROOT } from "../_root.ts";
import { type Child, killProcess, startProcess, waitUntil } from "../_servers.ts";
import { startUpstashBridge, type UpstashBridge } from "../_upstash_bridge.ts";

type Runtime = "deno" | "bun" | "node";
const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];
const WRITER = "tests/_quantile_writer.ts";
/** Samples per writer. */
const PER_PART = 250_000;
/** The native histogram's defaults (client_golang's): bucket factor 1.1, 160 buckets. */
const NATIVE_SCHEMA = 3;
const NATIVE_MAX_BUCKETS = 160;
/** The most a quantile of the union may miss the exact one by. */
const QUANTILE_TOLERANCE = 0.01;
/** The least prom-client's cluster mode is expected to miss the union's p99 by. */
const PROM_CLIENT_MISS = 0.05;

// ---------------------------------------------------------------------------------------------
// The samples.

/**
 * The samples, in three contiguous parts: lognormal, bimodal, uniform, computed here once and
 * handed to the writers as a file.
 */
function makeSamples(): Float64Array {
  const out = new Float64Array(3 * PER_PART);
  const u = uniform(20240601);
  for (let i = 0; i < PER_PART; i++) out[i] = Math.exp(Math.log(0.05) + 0.8 * normal(u));
  for (let i = 0; i < PER_PART; i++) {
    out[PER_PART + i] = u() < 0.8
      ? Math.exp(Math.log(0.02) + 0.25 * normal(u))
      : Math.exp(Math.log(1.5) + 0.3 * normal(u));
  }
  for (let i = 0; i < PER_PART; i++) {
    out[2 * PER_PART + i] = i % 500 === 0 ? 0 : i % 997 === 0 ? 2 ** ((i % 12) - 6) : -0.5 + 4.5 * u();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// What the fleet must read, computed once.

interface Expected {
  samples: Float64Array;
  count: number;
  sum: number;
  /** The error bound of a float sum of the samples, in any order: n * 2 ** -52 * sum(|v|). */
  sumSlack: number;
  quantiles: number[];
  /** Each part's exact quantiles. */
  partQuantiles: number[][];
  partSchemas: number[];
  schema: number;
  native: ReferenceBuckets;
}

/** sorted[Math.floor(q * (n - 1))] for each q. */
function exactQuantiles(values: Float64Array): number[] {
  const sorted = Float64Array.from(values).sort();
  return QUANTILES.map((q) => sorted[Math.floor(q * (sorted.length - 1))]);
}

let expected: Expected | undefined;

function expectation(): Expected {
  if (expected !== undefined) return expected;
  const samples = makeSamples();
  // Neumaier's compensated sum: the reference sum, good to the last bits.
  let sum = 0;
  let compensation = 0;
  let magnitude = 0;
  for (const v of samples) {
    const t = sum + v;
    compensation += Math.abs(sum) >= Math.abs(v) ? (sum - t) + v : (v - t) + sum;
    sum = t;
    magnitude += Math.abs(v);
  }
  const parts = RUNTIMES.map((_, part) => partOf(samples, part, RUNTIMES.length));
  const partSchemas = parts.map((part) => finalSchema(part, NATIVE_SCHEMA, NATIVE_MAX_BUCKETS));
  const schema = Math.min(...partSchemas);
  expected = {
    samples,
    count: samples.length,
    sum: sum + compensation,
    sumSlack: samples.length * 2 ** -52 * magnitude,
    quantiles: exactQuantiles(samples),
    partQuantiles: parts.map(exactQuantiles),
    partSchemas,
    schema,
    native: nativeOf(samples, schema),
  };
  return expected;
}

// ---------------------------------------------------------------------------------------------
// Processes.

/** Runs the writer on `runtime` to its end; returns the JSON line it printed last. */
async function runWriter(
  runtime: Runtime,
  env: Record<string, string | undefined>,
  children: Child[],
  timeoutMs = 120_000,
): Promise<unknown> {
  const [command, args] = childCommand(runtime, WRITER);
  const child = await startProcess({
    name: `the ${runtime} quantile writer`,
    command,
    args,
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
  });
  children.push(child);
  await waitUntil(`${child.name} to finish`, () => Promise.resolve(child.closed() || undefined), {
    timeoutMs,
    intervalMs: 50,
  });
  const { exitCode, signalCode } = child.process;
  assert.equal(exitCode, 0, `${child.name} exited with ${exitCode ?? signalCode}:\n${child.output()}`);
  const line = child.output().trim().split("\n").filter((l) => l.startsWith("{")).pop();
  assert.ok(line !== undefined, `${child.name} printed no report:\n${child.output()}`);
  return JSON.parse(line);
}

// ---------------------------------------------------------------------------------------------
// The fleet.

type Backend = "redis" | "upstash";

/** Reads the union back, through a registry on `backend` with the same two metrics. */
async function readBack(
  backend: typeof RedisBackend | typeof UpstashBackend,
  config: Record<string, unknown>,
): Promise<MetricFamily[]> {
  await loadBackend({ backend, config: { ...config, flushIntervalMs: 0 } });
  try {
    const registry = new Registry();
    defineQuantileMetrics(registry);
    return await registry.collect();
  } finally {
    await backend.close();
    await loadBackend({ backend: "memory" });
  }
}

const relative = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);
const percent = (x: number) => `${(100 * x).toFixed(3)} %`;

/**
 * What prom-client's cluster mode reports as the fleet's quantiles, from the workers'
 * `getMetricsAsJSON()`. AggregatorRegistry.aggregate() (lib/cluster.js) aggregates each metric
 * with its `aggregator`, which lib/metric.js sets to "sum" for every type, summaries included
 * (prom-client ≥ 12; a user may pick "average" and the like). The aggregator
 * (lib/metricAggregators.js) groups the workers' values by metricName and labels, and a summary's
 * quantile values carry a `quantile` label: so each {quantile="0.99"} of the aggregate is the sum
 * of the workers' p99s, however their observations are spread. (`_sum` and `_count` add up
 * right.) This runs prom-client's own aggregation over what the writers' prom-client summaries
 * report.
 */
async function promClientCluster(reports: readonly WriterReport[]): Promise<Map<number, number>> {
  const aggregated = AggregatorRegistry.aggregate(reports.map((r) => r.promClient) as never);
  const json = await aggregated.getMetricsAsJSON() as unknown as PromClientJson[];
  const summary = json.find((m) => m.name === SUMMARY);
  assert.ok(summary !== undefined, `no ${SUMMARY} in prom-client's aggregate`);
  assert.equal(summary.aggregator, "sum");
  const out = new Map<number, number>();
  for (const v of summary.values) {
    if (v.labels.quantile !== undefined) out.set(Number(v.labels.quantile), v.value);
  }
  const count = summary.values.find((v) => v.metricName === `${SUMMARY}_count`);
  assert.equal(count?.value, expectation().count, "prom-client's aggregate _count");
  return out;
}

async function fleet(backend: Backend): Promise<void> {
  const want = expectation();
  const dir = mkdtempSync(join(tmpdir(), "theus-quantiles-"));
  const children: Child[] = [];
  let redis: RedisServer | undefined;
  let bridge: UpstashBridge | undefined;
  try {
    const samplesPath = join(dir, "samples.f64");
    writeSamples(samplesPath, want.samples);
    redis = await startRedis();
    const keyPrefix = `quantiles-${backend}`;
    let config: Record<string, unknown>;
    if (backend === "redis") {
      config = { url: redis.url, keyPrefix };
    } else {
      bridge = await startUpstashBridge({ redisPort: redis.port });
      config = { url: bridge.url, token: bridge.token, keyPrefix };
    }

    // The three writers at once, each its third, with background flushes while they observe.
    const started = performance.now();
    const reports = await Promise.all(RUNTIMES.map(async (runtime, part) =>
      await runWriter(runtime, {
        THEUS_QUANTILE_MODE: "write",
        THEUS_QUANTILE_SAMPLES: samplesPath,
        THEUS_QUANTILE_PART: String(part),
        THEUS_QUANTILE_PARTS: String(RUNTIMES.length),
        THEUS_BACKEND: backend,
        THEUS_BACKEND_CONFIG: JSON.stringify({ ...config, flushIntervalMs: 50 }),
      }, children) as WriterReport
    ));
    const wallMs = Math.round(performance.now() - started);
    assert.deepEqual(reports.map((r) => r.runtime), RUNTIMES);
    assert.deepEqual(reports.map((r) => r.count), RUNTIMES.map(() => PER_PART));

    const families = await readBack(backend === "redis" ? RedisBackend : UpstashBackend, config);
    const summary = families.find((f) => f.name === SUMMARY) as SummaryFamily | undefined;
    const native = families.find((f) => f.name === NATIVE) as HistogramFamily | undefined;
    assert.ok(summary?.type === "summary" && summary.series.length === 1, JSON.stringify(summary));
    assert.ok(native?.type === "histogram" && native.series.length === 1, JSON.stringify(native));

    // The summary: count, sum, and each quantile within 1 % of the exact one of all samples.
    const s = summary.series[0];
    assert.equal(s.count, want.count, "summary _count");
    assert.ok(
      Math.abs(s.sum - want.sum) <= want.sumSlack,
      `summary _sum ${s.sum}, exact ${want.sum} (slack ${want.sumSlack})`,
    );
    assert.deepEqual(s.quantiles?.map((q) => q.quantile), QUANTILES);
    const errors = QUANTILES.map((_, i) => relative(s.quantiles![i].value, want.quantiles[i]));
    const detail = QUANTILES.map((q, i) =>
      `p${q * 100}: ${s.quantiles![i].value} vs exact ${want.quantiles[i]} (${percent(errors[i])})`
    ).join(", ");
    for (const [i, q] of QUANTILES.entries()) {
      assert.ok(
        errors[i] <= QUANTILE_TOLERANCE,
        `${backend}: quantile ${q} misses by more than 1 %: ${detail}`,
      );
    }

    // The native histogram: schema, zero count, every bucket, count and sum.
    const h = native.series[0];
    assert.ok(h.native !== undefined, "the histogram has no native buckets");
    const got: NativeBuckets = h.native;
    assert.equal(h.count, want.count, "native histogram count");
    assert.deepEqual(h.buckets, [want.count], "the one classic bucket, +Inf");
    assert.ok(
      Math.abs(h.sum - want.sum) <= want.sumSlack,
      `histogram sum ${h.sum}, exact ${want.sum} (slack ${want.sumSlack})`,
    );
    assert.equal(got.schema, want.schema, `schema; each writer's: ${want.partSchemas.join(", ")}`);
    assert.equal(got.zeroThreshold, ZERO_THRESHOLD);
    assert.equal(got.zeroCount, want.native.zero, "zero count");
    assert.deepEqual(got.positive, want.native.positive, "positive buckets");
    assert.deepEqual(got.negative, want.native.negative, "negative buckets");
    const inBuckets = [...got.positive, ...got.negative].reduce((n, b) => n + b.count, got.zeroCount);
    assert.equal(inBuckets, want.count, "the buckets hold every observation");

    // prom-client's cluster mode on the same fleet: the sum of the workers' p99s.
    const p99 = QUANTILES.indexOf(0.99);
    const prom = await promClientCluster(reports);
    const promError = relative(prom.get(0.99)!, want.quantiles[p99]);
    // The same with each worker's exact p99, so that no estimation error of theirs is in it.
    const summed = want.partQuantiles.reduce((total, qs) => total + qs[p99], 0);
    const summedError = relative(summed, want.quantiles[p99]);
    const averaged = summed / RUNTIMES.length;
    console.log(
      `quantile fleet (${backend}): ${want.count} samples from ${
        reports.map((r) => `${r.runtime} (observe ${r.observeMs} ms, flush ${r.flushMs} ms)`).join(", ")
      }, ${wallMs} ms in all${bridge ? `, ${bridge.counts.requests} requests to the bridge` : ""}\n` +
        `  union: ${detail}\n` +
        `  native: schema ${got.schema} (writers ${want.partSchemas.join(", ")}), ${got.positive.length} ` +
        `positive and ${got.negative.length} negative buckets, zero count ${got.zeroCount}, all exact; ` +
        `sum off by ${Math.abs(h.sum - want.sum)}\n` +
        `  prom-client cluster p99: ${prom.get(0.99)} (${percent(promError)}); exact per-process p99s ` +
        `${want.partQuantiles.map((qs) => qs[p99]).join(", ")}: summed ${summed} (${
          percent(summedError)
        }), averaged ${averaged} (${percent(relative(averaged, want.quantiles[p99]))})`,
    );
    assert.ok(promError > PROM_CLIENT_MISS, `prom-client's cluster p99 misses by only ${percent(promError)}`);
    assert.ok(summedError > PROM_CLIENT_MISS, `the summed p99s miss by only ${percent(summedError)}`);
  } finally {
    const problems: string[] = [];
    for (const child of children) await killProcess(child).catch((error) => problems.push(String(error)));
    await bridge?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(problems, [], "a writer could not be stopped");
  }
}

test(
  "a Summary and a native Histogram written by Deno, Bun and Node into one redis-server read back as the union: quantiles within 1 %, buckets exact",
  () => fleet("redis"),
  { timeout: 240_000 },
);

test(
  "a Summary and a native Histogram written by Deno, Bun and Node through the Upstash REST bridge read back as the union: quantiles within 1 %, buckets exact",
  () => fleet("upstash"),
  { timeout: 240_000 },
);

// ---------------------------------------------------------------------------------------------
// Values on the bounds.

test(
  "a value at a bucket bound goes to the same native bucket on Deno, Bun and Node",
  async () => {
    // Every bound of schema 8 (which holds those of every coarser positive schema) in [1, 2],
    // at three scales, and the doubles just below and just above it: the double nearest
    // 2 ** (j / 256), as the reference takes the bound.
    const values: number[] = [];
    for (const scale of [1, 2 ** -7, 2 ** 10]) {
      for (let j = 1; j <= 256; j++) {
        const at = TABLES[8][j] * scale;
        values.push(nextDown(at), at, nextUp(at));
      }
    }
    const reference = new Map(nativeOf(Float64Array.from(values), 8).positive.map((b) => [b.index, b.count]));
    const dir = mkdtempSync(join(tmpdir(), "theus-bounds-"));
    const children: Child[] = [];
    try {
      const samplesPath = join(dir, "bounds.f64");
      writeSamples(samplesPath, Float64Array.from(values));
      const counts = new Map<Runtime, Map<number, number>>();
      for (const runtime of RUNTIMES) {
        const native = await runWriter(
          runtime,
          {
            THEUS_QUANTILE_MODE: "bounds",
            THEUS_QUANTILE_SAMPLES: samplesPath,
            THEUS_BACKEND: undefined,
            THEUS_BACKEND_CONFIG: undefined,
          },
          children,
          60_000,
        ) as BoundsReport;
        assert.equal(native.runtime, runtime);
        assert.equal(native.schema, 8, `${runtime}: ${BOUNDS} schema`);
        assert.equal(native.zeroCount + native.negative.length, 0);
        counts.set(runtime, new Map(native.positive));
      }
      // The values one runtime puts in other buckets than another. Each value is a bound or one
      // double away from it: a runtime whose bound of bucket k is one double lower puts the
      // bound's double in bucket k + 1; one double higher, the double just above it in bucket k.
      // Either way its counts up to bucket k differ by one: their running difference names the
      // value (as the reference's bounds name it).
      const moved = (got: Map<number, number>, base: Map<number, number>): string[] => {
        const out: [number, string][] = [];
        let running = 0;
        for (const k of [...new Set([...got.keys(), ...base.keys()])].sort((a, b) => a - b)) {
          running += (got.get(k) ?? 0) - (base.get(k) ?? 0);
          const name = k >= 0 && k <= 256 ? `the double nearest 2 ** (${k}/256)` : `the bound of bucket ${k}`;
          if (running === -1) out.push([k, `${bound(k, 8)} (${name}) in bucket ${k + 1}, not ${k}`]);
          else if (running === 1) {
            out.push([k, `${nextUp(bound(k, 8))} (just above ${name}) in bucket ${k}, not ${k + 1}`]);
          } else if (running !== 0) out.push([k, `values around bucket ${k} (${running})`]);
        }
        // Examples from [1, 2] first.
        return out.sort(([a], [b]) => Number(a < 0 || a > 256) - Number(b < 0 || b > 256)).map(([, text]) =>
          text
        );
      };
      const base = counts.get(RUNTIMES[0])!;
      const fromReference = moved(base, reference);
      console.log(
        `bounds: ${values.length} values; ${RUNTIMES[0]} puts ${fromReference.length} elsewhere than the ` +
          `reference${fromReference.length > 0 ? `, e.g. ${fromReference.slice(0, 3).join("; ")}` : ""}`,
      );
      const described: string[] = [];
      for (const runtime of RUNTIMES.slice(1)) {
        const elsewhere = moved(counts.get(runtime)!, base);
        if (elsewhere.length > 0) {
          described.push(
            `${runtime} puts ${elsewhere.length} values in other buckets than ${RUNTIMES[0]}, e.g. ` +
              elsewhere.slice(0, 3).join("; "),
          );
        }
      }
      assert.deepEqual(described, [], "values on the bounds go to different buckets on different runtimes");
    } finally {
      for (const child of children) await killProcess(child);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { timeout: 120_000 },
);

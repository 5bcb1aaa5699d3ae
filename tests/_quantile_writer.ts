// A writer process for tests/once/quantile_fleet_test.ts, on Deno, Bun or Node (built, from
// dist/), and the definitions that test shares with it.
//
// As a program, run when THEUS_QUANTILE_MODE is set:
//
//   write   THEUS_BACKEND and THEUS_BACKEND_CONFIG choose the backend, as in an application.
//           It reads the samples file THEUS_QUANTILE_SAMPLES (float64, little-endian), takes
//           part THEUS_QUANTILE_PART of THEUS_QUANTILE_PARTS (contiguous thirds), observes each
//           value into the summary and the native histogram of defineQuantileMetrics(), and into
//           a prom-client Summary of the same quantiles, giving the event loop a turn every
//           10,000 values (for the backend's background flushes), flushes, and prints one JSON line: a
//           WriterReport.
//   bounds  On the memory backend: observes every value of the samples file into a native
//           histogram at schema 8 (every bound of every positive schema is one of its bounds),
//           and prints its native buckets as JSON: a BoundsReport.
//
// Any unhandled rejection makes it exit 1.

import { readFileSync } from "node:fs";
import process from "node:process";
import { Registry as PromRegistry, Summary as PromSummary } from "prom-client";
import { flush, Histogram, loadBackend, Registry, Summary } from "../mod.ts";
import type { HistogramFamily, NativeBuckets } from "../core/types.ts";

/** The ranks the summary exposes. */
export const QUANTILES: readonly number[] = [0.5, 0.9, 0.99, 0.999];
/** The summary's name. */
export const SUMMARY = "quantile_fleet_seconds";
/** The native histogram's name. */
export const NATIVE = "quantile_fleet_native_seconds";
/** The bound histogram's name (mode `bounds`). */
export const BOUNDS = "quantile_bounds";
/** The bucket factor of the bound histogram: schema 8, 2 ** (1/256) from one bound to the next. */
export const BOUNDS_FACTOR = 1.003;

/** The metrics every writer and the collector define alike. */
export interface QuantileMetrics {
  summary: Summary;
  native: Histogram;
}

/**
 * Defines the summary (window of 600 s in 5 slices, the defaults) and the native histogram
 * (client_golang's defaults: bucket factor 1.1, so schema 3, and at most 160 buckets).
 *
 * @param registry Where to register them.
 * @returns The metrics.
 */
export function defineQuantileMetrics(registry: Registry): QuantileMetrics {
  return {
    summary: new Summary({ name: SUMMARY, help: "Fleet quantiles", quantiles: QUANTILES, registry }),
    native: new Histogram({ name: NATIVE, help: "Fleet native histogram", native: true, registry }),
  };
}

/** prom-client's `getMetricsAsJSON()` of one metric, as much as the test reads. */
export interface PromClientJson {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

/** What a writer prints when it is done. */
export interface WriterReport {
  runtime: "deno" | "bun" | "node";
  part: number;
  /** The values it observed. */
  count: number;
  /** Milliseconds spent observing, and flushing. */
  observeMs: number;
  flushMs: number;
  /** Its prom-client registry's `getMetricsAsJSON()`: what a prom-client cluster worker sends. */
  promClient: PromClientJson[];
}

/** What a writer prints in mode `bounds`: its native buckets, as [index, count]. */
export interface BoundsReport {
  runtime: "deno" | "bun" | "node";
  schema: number;
  zeroCount: number;
  positive: [number, number][];
  negative: [number, number][];
}

/**
 * Reads a samples file written by the test.
 *
 * @param path The file: float64 values, little-endian.
 * @returns The values.
 */
export function readSamples(path: string): Float64Array {
  const bytes = readFileSync(path);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(bytes.byteLength / 8);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat64(i * 8, true);
  return out;
}

/**
 * Part `part` of `parts` of the samples: contiguous, the last one taking what is left.
 *
 * @returns The values of that part.
 */
export function partOf(samples: Float64Array, part: number, parts: number): Float64Array {
  const size = Math.floor(samples.length / parts);
  return samples.subarray(part * size, part === parts - 1 ? samples.length : (part + 1) * size);
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const RUNTIME: WriterReport["runtime"] = g.Deno ? "deno" : g.Bun ? "bun" : "node";

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

async function write(): Promise<void> {
  const part = Number(env("THEUS_QUANTILE_PART"));
  const parts = Number(env("THEUS_QUANTILE_PARTS"));
  const samples = partOf(readSamples(env("THEUS_QUANTILE_SAMPLES")), part, parts);
  await loadBackend();
  const { summary, native } = defineQuantileMetrics(new Registry());
  const promRegistry = new PromRegistry();
  const prom = new PromSummary({
    name: SUMMARY,
    help: "Fleet quantiles",
    percentiles: [...QUANTILES],
    registers: [promRegistry],
  });
  const started = performance.now();
  for (let i = 0; i < samples.length; i++) {
    const value = samples[i];
    summary.observe(value);
    native.observe(value);
    prom.observe(value);
    // A turn of the event loop now and then, for the background flushes.
    if (i % 10_000 === 9_999) await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const observed = performance.now();
  await flush();
  const report: WriterReport = {
    runtime: RUNTIME,
    part,
    count: samples.length,
    observeMs: Math.round(observed - started),
    flushMs: Math.round(performance.now() - observed),
    promClient: await promRegistry.getMetricsAsJSON() as unknown as PromClientJson[],
  };
  process.stdout.write(JSON.stringify(report) + "\n");
}

async function bounds(): Promise<void> {
  const samples = readSamples(env("THEUS_QUANTILE_SAMPLES"));
  const registry = new Registry();
  const histogram = new Histogram({
    name: BOUNDS,
    help: "Values at the bucket bounds",
    native: { bucketFactor: BOUNDS_FACTOR, maxBuckets: Infinity },
    registry,
  });
  for (const value of samples) histogram.observe(value);
  const family = (await registry.collect()).find((f) => f.name === BOUNDS) as HistogramFamily;
  const native: NativeBuckets = family.series[0].native!;
  // [index, count] pairs, to stay short.
  const report: BoundsReport = {
    runtime: RUNTIME,
    schema: native.schema,
    zeroCount: native.zeroCount,
    positive: native.positive.map((b) => [b.index, b.count]),
    negative: native.negative.map((b) => [b.index, b.count]),
  };
  process.stdout.write(JSON.stringify(report) + "\n");
}

const mode = process.env.THEUS_QUANTILE_MODE;
if (mode !== undefined) {
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`quantile writer (${RUNTIME}): unhandled rejection: ${String(reason)}\n`);
    process.exit(1);
  });
  try {
    if (mode === "write") await write();
    else if (mode === "bounds") await bounds();
    else throw new Error(`Unknown THEUS_QUANTILE_MODE "${mode}"`);
    process.exit(0);
  } catch (error) {
    process.stderr.write(
      `quantile writer (${RUNTIME}): ${error instanceof Error ? error.stack ?? error.message : error}\n`,
    );
    process.exit(1);
  }
}

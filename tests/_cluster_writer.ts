// A writer process for tests/once/redis_cluster_test.ts, on Deno, Bun or Node (built, from
// dist/), and the workload and its expected totals, which that test shares with it.
//
// As a program, run when THEUS_CLUSTER_WRITER is set (a JSON ClusterWriterSpec): selects the
// Redis backend on the cluster, defines the workload's metrics, flushes once, prints
// {"event":"ready"} and waits for the line "go" on stdin. Then it records `rounds` rounds,
// `roundMs` apart by the clock (flushing after each when `flushEachRound`, else leaving it to the
// background flushes), flushes until nothing is pending, and prints one JSON line: a
// ClusterWriterReport. Any unhandled rejection or uncaught exception makes it exit 1.

import process from "node:process";
import {
  Counter,
  defaultRegistry,
  flush,
  Gauge,
  Histogram,
  loadBackend,
  type MetricFamily,
  Registry,
} from "../mod.ts";

/** The label sets of the counter, `k="s0"` and on: enough that every shard holds several. */
export const COUNTER_SETS = 64;
/** The label sets of the histogram and of the gauge: the first ones of the counter's. */
export const HISTOGRAM_SETS = 24;
export const GAUGE_SETS = 24;
/** Histogram bounds and observations, every one exact in binary so sums add up exactly. */
export const BOUNDS: readonly number[] = [0.1, 0.5, 1, 5, 10];
const OBSERVED = [0.0625, 0.25, 0.75, 2, 7.5, 20, 0.5, 1];

/** The metric names. */
export const COUNTER = "cluster_requests_total";
export const HISTOGRAM = "cluster_latency_seconds";
export const GAUGE = "cluster_level";

/** What a writer does, passed in THEUS_CLUSTER_WRITER. */
export interface ClusterWriterSpec {
  id: string;
  /** Its place among the writers, which decides its amounts. */
  index: number;
  /** The cluster's nodes, `"host:port"`. */
  cluster: string[];
  keyPrefix: string;
  rounds: number;
  roundMs: number;
  /** Whether to await a flush after each round. */
  flushEachRound: boolean;
  flushIntervalMs: number;
  commandTimeoutMs: number;
}

/** What a writer prints when it is done. */
export interface ClusterWriterReport {
  id: string;
  runtime: "deno" | "bun" | "node";
  index: number;
  rounds: number;
  /** When each round was recorded (Unix ms). */
  roundTimes: number[];
  /** Its health metrics once drained: flushes attempted and flushes that failed. */
  flushes: number;
  failures: number;
  /** Milliseconds from the last round to nothing pending. */
  drainMs: number;
}

/** The workload's metrics. */
export interface ClusterMetrics {
  requests: Counter;
  latency: Histogram;
  level: Gauge;
}

/**
 * Defines the workload's metrics in a registry, on the backend currently selected.
 *
 * @param registry Where to register them.
 * @returns The metrics.
 */
export function defineClusterMetrics(registry: Registry): ClusterMetrics {
  return {
    requests: new Counter({ name: COUNTER, help: "Requests", labelNames: ["k"], registry }),
    latency: new Histogram({
      name: HISTOGRAM,
      help: "Latency",
      labelNames: ["k"],
      buckets: BOUNDS,
      registry,
    }),
    level: new Gauge({ name: GAUGE, help: "Level", labelNames: ["k"], mode: "sum", registry }),
  };
}

/** The label value of label set `j`. */
export function setName(j: number): string {
  return `s${j}`;
}

const amount = (index: number, round: number, j: number) => 1 + ((index + round + j) % 3);
const observed = (index: number, round: number, j: number) => OBSERVED[(index + round + j) % OBSERVED.length];
const added = (round: number, j: number) => ((round + j) % 3 === 2 ? -1 : 2);

/** Records round `round` of writer `index`. */
function record(metrics: ClusterMetrics, index: number, round: number): void {
  for (let j = 0; j < COUNTER_SETS; j++) {
    const k = setName(j);
    metrics.requests.labels({ k }).inc(amount(index, round, j));
    if (j < HISTOGRAM_SETS) metrics.latency.labels({ k }).observe(observed(index, round, j));
    if (j < GAUGE_SETS) {
      const by = added(round, j);
      if (by < 0) metrics.level.labels({ k }).dec(-by);
      else metrics.level.labels({ k }).inc(by);
    }
  }
}

/** Totals of the workload, by label value `k`. */
export interface ClusterTotals {
  counter: Record<string, number>;
  /** Cumulative bucket counts (the +Inf bucket last), sum and count. */
  histogram: Record<string, { buckets: number[]; sum: number; count: number }>;
  gauge: Record<string, number>;
}

/**
 * What the writers of these indices add up to once each recorded `rounds` rounds.
 *
 * @returns The totals.
 */
export function expectedTotals(indices: readonly number[], rounds: number): ClusterTotals {
  const totals: ClusterTotals = { counter: {}, histogram: {}, gauge: {} };
  const bounds = [...BOUNDS, Infinity];
  for (const index of indices) {
    for (let round = 0; round < rounds; round++) {
      for (let j = 0; j < COUNTER_SETS; j++) {
        const k = setName(j);
        totals.counter[k] = (totals.counter[k] ?? 0) + amount(index, round, j);
        if (j < HISTOGRAM_SETS) {
          const value = observed(index, round, j);
          const h = totals.histogram[k] ??= { buckets: bounds.map(() => 0), sum: 0, count: 0 };
          bounds.forEach((bound, b) => value <= bound && h.buckets[b]++);
          h.sum += value;
          h.count++;
        }
        if (j < GAUGE_SETS) totals.gauge[k] = (totals.gauge[k] ?? 0) + added(round, j);
      }
    }
  }
  return totals;
}

/**
 * Reads the workload's totals out of collected families.
 *
 * @param families What a registry holding {@linkcode defineClusterMetrics}'s metrics collected.
 * @returns The totals.
 */
export function totalsOf(families: readonly MetricFamily[]): ClusterTotals {
  const totals: ClusterTotals = { counter: {}, histogram: {}, gauge: {} };
  for (const family of families) {
    if (family.type === "counter" && family.name === COUNTER.replace(/_total$/, "")) {
      for (const s of family.series) totals.counter[s.labels.k] = s.value;
    } else if (family.type === "histogram" && family.name === HISTOGRAM) {
      for (const s of family.series) {
        totals.histogram[s.labels.k] = { buckets: [...s.buckets], sum: s.sum, count: s.count };
      }
    } else if (family.type === "gauge" && family.name === GAUGE) {
      for (const s of family.series) totals.gauge[s.labels.k] = s.value;
    }
  }
  return totals;
}

/** The totals with their keys sorted, so that two compare with deepEqual whatever their order. */
export function sortedTotals(totals: ClusterTotals): ClusterTotals {
  const sort = <T>(record: Record<string, T>) => Object.fromEntries(Object.entries(record).sort());
  return { counter: sort(totals.counter), histogram: sort(totals.histogram), gauge: sort(totals.gauge) };
}

// ---------------------------------------------------------------------------------------------
// The writer program.

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const RUNTIME: ClusterWriterReport["runtime"] = g.Deno ? "deno" : g.Bun ? "bun" : "node";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function die(what: string, error: unknown): never {
  const text = error instanceof Error ? error.stack ?? error.message : String(error);
  process.stderr.write(`cluster writer (${RUNTIME}): ${what}: ${text}\n`);
  process.exit(1);
}

function health(families: readonly MetricFamily[], name: string): number {
  const family = families.find((f) => f.name === name);
  if (family === undefined || !("series" in family)) return NaN;
  let total = 0;
  for (const series of family.series) total += (series as { value: number }).value;
  return total;
}

function waitForGo(): Promise<void> {
  return new Promise((resolve, reject) => {
    let buffered = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk: string) => {
      buffered += chunk;
      if (buffered.split("\n").some((line) => line.trim() === "go")) {
        process.stdin.pause();
        resolve();
      }
    });
    process.stdin.on("end", () => reject(new Error('stdin closed before "go"')));
  });
}

async function main(spec: ClusterWriterSpec): Promise<void> {
  await loadBackend({
    backend: "redis",
    config: {
      cluster: spec.cluster,
      keyPrefix: spec.keyPrefix,
      flushIntervalMs: spec.flushIntervalMs,
      commandTimeoutMs: spec.commandTimeoutMs,
    },
  });
  const registry = new Registry();
  const metrics = defineClusterMetrics(registry);
  await flush();
  process.stdout.write(`${JSON.stringify({ event: "ready", id: spec.id, runtime: RUNTIME })}\n`);
  await waitForGo();

  const roundTimes: number[] = [];
  const started = performance.now();
  for (let round = 0; round < spec.rounds; round++) {
    // Paced by the clock, so a stalled flush does not stretch the run.
    const due = started + round * spec.roundMs;
    if (due > performance.now()) await sleep(due - performance.now());
    record(metrics, spec.index, round);
    roundTimes.push(Date.now());
    if (spec.flushEachRound) await flush();
  }
  const recorded = performance.now();

  // flush() never rejects on a backend failure: the changes stay buffered. Loop until none are.
  const deadline = recorded + 30_000;
  let families: MetricFamily[];
  for (;;) {
    await flush();
    families = await defaultRegistry.collect();
    if (health(families, "theus_backend_pending_series") === 0) break;
    if (performance.now() > deadline) {
      const stats = ["pending_series", "flushes", "flush_failures"].map((n) =>
        `${n} ${health(families, `theus_backend_${n}`)}`
      );
      // A collection fails with the last flush's error.
      const why = await registry.collect().then(() => "", (error) => `; ${error}`);
      die("drain", new Error(`changes still pending after 30 s: ${stats.join(", ")}${why}`));
    }
    await sleep(50);
  }
  const report: ClusterWriterReport = {
    id: spec.id,
    runtime: RUNTIME,
    index: spec.index,
    rounds: spec.rounds,
    roundTimes,
    flushes: health(families, "theus_backend_flushes"),
    failures: health(families, "theus_backend_flush_failures"),
    drainMs: Math.round(performance.now() - recorded),
  };
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

function installFaultHandlers(): void {
  if (g.Deno) {
    g.addEventListener("unhandledrejection", (event: { reason: unknown; preventDefault(): void }) => {
      event.preventDefault();
      die("unhandled rejection", event.reason);
    });
    g.addEventListener("error", (event: { error: unknown; preventDefault(): void }) => {
      event.preventDefault();
      die("uncaught exception", event.error);
    });
  } else {
    process.on("unhandledRejection", (reason) => die("unhandled rejection", reason));
    process.on("uncaughtException", (error) => die("uncaught exception", error));
  }
}

const specText = process.env.THEUS_CLUSTER_WRITER;
if (specText !== undefined && specText !== "") {
  installFaultHandlers();
  await main(JSON.parse(specText) as ClusterWriterSpec).catch((error) => die("failed", error));
}

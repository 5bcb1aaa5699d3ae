// A small timing harness that runs the same way on Deno, Bun and Node: calibrated batches,
// warm-up, several interleaved rounds, the median; an event-loop ticker; heap measurement.

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** The benchmark's command-line arguments, on every runtime. */
export const ARGS: readonly string[] = g.Deno?.args ?? g.process?.argv?.slice(2) ?? [];

/** The value after a flag (`--part heap`), or undefined when the flag is not given. */
export function argValue(name: string): string | undefined {
  return ARGS.includes(name) ? ARGS[ARGS.indexOf(name) + 1] : undefined;
}

/** The groups of `--only a,b` or `--only=a,b`; `defaults` when the flag is not given. */
export function onlyGroups(defaults: readonly string[]): string[] {
  if (!ARGS.some((arg) => arg.startsWith("--only"))) return [...defaults];
  const list = ARGS.find((arg) => arg.startsWith("--only="))?.slice(7) ?? argValue("--only");
  return list?.split(",") ?? [];
}

/** The runtime running the benchmark. */
export interface Runtime {
  name: "deno" | "bun" | "node";
  version: string;
  /** A full garbage collection, when the runtime exposes one. */
  gc: (() => void) | undefined;
  /** Bytes of live JavaScript heap. */
  heapUsed(): number;
}

/** Detects the runtime, its version, and how to force a GC and read the heap. */
export function detectRuntime(): Runtime {
  if (g.Deno !== undefined) {
    return {
      name: "deno",
      version: `deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`,
      gc: typeof g.gc === "function" ? () => g.gc() : undefined,
      heapUsed: () => g.Deno.memoryUsage().heapUsed,
    };
  }
  if (g.Bun !== undefined) {
    return {
      name: "bun",
      version: `bun ${g.Bun.version} (JavaScriptCore)`,
      gc: () => g.Bun.gc(true),
      heapUsed: () => g.process.memoryUsage().heapUsed,
    };
  }
  return {
    name: "node",
    version: `node ${g.process.version} (V8 ${g.process.versions.v8})`,
    gc: typeof g.gc === "function" ? () => g.gc() : undefined,
    heapUsed: () => g.process.memoryUsage().heapUsed,
  };
}

/** Written by every timed loop, so that no engine can drop the work as dead code. */
export let sink = 0;

/** A timed loop: performs `n` operations and returns something derived from them. */
export type Loop = (n: number) => number;

/** One side of a comparison: a library and its way of doing the operation. */
export interface Side {
  /** Which library or variant: "theus", "prom-client", "memory", "redis", ... */
  lib: string;
  label: string;
  loop: Loop;
}

/** Timing settings. */
export interface TimingOptions {
  /** Minimum duration of one round, in ms. */
  roundMs: number;
  /** Timed rounds; the median is reported. */
  rounds: number;
  /** Rounds run and discarded after calibration. */
  warmupRounds: number;
}

/** The median ns per operation of every side, and how many operations each side ran. */
export interface PairResult {
  nsPerOp: number[];
  totalOps: number;
}

function runLoop(loop: Loop, n: number): number {
  const start = performance.now();
  sink = (sink + loop(n)) | 0;
  return performance.now() - start;
}

/**
 * Times several sides of one operation with the same batch size, so every side performs the
 * same number of operations (their results can then be compared value for value). Rounds
 * alternate the order of the sides, so drift (GC, frequency scaling) hits them alike.
 */
export function timeSides(sides: readonly Side[], options: TimingOptions): PairResult {
  let totalOps = 0;
  // Calibrate on the slowest side: batch sizes are powers of two, at least 64.
  let n = 64;
  for (;;) {
    const slowest = Math.max(...sides.map((side) => runLoop(side.loop, n)));
    totalOps += n;
    if (slowest >= options.roundMs || n >= 1 << 30) break;
    const factor = slowest <= 0 ? 16 : Math.min(16, options.roundMs / slowest);
    n *= 2 ** Math.max(1, Math.ceil(Math.log2(factor)));
  }
  const times: number[][] = sides.map(() => []);
  for (let round = 0; round < options.warmupRounds + options.rounds; round++) {
    const order = sides.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const ms = runLoop(sides[i].loop, n);
      if (round >= options.warmupRounds) times[i].push(ms);
    }
    totalOps += n;
  }
  return { nsPerOp: times.map((t) => (median(t) * 1e6) / n), totalOps };
}

/**
 * As {@linkcode timeSides}, but with a turn of the event loop (a `setTimeout(0)`) after every
 * batch, so timers (a remote backend's background flush) run during the measurement as they
 * would in a server; the time spent in them is not counted.
 */
export async function timeSidesYielding(sides: readonly Side[], options: TimingOptions): Promise<PairResult> {
  const turn = () => new Promise((resolve) => setTimeout(resolve, 0));
  let totalOps = 0;
  let n = 64;
  for (;;) {
    const slowest = Math.max(...sides.map((side) => runLoop(side.loop, n)));
    totalOps += n;
    await turn();
    if (slowest >= options.roundMs || n >= 1 << 30) break;
    const factor = slowest <= 0 ? 16 : Math.min(16, options.roundMs / slowest);
    n *= 2 ** Math.max(1, Math.ceil(Math.log2(factor)));
  }
  const times: number[][] = sides.map(() => []);
  for (let round = 0; round < options.warmupRounds + options.rounds; round++) {
    const order = sides.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) {
      const ms = runLoop(sides[i].loop, n);
      if (round >= options.warmupRounds) times[i].push(ms);
      await turn();
    }
    totalOps += n;
  }
  return { nsPerOp: times.map((t) => (median(t) * 1e6) / n), totalOps };
}

/** The median of some numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** What one run of asynchronous work cost: its wall time and the longest event-loop hold. */
export interface TickedRun<T> {
  result: T;
  ms: number;
  /** The longest stretch between two turns of a `setTimeout(0)` ticker during the work. */
  maxGapMs: number;
}

/**
 * Runs `work` while a chain of `setTimeout(0)` ticks records the longest gap between turns of
 * the event loop: the longest time the work kept every other task waiting. Gaps include the
 * runtime's timer granularity (about 1 ms on Node and Bun; Deno clamps nested timers to 4 ms).
 */
export async function withTicker<T>(work: () => Promise<T>): Promise<TickedRun<T>> {
  let last = 0;
  let maxGap = 0;
  let end = Infinity;
  let stopped!: () => void;
  const finished = new Promise<void>((resolve) => (stopped = resolve));
  const tick = () => {
    const now = performance.now();
    const gap = Math.min(now, end) - last;
    if (gap > maxGap) maxGap = gap;
    last = now;
    if (end === Infinity) setTimeout(tick, 0);
    else stopped();
  };
  setTimeout(tick, 0);
  await new Promise((resolve) => setTimeout(resolve, 5)); // the ticker is running
  const start = performance.now();
  last = start;
  maxGap = 0;
  const result = await work();
  end = performance.now();
  await finished;
  return { result, ms: end - start, maxGapMs: maxGap };
}

/** Forces a full collection, several times, so the heap settles. */
export function settle(runtime: Runtime): void {
  for (let i = 0; i < 4; i++) runtime.gc!();
}

/** Formats nanoseconds or milliseconds with three significant digits. */
export function fmt(value: number, unit: string): string {
  if (!Number.isFinite(value)) return "n/a";
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** Pads cells into an aligned text table. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  return rows
    .map((row) =>
      row.map((cell, col) => (col === 0 ? cell.padEnd(widths[col]) : cell.padStart(widths[col]))).join("  ")
    )
    .join("\n");
}

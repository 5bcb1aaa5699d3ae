// The rows of a benchmark's report against a baseline (remote.ts: redis or upstash against
// memory; shared.ts: shared memory against memory), its sanity checks and notes, and what the
// cases of both share.

import type { MetricFamily } from "../mod.ts";
import { table } from "./_harness.ts";

/** One line of the report. */
export interface Row {
  case: string;
  theus: string;
  baseline: string;
  ratio: number;
  target: string;
  status: "met" | "MISSED" | "-";
}

export const rows: Row[] = [];
/** Sanity checks that failed: a benchmark with any exits non-zero. */
export const failures: string[] = [];
export const notes: string[] = [];

// 64 observations spread over every default bucket, +Inf included (0.001 to about 11.6).
export const OBSERVED: number[] = Array.from({ length: 64 }, (_, i) => 0.001 * 1.16 ** i);

/** Records a failure unless `actual` is `expected`: numbers within `tolerance` of it, relatively. */
export function check(what: string, actual: unknown, expected: unknown, tolerance = 0): void {
  const same = typeof expected === "number" && typeof actual === "number"
    ? actual === expected || Math.abs(actual - expected) <= tolerance * Math.abs(expected)
    : JSON.stringify(actual) === JSON.stringify(expected);
  if (!same) failures.push(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

/** A row whose ratio should be at most `max` (theus ÷ baseline); no target without one. */
export function atMost(name: string, theus: string, baseline: string, ratio: number, max?: number): void {
  rows.push({
    case: name,
    theus,
    baseline,
    ratio,
    target: max === undefined ? "-" : `<= ${max}x`,
    status: max === undefined ? "-" : ratio <= max ? "met" : "MISSED",
  });
}

/** A row without a ratio. */
export function infoRow(name: string, theus: string, baseline = "-"): void {
  rows.push({ case: name, theus, baseline, ratio: NaN, target: "-", status: "-" });
}

/** A family by its metric's name (a counter's family is named without `_total`). */
export function familyOf(families: readonly MetricFamily[], name: string): MetricFamily | undefined {
  return families.find((f) => f.name === name || `${f.name}_total` === name);
}

/** What {@linkcode printReport} needs besides the rows. */
export interface ReportOptions {
  runtime: { name: string; version: string };
  /** The benchmark, as `BENCH_JSON` names it for bench/run.mjs and bench/compare.mjs. */
  kind: string;
  quick: boolean;
  /** What the ratios mean, printed under the table. */
  ratios: string;
  /** What the run took, in ms. */
  elapsedMs: number;
  /** What passing the sanity checks means, printed when they pass. */
  sane: string;
  /** The benchmark's sink (its loops' results), so that no loop can be optimised away. */
  sink: number;
}

/** Prints the table, the notes, the sanity checks and the `BENCH_JSON` line. */
export function printReport(options: ReportOptions): void {
  const header = ["case", "theus", "baseline", "ratio", "target", "status"];
  const body = rows.map((r) => [
    r.case,
    r.theus,
    r.baseline,
    Number.isFinite(r.ratio) ? `${r.ratio.toFixed(r.ratio >= 100 ? 0 : 2)}x` : "-",
    r.target,
    r.status,
  ]);
  console.log(table([header, ...body]));
  console.log(`${options.ratios}; ${(options.elapsedMs / 1000).toFixed(1)} s`);
  for (const note of notes) console.log(`note: ${note}`);
  if (failures.length > 0) {
    console.log(`SANITY CHECK FAILED (${failures.length}):\n  ${failures.join("\n  ")}`);
  } else {
    console.log(`sanity: ${options.sane}`);
  }
  const { runtime, kind, quick, sink } = options;
  const json = { runtime: runtime.name, version: runtime.version, kind, quick, rows, failures, sink };
  console.log(`BENCH_JSON ${JSON.stringify(json)}`);
}

/** Ends the process, non-zero when a sanity check failed: a stray handle or thread cannot hang it. */
export function exitProcess(): void {
  const code = failures.length > 0 ? 1 : 0;
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno !== undefined) g.Deno.exit(code);
  else g.process.exit(code);
}

// What the remote benchmark's cases share: settings, label values, the rows of the report and
// the sanity checks, and small readers of collected families.

import type { Redis as IoRedis } from "ioredis";
import type { MetricFamily, ValueSeries } from "../mod.ts";
import { fmt, type TimingOptions } from "./_harness.ts";
import { check as checkExactly, rows } from "./_report.ts";

/** How long and how often each case runs. */
export interface Settings {
  timing: TimingOptions;
  /** theus' sustained updates, over at least two default (1 s) flushes. */
  throughputMs: number;
  /** One awaited command per update. */
  baselineMs: number;
  flushRounds: number;
  collectRounds: number;
  invocations: number;
  latencyRounds: number;
  latencyRounds10k: number;
}

/** The settings of a full run, or of a quick one. */
export function settingsFor(quick: boolean): Settings {
  return quick
    ? {
      timing: { roundMs: 15, rounds: 5, warmupRounds: 1 },
      throughputMs: 1200,
      baselineMs: 300,
      flushRounds: 3,
      collectRounds: 3,
      invocations: 10,
      latencyRounds: 3,
      latencyRounds10k: 2,
    }
    : {
      timing: { roundMs: 40, rounds: 11, warmupRounds: 3 },
      throughputMs: 2500,
      baselineMs: 1000,
      flushRounds: 7,
      collectRounds: 7,
      invocations: 30,
      latencyRounds: 9,
      latencyRounds10k: 5,
    };
}

/** Series in the flush and collection cases. */
export const SERIES = 10_000;
/** One awaited request per update, timed for this many and extrapolated to 10,000. */
export const NAIVE_10K_SAMPLE = 1000;

export const LABEL_NAMES = ["method", "status"];
export const M100 = Array.from({ length: 100 }, (_, i) => `M${i}`);
export const S100 = Array.from({ length: 100 }, (_, i) => `S${String(i).padStart(2, "0")}`);
export const labelsOf = (i: number) => ({ method: M100[i % 100], status: S100[Math.floor(i / 100) % 100] });

export { atMost, failures, familyOf, infoRow, notes, OBSERVED, type Row, rows } from "./_report.ts";

/** A sanity check; numbers may differ by 1e-9, relatively (sums of floats in another order). */
export function check(what: string, actual: unknown, expected: unknown): void {
  checkExactly(what, actual, expected, 1e-9);
}

/** A row whose ratio should be at least `min` (theus this many times faster or cheaper). */
export function atLeast(name: string, theus: string, baseline: string, ratio: number, min?: number): void {
  rows.push({
    case: name,
    theus,
    baseline,
    ratio,
    target: min === undefined ? "-" : `>= ${min}x`,
    status: min === undefined ? "-" : ratio >= min ? "met" : "MISSED",
  });
}

/** A count (round trips, requests) with its allowed range. */
export function countRow(name: string, theus: number, baseline: string, lo: number, hi: number): void {
  rows.push({
    case: name,
    theus: Number.isInteger(theus) ? String(theus) : theus.toFixed(2),
    baseline,
    ratio: NaN,
    target: lo === hi ? `= ${lo}` : `${lo}-${hi}`,
    status: theus >= lo && theus <= hi ? "met" : "MISSED",
  });
}

export function rate(perSecond: number): string {
  if (perSecond >= 1e6) return `${fmt(perSecond / 1e6, "M/s")}`;
  if (perSecond >= 1e3) return `${fmt(perSecond / 1e3, "k/s")}`;
  return fmt(perSecond, "/s");
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function valueSum(family: MetricFamily | undefined): number {
  return ((family?.series ?? []) as ValueSeries[]).reduce((sum, s) => sum + s.value, 0);
}

export async function hashSum(client: IoRedis, key: string): Promise<number> {
  return Object.values(await client.hgetall(key)).reduce((sum, v) => sum + Number(v), 0);
}

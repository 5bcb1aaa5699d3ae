// A reference for exponential buckets (native histograms, summary sketches), written apart from
// core/_exponential.ts for the tests that check it: bounds rounded to nearest and checked exactly
// in BigInt arithmetic, bucket indices from a logarithm corrected by those bounds, the buckets
// and final schema of a set of values; and deterministic samples handed to child processes as a
// file, so that every runtime observes the same doubles (their Math.exp and Math.log need not
// agree to the last bit).

import { writeFileSync } from "node:fs";
import type { NativeBucket } from "../core/types.ts";

/** The zero threshold of a native histogram by default (client_golang's). */
export const ZERO_THRESHOLD: number = 2 ** -128;

/** mulberry32: a seeded 32-bit generator; two draws make a uniform double in [0, 1) of 53 bits. */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
  return () => ((next() >>> 5) * 67108864 + (next() >>> 6)) / 9007199254740992;
}

/** A standard normal draw (Box-Muller). */
export function normal(u: () => number): number {
  let u1 = u();
  while (u1 === 0) u1 = u();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u());
}

/** Writes samples as little-endian float64, as tests/_quantile_writer.ts reads them. */
export function writeSamples(path: string, samples: Float64Array): void {
  const bytes = new Uint8Array(samples.length * 8);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < samples.length; i++) view.setFloat64(i * 8, samples[i], true);
  writeFileSync(path, bytes);
}

// ---------------------------------------------------------------------------------------------
// Bounds and indices.

const F64 = new Float64Array(1);
const U64 = new BigUint64Array(F64.buffer);

/** The next double up (x > 0). */
export function nextUp(x: number): number {
  F64[0] = x;
  U64[0] += 1n;
  return F64[0];
}

/** The next double down (x > 0). */
export function nextDown(x: number): number {
  F64[0] = x;
  U64[0] -= 1n;
  return F64[0];
}

/**
 * 2 ** (j / n), 0 <= j <= n, rounded to the nearest double: Math.pow's guess, then moved until
 * the exact value lies within half a unit in the last place of it, checked in BigInt: with
 * c = m * 2 ** -52, (2m - 1) ** n <= 2 ** (j + 53n) <= (2m + 1) ** n. (The exact value is
 * irrational for 0 < j < n, never a tie.)
 */
export function exp2Fraction(j: number, n: number): number {
  if (j === 0) return 1;
  if (j === n) return 2;
  let c = Math.pow(2, j / n);
  const target = 2n ** BigInt(j + 53 * n);
  for (let tries = 0; tries < 8; tries++) {
    const m = BigInt(c * 2 ** 52);
    if ((2n * m - 1n) ** BigInt(n) > target) c = nextDown(c);
    else if ((2n * m + 1n) ** BigInt(n) < target) c = nextUp(c);
    else return c;
  }
  throw new Error(`2 ** (${j}/${n}) did not converge`);
}

/** For each schema 1 to 8, the bounds 2 ** (j / 2 ** schema), j = 0 .. 2 ** schema, rounded to nearest. */
export const TABLES: number[][] = [];
for (let schema = 1; schema <= 8; schema++) {
  const n = 2 ** schema;
  TABLES[schema] = Array.from({ length: n + 1 }, (_, j) => exp2Fraction(j, n));
}

/** The upper bound of bucket `k`: 2 ** (k / 2 ** schema), rounded to nearest. */
export function bound(k: number, schema: number): number {
  if (schema <= 0) return 2 ** (k * 2 ** -schema);
  const n = 2 ** schema;
  const e = Math.floor(k / n);
  return 2 ** e * TABLES[schema][k - e * n];
}

/** The bucket of `v` > 0: the smallest k with v <= 2 ** (k / 2 ** schema). */
export function refIndex(v: number, schema: number): number {
  let k = Math.ceil(Math.log2(v) * 2 ** schema);
  while (v > bound(k, schema)) k++;
  while (v <= bound(k - 1, schema)) k--;
  return k;
}

/** Native buckets, as {@linkcode nativeOf} counts them. */
export interface ReferenceBuckets {
  zero: number;
  positive: NativeBucket[];
  negative: NativeBucket[];
}

/** Native buckets of `values` at `schema`, as the reference counts them. */
export function nativeOf(
  values: Float64Array,
  schema: number,
  zeroThreshold = ZERO_THRESHOLD,
): ReferenceBuckets {
  const positive = new Map<number, number>();
  const negative = new Map<number, number>();
  let zero = 0;
  for (const v of values) {
    if (Math.abs(v) <= zeroThreshold) zero++;
    else {
      const map = v > 0 ? positive : negative;
      const k = refIndex(Math.abs(v), schema);
      map.set(k, (map.get(k) ?? 0) + 1);
    }
  }
  const list = (map: Map<number, number>): NativeBucket[] =>
    [...map].sort((a, b) => a[0] - b[0]).map(([index, count]) => ({ index, count }));
  return { zero, positive: list(positive), negative: list(negative) };
}

/**
 * The schema a native histogram of one process ends at: it starts at `schema` and halves the
 * resolution whenever its buckets (the zero bucket included) pass `maxBuckets`, so it ends at
 * the finest schema whose buckets, over all it observed, are `maxBuckets` or fewer (-4 at least).
 * client_golang's defaults: schema 3 (bucket factor 1.1), 160 buckets.
 */
export function finalSchema(values: Float64Array, schema = 3, maxBuckets = 160): number {
  for (; schema > -4; schema--) {
    const { zero, positive, negative } = nativeOf(values, schema);
    if (positive.length + negative.length + (zero > 0 ? 1 : 0) <= maxBuckets) return schema;
  }
  return -4;
}

/**
 * Bucket helpers, with client_golang's semantics: the same bounds, computed the same way, and
 * an error where client_golang panics.
 *
 * @module
 */

function checkCount(count: unknown, fn: string): number {
  if (typeof count !== "number") throw new TypeError(`${fn} needs a number for count, got ${typeof count}`);
  if (!Number.isInteger(count) || count < 1) {
    throw new RangeError(`${fn} needs a positive whole count, got ${String(count)}`);
  }
  return count;
}

function checkFinite(value: unknown, what: string, fn: string): number {
  if (typeof value !== "number") throw new TypeError(`${fn} needs a number for ${what}, got ${typeof value}`);
  if (!Number.isFinite(value)) throw new RangeError(`${fn} needs a finite ${what}, got ${value}`);
  return value;
}

/**
 * `count` buckets, `width` wide, the lowest upper bound `start`: `start`, `start + width`, ….
 * `+Inf` is not included (the histogram adds it).
 *
 * @param start The lowest upper bound.
 * @param width The distance between two bounds, positive.
 * @param count How many bounds, at least 1.
 * @returns The bounds.
 * @throws {RangeError} For a count below 1, a width that is not positive, or a bound that is not finite.
 *
 * @example
 * ```ts
 * import { linearBuckets } from "../mod.ts";
 *
 * linearBuckets(0.1, 0.1, 3); // [0.1, 0.2, 0.30000000000000004], as client_golang computes them
 * ```
 */
export function linearBuckets(start: number, width: number, count: number): number[] {
  checkFinite(start, "start", "linearBuckets");
  checkFinite(width, "width", "linearBuckets");
  checkCount(count, "linearBuckets");
  if (!(width > 0)) throw new RangeError(`linearBuckets needs a positive width, got ${width}`);
  const buckets: number[] = [];
  for (let i = 0; i < count; i++) {
    buckets.push(start);
    start += width;
  }
  return buckets;
}

/**
 * `count` buckets, each upper bound `factor` times the previous one, the lowest `start`.
 * `+Inf` is not included (the histogram adds it).
 *
 * @param start The lowest upper bound, positive.
 * @param factor The ratio of two neighbouring bounds, greater than 1.
 * @param count How many bounds, at least 1.
 * @returns The bounds.
 * @throws {RangeError} For a start that is not positive, a factor not greater than 1, or a
 * count below 1.
 *
 * @example
 * ```ts
 * import { exponentialBuckets } from "../mod.ts";
 *
 * exponentialBuckets(0.001, 10, 4); // [0.001, 0.01, 0.1, 1]
 * ```
 */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  checkFinite(start, "start", "exponentialBuckets");
  checkFinite(factor, "factor", "exponentialBuckets");
  if (!(start > 0)) throw new RangeError(`exponentialBuckets needs a positive start, got ${start}`);
  if (!(factor > 1)) throw new RangeError(`exponentialBuckets needs a factor greater than 1, got ${factor}`);
  checkCount(count, "exponentialBuckets");
  const buckets: number[] = [];
  for (let i = 0; i < count; i++) {
    buckets.push(start);
    start *= factor;
  }
  return buckets;
}

/**
 * `count` buckets spread exponentially from `min` to `max`, both included: the lowest upper
 * bound is `min`, the highest `max` (up to rounding). `+Inf` is not included.
 *
 * @param min The lowest upper bound, positive.
 * @param max The highest upper bound, greater than `min`.
 * @param count How many bounds, at least 1.
 * @returns The bounds.
 * @throws {RangeError} For a min that is not positive, a max not greater than min, or a count
 * below 1.
 *
 * @example
 * ```ts
 * import { exponentialBucketsRange } from "../mod.ts";
 *
 * exponentialBucketsRange(1, 1000, 4); // [1, 10, 100, 1000] (up to rounding)
 * ```
 */
export function exponentialBucketsRange(min: number, max: number, count: number): number[] {
  checkFinite(min, "min", "exponentialBucketsRange");
  checkFinite(max, "max", "exponentialBucketsRange");
  if (!(min > 0)) throw new RangeError(`exponentialBucketsRange needs a positive min, got ${min}`);
  if (!(max > min)) {
    throw new RangeError(`exponentialBucketsRange needs a max greater than min (${min}), got ${max}`);
  }
  checkCount(count, "exponentialBucketsRange");
  // max = min * growth^(count - 1), solved for growth.
  const growth = Math.pow(max / min, 1 / (count - 1));
  const buckets: number[] = [];
  for (let i = 1; i <= count; i++) buckets.push(min * Math.pow(growth, i - 1));
  return buckets;
}

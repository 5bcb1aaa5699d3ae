// Exponential buckets, as Prometheus' native histograms define them: with
// `base = 2 ** (2 ** -schema)`, bucket `index` holds the values in
// `(base ** (index - 1), base ** index]`. The bounds are client_golang's, bit for bit where
// `Math.pow` agrees with Go's `math.Exp2`: a power of two times one of 2 ** schema fractions.
// Summaries keep their quantiles in the same buckets (schema 6), so one piece of arithmetic
// serves both, and counts from many processes add up bucket by bucket.

/** The coarsest schema: each bucket 2 ** 16 times as wide as the one before. */
export const SCHEMA_MIN = -4;
/** The finest schema: 256 buckets per power of two. */
export const SCHEMA_MAX = 8;

// For each positive schema, the 2 ** schema + 1 fractions 2 ** (j / 2 ** schema), j = 0 .. 2 ** schema,
// and a guess of the bucket within a power of two from the top 12 bits of a value's mantissa: the
// first bucket whose bound reaches the least value with those bits (a bucket is wider than 1/4096
// of a power of two, so the guess is off by one at most).
const FRACTIONS: Float64Array[] = [];
const GUESSES: Uint16Array[] = [];
for (let schema = 1; schema <= SCHEMA_MAX; schema++) {
  const n = 1 << schema;
  const table = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) table[j] = Math.pow(2, j / n);
  table[n] = 2;
  FRACTIONS[schema] = table;
  const guesses = new Uint16Array(4096);
  let j = 1;
  for (let t = 0; t < 4096; t++) {
    while (1 + t / 4096 > table[j]) j++;
    guesses[t] = j;
  }
  GUESSES[schema] = guesses;
}

// The bits of a double: its high word holds the sign, the exponent and 20 bits of the mantissa.
const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const [HIGH, LOW] = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? [1, 0] : [0, 1];
// 2 ** e for every normal exponent e, -1022 .. 1023.
const POW2 = new Float64Array(2046);
for (let e = -1022; e <= 1023; e++) POW2[e + 1022] = Math.pow(2, e);

// The index past which a bucket's upper bound is not finite: 2 ** 1024 is Infinity.
function topIndex(schema: number): number {
  return schema > 0 ? 1024 << schema : 1024 >> -schema;
}

/**
 * The upper bound of bucket `index`: `2 ** (index * 2 ** -schema)`.
 *
 * @param index The bucket's index.
 * @param schema The schema, from -4 to 8.
 */
export function upperBound(index: number, schema: number): number {
  if (schema <= 0) return Math.pow(2, index * (1 << -schema));
  const power = index >> schema;
  return Math.pow(2, power) * FRACTIONS[schema][index - (power << schema)];
}

/**
 * The index of the bucket that holds `value`, a positive number (the magnitude of a negative
 * one): the first whose upper bound is at least `value`. `Infinity` goes to the bucket whose
 * upper bound is `Infinity`.
 *
 * @param value A number greater than zero.
 * @param schema The schema, from -4 to 8.
 */
export function bucketIndex(value: number, schema: number): number {
  F64[0] = value;
  const high = U32[HIGH];
  const biased = (high >>> 20) & 0x7ff;
  // A subnormal number is scaled up by 2 ** 64, exactly, and its index moved back down by 64
  // powers of two; Infinity takes the long way.
  if (biased === 0) return bucketIndex(value * 2 ** 64, schema) - (schema > 0 ? 64 << schema : 64 >> -schema);
  if (biased === 0x7ff) return slowIndex(value, schema);
  // value = 2 ** e * f, 1 <= f < 2; f is 1 exactly for a power of two.
  const e = biased - 1023;
  const power = (high & 0xfffff) === 0 && U32[LOW] === 0;
  if (schema <= 0) {
    const index = power ? e : e + 1;
    return schema === 0 ? index : ((index - 1) >> -schema) + 1;
  }
  if (power) return e << schema;
  const table = FRACTIONS[schema];
  const scale = POW2[e + 1022];
  let j = GUESSES[schema][(high >>> 8) & 0xfff];
  while (value > scale * table[j]) j++;
  return (e << schema) + j;
}

function slowIndex(value: number, schema: number): number {
  if (value === Infinity) return topIndex(schema);
  let index = schema > 0
    ? Math.ceil(Math.log2(value) * (1 << schema))
    : ((Math.ceil(Math.log2(value)) - 1) >> -schema) + 1;
  // The logarithm may be off by a rounding: the bounds decide.
  while (value > upperBound(index, schema)) index++;
  while (value <= upperBound(index - 1, schema)) index--;
  return index;
}

/** The same as {@linkcode bucketIndex}, by logarithms: how the tests check it. */
export const bucketIndexByLog: (value: number, schema: number) => number = slowIndex;

/**
 * The index at a coarser schema of the bucket that holds bucket `index`: each step down merges
 * buckets two by two (`ceil(index / 2)`).
 *
 * @param index The bucket's index at `from`.
 * @param from Its schema.
 * @param to A schema no greater than `from`.
 */
export function coarserIndex(index: number, from: number, to: number): number {
  const steps = from - to;
  return steps === 0 ? index : ((index - 1) >> steps) + 1;
}

/**
 * The schema for a bucket factor, as client_golang picks it: the coarsest whose buckets grow by
 * no more than `factor` from one to the next.
 *
 * @param factor A number greater than 1.
 */
export function schemaFor(factor: number): number {
  const floor = Math.floor(Math.log2(Math.log2(factor)));
  if (floor <= -SCHEMA_MAX) return SCHEMA_MAX;
  if (floor >= -SCHEMA_MIN) return SCHEMA_MIN;
  return floor === 0 ? 0 : -floor;
}

/**
 * The value that stands for every value of bucket `index`: `2 * lower * upper / (lower + upper)`,
 * whose relative error to any of them is at most `(base - 1) / (base + 1)` (0.54 % at schema 6).
 *
 * @param index The bucket's index.
 * @param schema The schema.
 */
export function representative(index: number, schema: number): number {
  const lower = upperBound(index - 1, schema);
  const upper = upperBound(index, schema);
  // 2 * lower * upper / (lower + upper), written so as not to overflow or underflow.
  return lower * (2 / (1 + lower / upper));
}

/** Counts by bucket index, the zero bucket apart: a sketch of many values, ready to be ranked. */
export interface Ranked {
  /** The schema of the indices. */
  readonly schema: number;
  /** The positive buckets: index -> count. */
  readonly positive: ReadonlyMap<number, number>;
  /** The negative buckets (by magnitude): index -> count. */
  readonly negative: ReadonlyMap<number, number>;
  /** The values counted as zero. */
  readonly zero: number;
}

/**
 * The value at each rank `q` (between 0 and 1, ascending) of the values a sketch holds: the
 * representative of the bucket that holds the value of rank `q * (n - 1)` among the `n` values,
 * counted from the smallest. NaN for every rank when the sketch is empty.
 *
 * @param sketch The counts.
 * @param ranks The ranks, ascending.
 */
export function quantiles(sketch: Ranked, ranks: readonly number[]): number[] {
  const negative = [...sketch.negative].filter(([, n]) => n > 0).sort((a, b) => b[0] - a[0]);
  const positive = [...sketch.positive].filter(([, n]) => n > 0).sort((a, b) => a[0] - b[0]);
  let total = sketch.zero > 0 ? sketch.zero : 0;
  for (const [, n] of negative) total += n;
  for (const [, n] of positive) total += n;
  const out = new Array<number>(ranks.length).fill(NaN);
  if (!(total > 0)) return out;
  // Every bucket in ascending order of its values: the negative ones from the largest magnitude,
  // then zero, then the positive ones.
  const walk: [number, number][] = [
    ...negative.map(([index, n]): [number, number] => [-representative(index, sketch.schema), n]),
    ...(sketch.zero > 0 ? [[0, sketch.zero] as [number, number]] : []),
    ...positive.map(([index, n]): [number, number] => [representative(index, sketch.schema), n]),
  ];
  let i = 0;
  let seen = walk[0][1];
  for (let r = 0; r < ranks.length; r++) {
    const rank = ranks[r] * (total - 1);
    while (seen <= rank && i < walk.length - 1) seen += walk[++i][1];
    out[r] = walk[i][0];
  }
  return out;
}

// Exponential buckets, as Prometheus' native histograms define them: with
// `base = 2 ** (2 ** -schema)`, bucket `index` holds the values in
// `(base ** (index - 1), base ** index]`. A bound is a power of two times one of 2 ** schema
// fractions, each the double nearest its exact value, the same on every engine (client_golang's
// table differs from them by one bit in a few places, which only a value equal to such a bound
// would notice).
// Summaries keep their quantiles in the same buckets (schema 6), so one piece of arithmetic
// serves both, and counts from many processes add up bucket by bucket.

/** The coarsest schema: each bucket 2 ** 16 times as wide as the one before. */
export const SCHEMA_MIN = -4;
/** The finest schema: 256 buckets per power of two. */
export const SCHEMA_MAX = 8;

// The double nearest to 2 ** (j / 256), j = 0 .. 255, as literals: Math.pow is one bit off for
// some of them on some engines, and a value must fall in the same bucket on every runtime of a
// fleet. (Computed with exact integer arithmetic; tests/native_histogram_test.ts checks them.)
const ROOTS = [
  1,
  1.0027112750502025,
  1.0054299011128027,
  1.0081558981184175,
  1.0108892860517005,
  1.0136300849514894,
  1.016378314910953,
  1.019133996077738,
  1.0218971486541166,
  1.0246677928971357,
  1.0274459491187637,
  1.030231637686041,
  1.0330248790212284,
  1.0358256936019572,
  1.0386341019613787,
  1.041450124688316,
  1.0442737824274138,
  1.0471050958792898,
  1.0499440858006872,
  1.0527907730046264,
  1.0556451783605572,
  1.0585073227945128,
  1.061377227289262,
  1.0642549128844645,
  1.0671404006768237,
  1.0700337118202419,
  1.0729348675259756,
  1.075843889062791,
  1.0787607977571199,
  1.0816856149932152,
  1.0846183622133092,
  1.0875590609177697,
  1.0905077326652577,
  1.0934643990728858,
  1.0964290818163769,
  1.099401802630222,
  1.102382583307841,
  1.1053714457017412,
  1.1083684117236787,
  1.1113735033448175,
  1.1143867425958924,
  1.1174081515673693,
  1.1204377524096067,
  1.12347556733302,
  1.1265216186082418,
  1.129575928566288,
  1.1326385195987192,
  1.1357094141578055,
  1.1387886347566916,
  1.1418762039695616,
  1.1449721444318042,
  1.148076478840179,
  1.1511892299529827,
  1.154310420590216,
  1.1574400736337511,
  1.1605782120274988,
  1.1637248587775775,
  1.1668800369524817,
  1.1700437696832502,
  1.1732160801636373,
  1.1763969916502812,
  1.1795865274628758,
  1.182784710984341,
  1.1859915656609938,
  1.189207115002721,
  1.1924313825831512,
  1.1956643920398273,
  1.1989061670743806,
  1.202156731452703,
  1.2054161090051239,
  1.2086843236265816,
  1.2119613992768012,
  1.215247359980469,
  1.2185422298274085,
  1.2218460329727576,
  1.2251587936371455,
  1.22848053610687,
  1.2318112847340759,
  1.2351510639369334,
  1.2384998981998165,
  1.241857812073484,
  1.245224830175258,
  1.2486009771892048,
  1.2519862778663162,
  1.255380757024691,
  1.2587844395497165,
  1.2621973503942507,
  1.2656195145788063,
  1.2690509571917332,
  1.2724917033894028,
  1.275941778396392,
  1.2794012075056693,
  1.2828700160787783,
  1.2863482295460256,
  1.2898358734066657,
  1.2933329732290895,
  1.2968395546510096,
  1.3003556433796506,
  1.3038812651919358,
  1.3074164459346773,
  1.3109612115247644,
  1.3145155879493546,
  1.318079601266064,
  1.3216532776031575,
  1.3252366431597413,
  1.3288297242059544,
  1.3324325470831615,
  1.3360451382041458,
  1.339667524053303,
  1.3432997311868353,
  1.3469417862329458,
  1.3505937158920345,
  1.3542555469368927,
  1.3579273062129011,
  1.3616090206382248,
  1.365300717204012,
  1.3690024229745905,
  1.3727141650876684,
  1.3764359707545302,
  1.380167867260238,
  1.383909881963832,
  1.387662042298529,
  1.3914243757719262,
  1.3951969099662003,
  1.3989796725383112,
  1.4027726912202048,
  1.4065759938190154,
  1.4103896082172707,
  1.4142135623730951,
  1.4180478843204152,
  1.4218926021691656,
  1.4257477441054942,
  1.42961333839197,
  1.433489413367789,
  1.4373759974489824,
  1.4412731191286257,
  1.4451808069770467,
  1.449099089642035,
  1.4530279958490526,
  1.4569675544014438,
  1.460917794180647,
  1.4648787441464057,
  1.4688504333369818,
  1.4728328908693675,
  1.4768261459394993,
  1.4808302278224719,
  1.4848451658727524,
  1.488870989524397,
  1.4929077282912648,
  1.4969554117672355,
  1.5010140696264256,
  1.5050837316234065,
  1.5091644275934228,
  1.5132561874526098,
  1.5173590411982147,
  1.5214730189088146,
  1.5255981507445384,
  1.529734466947287,
  1.533881997840956,
  1.5380407738316568,
  1.5422108254079407,
  1.5463921831410214,
  1.550584877685,
  1.5547889397770887,
  1.559004400237837,
  1.5632312899713576,
  1.567469639965553,
  1.5717194812923414,
  1.5759808451078865,
  1.5802537626528246,
  1.5845382652524937,
  1.588834384317164,
  1.593142151342267,
  1.597461597908627,
  1.6017927556826934,
  1.606135656416771,
  1.6104903319492543,
  1.6148568142048607,
  1.6192351351948637,
  1.6236253270173289,
  1.6280274218573478,
  1.632441451987275,
  1.6368674497669644,
  1.6413054476440063,
  1.645755478153965,
  1.6502175739206177,
  1.6546917676561943,
  1.6591780921616162,
  1.6636765803267364,
  1.6681872651305825,
  1.6727101796415966,
  1.6772453570178785,
  1.681792830507429,
  1.6863526334483934,
  1.6909247992693053,
  1.6955093614893326,
  1.7001063537185235,
  1.7047158096580513,
  1.709337763100463,
  1.713972247929926,
  1.718619298122478,
  1.723278947746274,
  1.7279512309618377,
  1.732636182022311,
  1.7373338352737062,
  1.7420442251551564,
  1.746767386199169,
  1.7515033530318782,
  1.7562521603732995,
  1.761013843037584,
  1.7657884359332727,
  1.7705759740635547,
  1.7753764925265212,
  1.7801900265154245,
  1.785016611318935,
  1.789856282321401,
  1.7947090750031072,
  1.7995750249405351,
  1.804454167806624,
  1.809346539371032,
  1.8142521755003989,
  1.8191711121586085,
  1.8241033854070534,
  1.8290490314048973,
  1.8340080864093424,
  1.8389805867758937,
  1.843966568958626,
  1.8489660695104508,
  1.8539791250833855,
  1.8590057724288205,
  1.864046048397789,
  1.8690999899412386,
  1.8741676341103,
  1.8792490180565602,
  1.8843441790323345,
  1.8894531543909392,
  1.8945759815869656,
  1.8997126981765553,
  1.9048633418176741,
  1.9100279502703899,
  1.9152065613971474,
  1.9203992131630474,
  1.925605943636125,
  1.930826790987627,
  1.9360617934922943,
  1.9413109895286405,
  1.9465744175792332,
  1.9518521162309783,
  1.9571441241754002,
  1.9624504802089273,
  1.9677712232331759,
  1.9731063922552343,
  1.978456026387951,
  1.9838201648502194,
  1.9891988469672663,
  1.9945921121709402,
];

// For each positive schema, the 2 ** schema + 1 fractions 2 ** (j / 2 ** schema), j = 0 .. 2 ** schema,
// and a guess of the bucket within a power of two from the top 12 bits of a value's mantissa: the
// first bucket whose bound reaches the least value with those bits (a bucket is wider than 1/4096
// of a power of two, so the guess is off by one at most).
const FRACTIONS: Float64Array[] = [];
const GUESSES: Uint16Array[] = [];
for (let schema = 1; schema <= SCHEMA_MAX; schema++) {
  const n = 1 << schema;
  const table = new Float64Array(n + 1);
  for (let j = 0; j < n; j++) table[j] = ROOTS[j << (SCHEMA_MAX - schema)];
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

/** The upper bounds of the buckets of one power of two at a positive schema, 2 ** (j / 2 ** schema), for tests. */
export function fractions(schema: number): readonly number[] {
  return [...FRACTIONS[schema]];
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

// Writes collected families in the Prometheus protobuf format: length-delimited
// `io.prometheus.client.MetricFamily` messages (client_model's metrics.proto), as client_golang
// emits them. Hand-written on Web APIs alone, so that an edge bundle carries no protobuf library.
// Like the text writers it works in slices, giving the event loop a turn, so a large registry
// never holds it for long.

import { LabelMemo } from "../core/_labelmemo.ts";
import { SLICE_MS, yieldToEventLoop } from "../core/_slice.ts";
import type {
  Exemplar,
  HistogramFamily,
  HistogramSeries,
  Labels,
  MetricFamily,
  NativeBucket,
  SummarySeries,
  ValueSeries,
} from "../core/types.ts";

const CHUNK_BYTES = 1 << 16;
const CHECK_EVERY = 32;
// Room kept before a family for its length, a varint of at most 5 bytes (Prometheus refuses more).
const PREFIX = 5;

// Tags: field number << 3 | wire type (0 varint, 1 fixed64, 2 length-delimited), from
// io/prometheus/client/metrics.proto.
const FAMILY_NAME = 0x0a; // MetricFamily.name = 1
const FAMILY_HELP = 0x12; // MetricFamily.help = 2
const FAMILY_TYPE = 0x18; // MetricFamily.type = 3
const FAMILY_METRIC = 0x22; // MetricFamily.metric = 4
const FAMILY_UNIT = 0x2a; // MetricFamily.unit = 5
const METRIC_LABEL = 0x0a; // Metric.label = 1, and Exemplar.label = 1
const METRIC_GAUGE = 0x12; // Metric.gauge = 2
const METRIC_COUNTER = 0x1a; // Metric.counter = 3
const METRIC_SUMMARY = 0x22; // Metric.summary = 4
const METRIC_UNTYPED = 0x2a; // Metric.untyped = 5
const METRIC_HISTOGRAM = 0x3a; // Metric.histogram = 7
const LABEL_NAME = 0x0a; // LabelPair.name = 1
const LABEL_VALUE = 0x12; // LabelPair.value = 2
const VALUE = 0x09; // Gauge.value, Counter.value, Untyped.value = 1
const COUNTER_EXEMPLAR = 0x12; // Counter.exemplar = 2
const COUNT = 0x08; // Summary.sample_count, Histogram.sample_count = 1
const SUM = 0x11; // Summary.sample_sum, Histogram.sample_sum = 2
const SUMMARY_QUANTILE = 0x1a; // Summary.quantile = 3
const QUANTILE_RANK = 0x09; // Quantile.quantile = 1
const QUANTILE_VALUE = 0x11; // Quantile.value = 2
const HISTOGRAM_BUCKET = 0x1a; // Histogram.bucket = 3
const COUNT_FLOAT = 0x21; // Histogram.sample_count_float = 4
const SCHEMA = 0x28; // Histogram.schema = 5 (sint32)
const ZERO_THRESHOLD = 0x31; // Histogram.zero_threshold = 6
const ZERO_COUNT = 0x38; // Histogram.zero_count = 7
const ZERO_COUNT_FLOAT = 0x41; // Histogram.zero_count_float = 8
const NEGATIVE_SPAN = 0x4a; // Histogram.negative_span = 9
const NEGATIVE_DELTA = 0x50; // Histogram.negative_delta = 10 (sint64)
const NEGATIVE_COUNT = 0x59; // Histogram.negative_count = 11
const POSITIVE_SPAN = 0x62; // Histogram.positive_span = 12
const POSITIVE_DELTA = 0x68; // Histogram.positive_delta = 13 (sint64)
const POSITIVE_COUNT = 0x71; // Histogram.positive_count = 14
const BUCKET_COUNT = 0x08; // Bucket.cumulative_count = 1
const BUCKET_BOUND = 0x11; // Bucket.upper_bound = 2
const BUCKET_EXEMPLAR = 0x1a; // Bucket.exemplar = 3
const BUCKET_COUNT_FLOAT = 0x21; // Bucket.cumulative_count_float = 4
const SPAN_OFFSET = 0x08; // BucketSpan.offset = 1 (sint32)
const SPAN_LENGTH = 0x10; // BucketSpan.length = 2
const EXEMPLAR_VALUE = 0x11; // Exemplar.value = 2
const EXEMPLAR_TIMESTAMP = 0x1a; // Exemplar.timestamp = 3
const SECONDS = 0x08; // google.protobuf.Timestamp.seconds = 1
const NANOS = 0x10; // google.protobuf.Timestamp.nanos = 2

// MetricType; info and state set families are gauges, as in text 0.0.4.
const TYPES: Readonly<Record<MetricFamily["type"], number>> = {
  counter: 0,
  gauge: 1,
  stateset: 1,
  info: 1,
  summary: 2,
  untyped: 3,
  histogram: 4,
};

const TWO_32 = 2 ** 32;
// The largest double below 2 ** 64: the top of uint64 as a number.
const MAX_UINT64 = 2 ** 64 - 2048;

/** Whether a count fits a uint64 field: a whole number from 0 up. */
function isCount(value: number): boolean {
  return Number.isInteger(value) && value >= 0 && value <= MAX_UINT64;
}

function varintSize(value: number): number {
  let size = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

// Encoded `label` fields of frozen label sets (every theus child has one), so that a series'
// labels are encoded once, not at every scrape (in registries within the memo's bound).
const encodedLabels = new LabelMemo<Uint8Array>();
const utf8 = new TextEncoder();

/**
 * A growing buffer that one family is written into. A nested message gets one byte for its
 * length, and its body is moved along in the rare case the length needs more.
 */
class Writer {
  #buf = new Uint8Array(1 << 12);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;

  #ensure(more: number): void {
    if (this.#pos + more <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + more) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#pos));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  /** A non-negative whole number below 2 ** 64, as a varint. */
  #varint(value: number): void {
    this.#ensure(10);
    const buf = this.#buf;
    let pos = this.#pos;
    while (value > 0x7fffffff) {
      buf[pos++] = (value % 128) | 128;
      value = Math.floor(value / 128);
    }
    while (value > 127) {
      buf[pos++] = (value & 127) | 128;
      value >>>= 7;
    }
    buf[pos++] = value;
    this.#pos = pos;
  }

  /** An int64 field: a whole number of either sign, two's complement (ten bytes) when negative. */
  int64(tag: number, value: number): void {
    this.byte(tag);
    if (value >= 0) return this.#varint(value);
    this.#ensure(10);
    let hi = Math.floor(value / TWO_32);
    let lo = (value - hi * TWO_32) >>> 0;
    hi >>>= 0;
    while (hi !== 0 || lo > 127) {
      this.#buf[this.#pos++] = (lo & 127) | 128;
      lo = ((lo >>> 7) | (hi << 25)) >>> 0;
      hi >>>= 7;
    }
    this.#buf[this.#pos++] = lo;
  }

  byte(value: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value;
  }

  uint(tag: number, value: number): void {
    this.byte(tag);
    this.#varint(value);
  }

  /** A uint64 field, or its float twin when the count is not a whole number from 0 up. */
  count(tag: number, floatTag: number, value: number): void {
    if (isCount(value)) this.uint(tag, value);
    else this.double(floatTag, value);
  }

  /**
   * A zigzag (sint32, sint64) field, exact for every whole number up to 2 ** 53 either way: the
   * sign goes in the low bit, and the magnitude less one, for a negative number, above it.
   */
  sint(tag: number, value: number): void {
    this.byte(tag);
    const negative = value < 0;
    const magnitude = negative ? -value - 1 : value;
    const low = ((magnitude % 64) << 1) | (negative ? 1 : 0);
    const rest = Math.floor(magnitude / 64);
    if (rest === 0) return this.byte(low);
    this.byte(low | 128);
    this.#varint(rest);
  }

  /** A double field: fixed64, little-endian. */
  double(tag: number, value: number): void {
    this.#ensure(9);
    this.#buf[this.#pos] = tag;
    this.#view.setFloat64(this.#pos + 1, value, true);
    this.#pos += 9;
  }

  /** A string field, UTF-8 (a lone surrogate becomes U+FFFD, as TextEncoder writes it). */
  string(tag: number, text: string): void {
    const start = this.open(tag);
    this.#ensure(text.length * 3);
    const buf = this.#buf;
    let pos = this.#pos;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 128) {
        pos = this.#pos + utf8.encodeInto(text, buf.subarray(this.#pos)).written;
        break;
      }
      buf[pos++] = code;
    }
    this.#pos = pos;
    this.close(start);
  }

  raw(bytes: Uint8Array): void {
    this.#ensure(bytes.length);
    this.#buf.set(bytes, this.#pos);
    this.#pos += bytes.length;
  }

  /** Starts a nested message; returns where its length goes, for `close`. */
  open(tag: number): number {
    this.#ensure(2);
    this.#buf[this.#pos] = tag;
    this.#pos += 2;
    return this.#pos - 1;
  }

  /** Ends the nested message that `open` started at `start`, writing its length. */
  close(start: number): void {
    const length = this.#pos - start - 1;
    if (length < 128) {
      this.#buf[start] = length;
      return;
    }
    const extra = varintSize(length) - 1;
    this.#ensure(extra);
    this.#buf.copyWithin(start + 1 + extra, start + 1, this.#pos);
    const end = this.#pos + extra;
    // Written in place: the buffer holds the body after it, so `#varint` finds its room.
    this.#pos = start;
    this.#varint(length);
    this.#pos = end;
  }

  /** The `label` fields of a series or an exemplar, in the label set's order. */
  labels(labels: Labels): void {
    const cached = encodedLabels.get(labels);
    if (cached !== undefined) return this.raw(cached);
    const start = this.#pos;
    for (const name in labels) {
      const pair = this.open(METRIC_LABEL);
      this.string(LABEL_NAME, name);
      this.string(LABEL_VALUE, labels[name]);
      this.close(pair);
    }
    if (Object.isFrozen(labels)) encodedLabels.set(labels, this.#buf.slice(start, this.#pos));
  }

  /** Starts a family after room for its length. */
  begin(): void {
    this.#pos = PREFIX;
  }

  /** Ends the family begun by `begin`: its bytes with their length in front, valid until `begin`. */
  end(): Uint8Array {
    const length = this.#pos - PREFIX;
    const from = PREFIX - varintSize(length);
    const end = this.#pos;
    this.#pos = from;
    this.#varint(length);
    return this.#buf.subarray(from, end);
  }
}

function exemplar(w: Writer, tag: number, exemplar: Exemplar): void {
  const start = w.open(tag);
  w.labels(exemplar.labels);
  w.double(EXEMPLAR_VALUE, exemplar.value);
  const time = exemplar.timestamp;
  if (time !== undefined && Number.isFinite(time)) {
    // Rounded to the microsecond: a double near today's Unix time holds no finer digit, and
    // finer noise would turn `.123` into 122999906 ns, which Prometheus reads as 122 ms.
    let seconds = Math.floor(time);
    let nanos = Math.round((time - seconds) * 1e6) * 1e3;
    if (nanos >= 1e9) [seconds, nanos] = [seconds + 1, 0];
    const stamp = w.open(EXEMPLAR_TIMESTAMP);
    if (seconds !== 0) w.int64(SECONDS, seconds);
    if (nanos !== 0) w.uint(NANOS, nanos);
    w.close(stamp);
  }
  w.close(start);
}

// A value family's series: a gauge, counter or untyped message of one double.
function valueSeries(w: Writer, tag: number, series: ValueSeries): void {
  const metric = w.open(FAMILY_METRIC);
  w.labels(series.labels);
  if (tag === METRIC_COUNTER && series.exemplar !== undefined) {
    const counter = w.open(METRIC_COUNTER);
    w.double(VALUE, series.value);
    exemplar(w, COUNTER_EXEMPLAR, series.exemplar);
    w.close(counter);
  } else {
    w.byte(tag);
    w.byte(9);
    w.double(VALUE, series.value);
  }
  w.close(metric);
}

function summarySeries(w: Writer, series: SummarySeries): void {
  const metric = w.open(FAMILY_METRIC);
  w.labels(series.labels);
  const summary = w.open(METRIC_SUMMARY);
  // A summary's count has no float twin in metrics.proto: a fractional one is rounded down.
  const count = series.count;
  w.uint(COUNT, isCount(count) ? count : count > 0 ? Math.min(Math.floor(count), MAX_UINT64) : 0);
  w.double(SUM, series.sum);
  for (const quantile of series.quantiles ?? []) {
    const q = w.open(SUMMARY_QUANTILE);
    w.double(QUANTILE_RANK, quantile.quantile);
    w.double(QUANTILE_VALUE, quantile.value);
    w.close(q);
  }
  w.close(summary);
  w.close(metric);
}

function histogramSeries(w: Writer, bounds: readonly number[], series: HistogramSeries): void {
  const metric = w.open(FAMILY_METRIC);
  w.labels(series.labels);
  const histogram = w.open(METRIC_HISTOGRAM);
  const native = series.native;
  // A native histogram with a count that is not whole is written as a float histogram: every
  // count a double, buckets as absolute counts instead of deltas.
  const float = native !== undefined &&
    (!isCount(series.count) || !isCount(native.zeroCount) || !allCounts(native.positive) ||
      !allCounts(native.negative));
  if (!float && isCount(series.count)) w.uint(COUNT, series.count);
  w.double(SUM, series.sum);
  const counts = series.buckets;
  const exemplars = series.exemplars;
  for (let i = 0; i < bounds.length; i++) {
    const example = exemplars?.[i];
    // The +Inf bucket is optional and Prometheus takes it from the count; client_golang writes
    // it only to carry an exemplar.
    if (bounds[i] === Infinity && example === undefined) continue;
    const bucket = w.open(HISTOGRAM_BUCKET);
    w.count(BUCKET_COUNT, BUCKET_COUNT_FLOAT, counts[i]);
    w.double(BUCKET_BOUND, bounds[i]);
    if (example !== undefined) exemplar(w, BUCKET_EXEMPLAR, example);
    w.close(bucket);
  }
  if (float || !isCount(series.count)) w.double(COUNT_FLOAT, series.count);
  if (native !== undefined) {
    w.sint(SCHEMA, native.schema);
    w.double(ZERO_THRESHOLD, native.zeroThreshold);
    if (float) w.double(ZERO_COUNT_FLOAT, native.zeroCount);
    else w.uint(ZERO_COUNT, native.zeroCount);
    spans(w, NEGATIVE_SPAN, native.negative);
    if (float) absolute(w, NEGATIVE_COUNT, native.negative);
    else deltas(w, NEGATIVE_DELTA, native.negative);
    spans(w, POSITIVE_SPAN, native.positive);
    if (float) absolute(w, POSITIVE_COUNT, native.positive);
    else deltas(w, POSITIVE_DELTA, native.positive);
    // Without a bucket, a zero count or a zero threshold, nothing else would tell a native
    // histogram from a classic one: client_golang adds a no-op span.
    if (
      native.zeroThreshold === 0 && native.zeroCount === 0 && native.positive.length === 0 &&
      native.negative.length === 0
    ) {
      span(w, POSITIVE_SPAN, 0, 0);
    }
  }
  w.close(histogram);
  w.close(metric);
}

function allCounts(buckets: readonly NativeBucket[]): boolean {
  for (let i = 0; i < buckets.length; i++) if (!isCount(buckets[i].count)) return false;
  return true;
}

// Native buckets as client_golang lays them out: a gap of one or two empty buckets stays inside a
// span as zero counts; a wider one starts a new span, whose offset is the gap (the first span's,
// its starting index).
const MAX_GAP = 2;

function span(w: Writer, tag: number, offset: number, length: number): void {
  const start = w.open(tag);
  w.sint(SPAN_OFFSET, offset);
  w.uint(SPAN_LENGTH, length);
  w.close(start);
}

function spans(w: Writer, tag: number, buckets: readonly NativeBucket[]): void {
  let next = 0;
  let offset = 0;
  let length = 0;
  for (let i = 0; i < buckets.length; i++) {
    const index = buckets[i].index;
    const gap = index - next;
    if (i === 0 || gap > MAX_GAP) {
      if (i > 0) span(w, tag, offset, length);
      offset = gap;
      length = 0;
    } else {
      length += gap;
    }
    length++;
    next = index + 1;
  }
  if (buckets.length > 0) span(w, tag, offset, length);
}

// Each bucket's count less the previous bucket's, across spans, the first against 0.
function deltas(w: Writer, tag: number, buckets: readonly NativeBucket[]): void {
  let previous = 0;
  let next = 0;
  for (let i = 0; i < buckets.length; i++) {
    const { index, count } = buckets[i];
    if (i > 0 && index - next <= MAX_GAP) {
      for (let gap = index - next; gap > 0; gap--) {
        w.sint(tag, -previous);
        previous = 0;
      }
    }
    w.sint(tag, count - previous);
    previous = count;
    next = index + 1;
  }
}

function absolute(w: Writer, tag: number, buckets: readonly NativeBucket[]): void {
  let next = 0;
  for (let i = 0; i < buckets.length; i++) {
    const { index, count } = buckets[i];
    if (i > 0 && index - next <= MAX_GAP) { for (let gap = index - next; gap > 0; gap--) w.double(tag, 0); }
    w.double(tag, count);
    next = index + 1;
  }
}

type SeriesOf<F extends MetricFamily> = F["series"][number];

// The name, help, type and unit of a family, and the function that writes one of its series.
function head(w: Writer, family: MetricFamily): (series: SeriesOf<MetricFamily>) => void {
  const type = family.type;
  const name = type === "counter"
    ? `${family.name}_total`
    : type === "info"
    ? `${family.name}_info`
    : family.name;
  w.string(FAMILY_NAME, name);
  w.string(FAMILY_HELP, family.help);
  w.uint(FAMILY_TYPE, TYPES[type]);
  const unit = family.type === "info" || family.type === "stateset" ? undefined : family.unit;
  if (unit !== undefined && unit !== "") w.string(FAMILY_UNIT, unit);
  switch (type) {
    case "histogram": {
      const bounds = (family as HistogramFamily).buckets;
      return (series) => histogramSeries(w, bounds, series as HistogramSeries);
    }
    case "summary":
      return (series) => summarySeries(w, series as SummarySeries);
    case "counter":
      return (series) => valueSeries(w, METRIC_COUNTER, series as ValueSeries);
    case "untyped":
      return (series) => valueSeries(w, METRIC_UNTYPED, series as ValueSeries);
    default:
      return (series) => valueSeries(w, METRIC_GAUGE, series as ValueSeries);
  }
}

/**
 * Encodes families as length-delimited `MetricFamily` messages, in chunks of up to 64 KiB.
 * Families without series are left out, as client_golang leaves them out. A family is written
 * whole before its bytes leave (its length comes first), but between series it gives the event
 * loop a turn whenever it has worked for `sliceMs` milliseconds.
 */
export async function* encodeProtobuf(
  families: readonly MetricFamily[],
  sliceMs: number = SLICE_MS,
): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
  const w = new Writer();
  let block = new Uint8Array(CHUNK_BYTES);
  let used = 0;
  const full: Uint8Array<ArrayBuffer>[] = [];
  let started = performance.now();
  let written = 0;
  for (const family of families) {
    if (family.series.length === 0) continue;
    w.begin();
    const write = head(w, family);
    for (const series of family.series) {
      write(series);
      if (++written % CHECK_EVERY !== 0 || performance.now() - started < sliceMs) continue;
      for (const chunk of full.splice(0)) yield chunk;
      if (used > 0) {
        yield block.slice(0, used);
        used = 0;
      }
      await yieldToEventLoop();
      started = performance.now();
    }
    const bytes = w.end();
    for (let from = 0; from < bytes.length;) {
      const n = Math.min(bytes.length - from, CHUNK_BYTES - used);
      block.set(bytes.subarray(from, from + n), used);
      used += n;
      from += n;
      if (used === CHUNK_BYTES) {
        full.push(block);
        block = new Uint8Array(CHUNK_BYTES);
        used = 0;
      }
    }
    for (const chunk of full.splice(0)) yield chunk;
  }
  if (used > 0) yield block.slice(0, used);
}

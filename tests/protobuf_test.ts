// The protobuf exposition: every family type decoded by protoc (the reference decoder) and
// compared with text written by hand, structural checks through an independent decoder (native
// buckets back from spans and deltas, doubles bit for bit, large counts exactly), chunking, and
// metricsHandler's negotiation of the format.

import assert from "node:assert/strict";
import { generateProtobuf, type MetricFamily, metricsHandler, type NativeBucket, Registry } from "../mod.ts";
import { negotiateFormat, PROTOBUF_CONTENT_TYPE } from "../exposition/mod.ts";
import { encodeProtobuf } from "../exposition/_protobuf.ts";
import { runtime, test } from "./_harness.ts";
import { decodeBody, decodeFamily, expandNative, protocDecode, splitDelimited } from "./_protobuf.ts";

const PROTOBUF =
  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT = "text/plain; version=0.0.4; charset=utf-8";
// scrapeAcceptHeaderWithProtobuf in scrape/scrape.go of Prometheus 2.42.0, sent with
// --enable-feature=native-histograms.
const PROMETHEUS_2_42_NATIVE_ACCEPT =
  "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited," +
  "application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75," +
  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
// scrapeAcceptHeader of the same file: without the feature.
const PROMETHEUS_2_42_ACCEPT =
  "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75," +
  "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

// One family of every kind, built by hand as a custom collector returns them.
function families(): MetricFamily[] {
  return [
    {
      name: "transfer_bytes",
      help: 'Bytes "sent"\nin all',
      type: "counter",
      unit: "bytes",
      series: [
        {
          labels: { path: '/a"b\nc', who: "zoë ☃" },
          value: 1027,
          exemplar: { labels: { trace_id: "abc" }, value: 3.5, timestamp: 1700000000.123 },
        },
        { labels: { path: "/", who: "" }, value: 0 },
      ],
    },
    {
      name: "temperature_celsius",
      help: "",
      type: "gauge",
      unit: "celsius",
      series: [
        { labels: { room: "a" }, value: -0.5 },
        { labels: { room: "b" }, value: NaN },
        { labels: { room: "c" }, value: Infinity },
      ],
    },
    { name: "legacy", help: "Untyped", type: "untyped", series: [{ labels: {}, value: 42 }] },
    { name: "unused", help: "No series", type: "gauge", series: [] },
    {
      name: "latency_seconds",
      help: "Latency",
      type: "histogram",
      unit: "seconds",
      buckets: [0.1, 1, Infinity],
      series: [
        {
          labels: { route: "/" },
          buckets: [1, 3, 4],
          sum: 5.25,
          count: 4,
          exemplars: [
            { labels: { trace_id: "t1" }, value: 0.05, timestamp: 1.5 },
            undefined,
            { labels: { trace_id: "t9" }, value: 7 },
          ],
        },
        { labels: { route: "/x" }, buckets: [0, 0, 0], sum: 0, count: 0 },
      ],
    },
    {
      name: "size_bytes",
      help: "Sizes",
      type: "histogram",
      buckets: [Infinity],
      series: [
        {
          labels: { shard: "a" },
          buckets: [23],
          sum: 123.5,
          count: 23,
          native: {
            schema: 3,
            zeroThreshold: 0.001,
            zeroCount: 2,
            positive: [
              { index: -3, count: 1 },
              { index: -2, count: 4 },
              { index: 0, count: 2 },
              { index: 5, count: 7 },
              { index: 6, count: 1 },
            ],
            negative: [{ index: -10, count: 3 }, { index: -7, count: 2 }, { index: -3, count: 1 }],
          },
        },
        {
          labels: { shard: "big" },
          buckets: [2 ** 53],
          sum: 1,
          count: 2 ** 53,
          native: {
            schema: -4,
            zeroThreshold: 0,
            zeroCount: 0,
            positive: [{ index: 0, count: 2 ** 53 - 2 }, { index: 1, count: 1 }],
            negative: [{ index: 1, count: 1 }],
          },
        },
      ],
    },
    {
      name: "idle_seconds",
      help: "Never observed",
      type: "histogram",
      buckets: [Infinity],
      series: [{
        labels: {},
        buckets: [0],
        sum: 0,
        count: 0,
        native: { schema: 0, zeroThreshold: 0, zeroCount: 0, positive: [], negative: [] },
      }],
    },
    {
      name: "weights",
      help: "Weighted",
      type: "histogram",
      buckets: [1, Infinity],
      series: [
        { labels: {}, buckets: [0.5, 1.5], sum: 2, count: 1.5 },
        {
          labels: { kind: "native" },
          buckets: [0, 2.5],
          sum: 3,
          count: 2.5,
          native: {
            schema: 1,
            zeroThreshold: 0,
            zeroCount: 0.5,
            positive: [{ index: 1, count: 1.5 }, { index: 3, count: 0.5 }],
            negative: [],
          },
        },
      ],
    },
    {
      name: "rpc_seconds",
      help: "RPC",
      type: "summary",
      series: [
        {
          labels: {},
          sum: 2.5,
          count: 10,
          quantiles: [{ quantile: 0.5, value: 0.2 }, { quantile: 0.99, value: NaN }],
        },
        { labels: { method: "get" }, sum: 0, count: 0 },
      ],
    },
    {
      name: "build",
      help: "Build",
      type: "info",
      series: [{ labels: { version: "1.2.3", commit: "abc" }, value: 1 }],
    },
    {
      name: "job_state",
      help: "Job state",
      type: "stateset",
      series: [
        { labels: { job: "a", job_state: "running" }, value: 1 },
        { labels: { job: "a", job_state: "failed" }, value: 0 },
      ],
    },
  ];
}

function registryOf(list: MetricFamily[]): Registry {
  const registry = new Registry();
  registry.register({ collect: () => list });
  return registry;
}

// What protoc prints for each message, written by hand from metrics.proto and the mapping: the
// fields in field-number order, strings C-escaped (UTF-8 bytes in octal), doubles shortest.
const EXPECTED: string[] = [
  `name: "transfer_bytes_total"
help: "Bytes \\"sent\\"\\nin all"
type: COUNTER
metric {
  label {
    name: "path"
    value: "/a\\"b\\nc"
  }
  label {
    name: "who"
    value: "zo\\303\\253 \\342\\230\\203"
  }
  counter {
    value: 1027
    exemplar {
      label {
        name: "trace_id"
        value: "abc"
      }
      value: 3.5
      timestamp {
        seconds: 1700000000
        nanos: 123000000
      }
    }
  }
}
metric {
  label {
    name: "path"
    value: "/"
  }
  label {
    name: "who"
    value: ""
  }
  counter {
    value: 0
  }
}
unit: "bytes"
`,
  `name: "temperature_celsius"
help: ""
type: GAUGE
metric {
  label {
    name: "room"
    value: "a"
  }
  gauge {
    value: -0.5
  }
}
metric {
  label {
    name: "room"
    value: "b"
  }
  gauge {
    value: nan
  }
}
metric {
  label {
    name: "room"
    value: "c"
  }
  gauge {
    value: inf
  }
}
unit: "celsius"
`,
  `name: "legacy"
help: "Untyped"
type: UNTYPED
metric {
  untyped {
    value: 42
  }
}
`,
  `name: "latency_seconds"
help: "Latency"
type: HISTOGRAM
metric {
  label {
    name: "route"
    value: "/"
  }
  histogram {
    sample_count: 4
    sample_sum: 5.25
    bucket {
      cumulative_count: 1
      upper_bound: 0.1
      exemplar {
        label {
          name: "trace_id"
          value: "t1"
        }
        value: 0.05
        timestamp {
          seconds: 1
          nanos: 500000000
        }
      }
    }
    bucket {
      cumulative_count: 3
      upper_bound: 1
    }
    bucket {
      cumulative_count: 4
      upper_bound: inf
      exemplar {
        label {
          name: "trace_id"
          value: "t9"
        }
        value: 7
      }
    }
  }
}
metric {
  label {
    name: "route"
    value: "/x"
  }
  histogram {
    sample_count: 0
    sample_sum: 0
    bucket {
      cumulative_count: 0
      upper_bound: 0.1
    }
    bucket {
      cumulative_count: 0
      upper_bound: 1
    }
  }
}
unit: "seconds"
`,
  `name: "size_bytes"
help: "Sizes"
type: HISTOGRAM
metric {
  label {
    name: "shard"
    value: "a"
  }
  histogram {
    sample_count: 23
    sample_sum: 123.5
    schema: 3
    zero_threshold: 0.001
    zero_count: 2
    negative_span {
      offset: -10
      length: 4
    }
    negative_span {
      offset: 3
      length: 1
    }
    negative_delta: 3
    negative_delta: -3
    negative_delta: 0
    negative_delta: 2
    negative_delta: -1
    positive_span {
      offset: -3
      length: 4
    }
    positive_span {
      offset: 4
      length: 2
    }
    positive_delta: 1
    positive_delta: 3
    positive_delta: -4
    positive_delta: 2
    positive_delta: 5
    positive_delta: -6
  }
}
metric {
  label {
    name: "shard"
    value: "big"
  }
  histogram {
    sample_count: 9007199254740992
    sample_sum: 1
    schema: -4
    zero_threshold: 0
    zero_count: 0
    negative_span {
      offset: 1
      length: 1
    }
    negative_delta: 1
    positive_span {
      offset: 0
      length: 2
    }
    positive_delta: 9007199254740990
    positive_delta: -9007199254740989
  }
}
`,
  `name: "idle_seconds"
help: "Never observed"
type: HISTOGRAM
metric {
  histogram {
    sample_count: 0
    sample_sum: 0
    schema: 0
    zero_threshold: 0
    zero_count: 0
    positive_span {
      offset: 0
      length: 0
    }
  }
}
`,
  `name: "weights"
help: "Weighted"
type: HISTOGRAM
metric {
  histogram {
    sample_sum: 2
    bucket {
      upper_bound: 1
      cumulative_count_float: 0.5
    }
    sample_count_float: 1.5
  }
}
metric {
  label {
    name: "kind"
    value: "native"
  }
  histogram {
    sample_sum: 3
    bucket {
      cumulative_count: 0
      upper_bound: 1
    }
    sample_count_float: 2.5
    schema: 1
    zero_threshold: 0
    zero_count_float: 0.5
    positive_span {
      offset: 1
      length: 3
    }
    positive_count: 1.5
    positive_count: 0
    positive_count: 0.5
  }
}
`,
  `name: "rpc_seconds"
help: "RPC"
type: SUMMARY
metric {
  summary {
    sample_count: 10
    sample_sum: 2.5
    quantile {
      quantile: 0.5
      value: 0.2
    }
    quantile {
      quantile: 0.99
      value: nan
    }
  }
}
metric {
  label {
    name: "method"
    value: "get"
  }
  summary {
    sample_count: 0
    sample_sum: 0
  }
}
`,
  `name: "build_info"
help: "Build"
type: GAUGE
metric {
  label {
    name: "version"
    value: "1.2.3"
  }
  label {
    name: "commit"
    value: "abc"
  }
  gauge {
    value: 1
  }
}
`,
  `name: "job_state"
help: "Job state"
type: GAUGE
metric {
  label {
    name: "job"
    value: "a"
  }
  label {
    name: "job_state"
    value: "running"
  }
  gauge {
    value: 1
  }
}
metric {
  label {
    name: "job"
    value: "a"
  }
  label {
    name: "job_state"
    value: "failed"
  }
  gauge {
    value: 0
  }
}
`,
];

test(`protoc decodes every family type as written by hand (${runtime})`, async () => {
  const body = await generateProtobuf(registryOf(families()));
  const messages = splitDelimited(body);
  // The family without series is left out, as client_golang leaves it out.
  assert.equal(messages.length, EXPECTED.length);
  const decoded = await Promise.all(messages.map(protocDecode));
  decoded.forEach((text, i) => assert.equal(text, EXPECTED[i], `message #${i}`));
});

test("the decoder reads native buckets back from spans and deltas, and counts exactly", async () => {
  const given = families();
  const [, , , , size, idle, weights] = decodeBody(await generateProtobuf(registryOf(given)));
  const sizeFamily = given[5] as Extract<MetricFamily, { type: "histogram" }>;
  const nonEmpty = (buckets: { index: number; count: number | bigint }[]) =>
    buckets.filter((b) => b.count !== 0n && b.count !== 0);
  const asBig = (buckets: readonly NativeBucket[]) =>
    buckets.map((b) => ({ index: b.index, count: BigInt(b.count) }));
  size.metrics.forEach((metric, i) => {
    const native = sizeFamily.series[i].native!;
    const h = metric.histogram!;
    assert.equal(h.sampleCount, BigInt(sizeFamily.series[i].count));
    assert.equal(h.schema, native.schema);
    assert.equal(h.zeroThreshold, native.zeroThreshold);
    assert.equal(h.zeroCount, BigInt(native.zeroCount));
    assert.deepEqual(nonEmpty(expandNative(h.positiveSpans, h.positiveDeltas)), asBig(native.positive));
    assert.deepEqual(nonEmpty(expandNative(h.negativeSpans, h.negativeDeltas)), asBig(native.negative));
    assert.deepEqual(h.buckets, [], "a native-only histogram has no classic buckets");
  });
  // 2 ** 53 - 2 then 1: the second delta, -(2 ** 53 - 3), zigzags to 2 ** 54 - 7, not a double.
  assert.deepEqual(size.metrics[1].histogram!.positiveDeltas, [2n ** 53n - 2n, -(2n ** 53n - 3n)]);
  // No bucket, no zero count, no zero threshold: the no-op span tells it is native.
  assert.deepEqual(idle.metrics[0].histogram!.positiveSpans, [{ offset: 0, length: 0 }]);
  assert.deepEqual(idle.metrics[0].histogram!.positiveDeltas, []);
  // A float histogram: absolute counts, empty buckets inside the span as 0.
  const float = weights.metrics[1].histogram!;
  assert.deepEqual(expandNative(float.positiveSpans, float.positiveCounts), [
    { index: 1, count: 1.5 },
    { index: 2, count: 0 },
    { index: 3, count: 0.5 },
  ]);
  assert.equal(float.sampleCount, undefined);
  assert.equal(float.sampleCountFloat, 2.5);
});

// A small deterministic generator, so that a failure can be replayed.
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

test("random native buckets round-trip through spans and deltas", async () => {
  const next = random(42);
  const cases: { labels: Record<string, string>; positive: NativeBucket[]; negative: NativeBucket[] }[] = [];
  for (let i = 0; i < 300; i++) {
    const side = () => {
      const out: NativeBucket[] = [];
      let index = Math.floor(next() * 200) - 100;
      const n = Math.floor(next() * 12);
      for (let j = 0; j < n; j++) {
        const big = next() < 0.1;
        out.push({ index, count: big ? 2 ** 53 - Math.floor(next() * 1000) : Math.floor(next() * 5) });
        index += 1 + Math.floor(next() * (next() < 0.5 ? 3 : 40));
      }
      return out;
    };
    cases.push({ labels: { case: String(i) }, positive: side(), negative: side() });
  }
  const family: MetricFamily = {
    name: "random",
    help: "",
    type: "histogram",
    buckets: [Infinity],
    series: cases.map(({ labels, positive, negative }) => ({
      labels,
      buckets: [0],
      sum: 0,
      count: 0,
      native: { schema: Math.floor(next() * 13) - 4, zeroThreshold: 0, zeroCount: 0, positive, negative },
    })),
  };
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeProtobuf([family])) chunks.push(chunk);
  const [decoded] = decodeBody(concat(chunks));
  const nonEmpty = (buckets: { index: number; count: number | bigint }[]) =>
    buckets.filter((b) => b.count !== 0n);
  decoded.metrics.forEach((metric, i) => {
    const h = metric.histogram!;
    const want = (buckets: NativeBucket[]) =>
      buckets.filter((b) => b.count !== 0).map((b) => ({ index: b.index, count: BigInt(b.count) }));
    assert.equal(h.schema, family.series[i].native!.schema, `case ${i}`);
    assert.deepEqual(
      nonEmpty(expandNative(h.positiveSpans, h.positiveDeltas)),
      want(cases[i].positive),
      `case ${i}`,
    );
    assert.deepEqual(
      nonEmpty(expandNative(h.negativeSpans, h.negativeDeltas)),
      want(cases[i].negative),
      `case ${i}`,
    );
    // client_golang's layout: a span never holds a run of more than two empty buckets; the one
    // empty span is the no-op span of a histogram without any bucket.
    if (cases[i].positive.length + cases[i].negative.length === 0) {
      assert.deepEqual([h.positiveSpans, h.negativeSpans], [[{ offset: 0, length: 0 }], []], `case ${i}`);
      return;
    }
    for (const spans of [h.positiveSpans, h.negativeSpans]) {
      spans.forEach((span, j) => {
        if (j > 0) assert.ok(span.offset > 2, `case ${i}: a gap of ${span.offset} starts a new span`);
        assert.ok(span.length > 0, `case ${i}: an empty span`);
      });
    }
  });
});

test("doubles are written bit for bit, and exemplar timestamps as seconds and nanos", async () => {
  const values = [0.1 + 0.2, 5e-324, -0, 1.7976931348623157e308, -Infinity, 2 ** 53 + 2, -1e-300];
  const family: MetricFamily = {
    name: "exact",
    help: "",
    type: "counter",
    series: [
      ...values.map((value, i) => ({ labels: { i: String(i) }, value })),
      { labels: { i: "neg" }, value: 1, exemplar: { labels: {}, value: -2.5, timestamp: -1.25 } },
      { labels: { i: "zero" }, value: 1, exemplar: { labels: { a: "b" }, value: 0, timestamp: 0 } },
      { labels: { i: "late" }, value: 1, exemplar: { labels: {}, value: 1, timestamp: 4102444800.999999 } },
    ],
  };
  const chunks: Uint8Array[] = [];
  for await (const chunk of encodeProtobuf([family])) chunks.push(chunk);
  const [decoded] = decodeBody(concat(chunks));
  assert.equal(decoded.name, "exact_total");
  values.forEach((value, i) =>
    assert.ok(Object.is(decoded.metrics[i].counter!.value, value), `value ${value}`)
  );
  const [neg, zero, late] = decoded.metrics.slice(values.length).map((m) => m.counter!.exemplar!);
  // An int64 below zero: ten bytes of two's complement, read back as -2.
  assert.deepEqual(neg.timestamp, { seconds: -2n, nanos: 750_000_000 });
  assert.equal(neg.value, -2.5);
  assert.deepEqual(zero.timestamp, { seconds: 0n, nanos: 0 });
  assert.deepEqual(zero.labels, [["a", "b"]]);
  assert.deepEqual(late.timestamp, { seconds: 4102444800n, nanos: 999_999_000 });
});

test("label sets of frozen objects are encoded once and reused, and stay right", async () => {
  const labels = Object.freeze({ method: "GET", path: "/é" });
  const family = (value: number): MetricFamily => ({
    name: "reused",
    help: "",
    type: "gauge",
    series: [{ labels, value }],
  });
  for (const value of [1, 2]) {
    const chunks: Uint8Array[] = [];
    for await (const chunk of encodeProtobuf([family(value)])) chunks.push(chunk);
    const [decoded] = decodeBody(concat(chunks));
    assert.deepEqual(decoded.metrics[0].labels, [["method", "GET"], ["path", "/é"]]);
    assert.equal(decoded.metrics[0].gauge, value);
  }
});

test("long strings and large messages get multi-byte lengths", async () => {
  const help = "h".repeat(200) + "é".repeat(100);
  const value = "v".repeat(20_000);
  const family: MetricFamily = {
    name: "long",
    help,
    type: "gauge",
    series: [{ labels: { value }, value: 3 }],
  };
  const body = concat(await collect(encodeProtobuf([family])));
  const [decoded] = decodeBody(body);
  assert.equal(decoded.help, help);
  assert.deepEqual(decoded.metrics[0].labels, [["value", value]]);
  assert.equal(decoded.metrics[0].gauge, 3);
});

async function collect(chunks: AsyncGenerator<Uint8Array, void, undefined>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const chunk of chunks) out.push(chunk);
  return out;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function largeFamily(): MetricFamily {
  return {
    name: "big_latency_seconds",
    help: "Latency",
    type: "histogram",
    buckets: [0.1, 1, 10, Infinity],
    series: Array.from({ length: 20_000 }, (_, i) => ({
      labels: { route: `/route/${i}` },
      buckets: [i % 3, i % 3 + 1, i % 3 + 2, i % 3 + 2],
      sum: i / 10,
      count: i % 3 + 2,
      native: {
        schema: 3,
        zeroThreshold: 1e-9,
        zeroCount: 0,
        positive: [{ index: i % 50, count: 1 }, { index: i % 50 + 4, count: i % 3 + 1 }],
        negative: [],
      },
    })),
  };
}

test("a large family is written in several chunks that make up the whole body", async () => {
  const registry = registryOf([largeFamily(), {
    name: "after",
    help: "",
    type: "gauge",
    series: [{ labels: {}, value: 1 }],
  }]);
  const chunks = await collect(encodeProtobuf(await registry.collect()));
  assert.ok(chunks.length > 1, `expected several chunks, got ${chunks.length}`);
  const body = concat(chunks);
  assert.deepEqual(body, await generateProtobuf(registry));
  const [big, after] = decodeBody(body);
  assert.equal(big.metrics.length, 20_000);
  assert.deepEqual(big.metrics[19_999].labels, [["route", "/route/19999"]]);
  assert.equal(after.name, "after");
});

test("a large family gives the event loop a turn while it is written", async () => {
  let ran = false;
  setTimeout(() => (ran = true), 0);
  const chunks = encodeProtobuf([largeFamily()], 0);
  // The family's bytes leave only once it is whole; the timer ran while it was written.
  const first = await chunks.next();
  assert.equal(first.done, false);
  assert.ok(ran, "the timer did not run while the family was written");
  await chunks.return();
});

// ---- metricsHandler ---------------------------------------------------------------------------

function get(headers: Record<string, string> = {}, method = "GET"): Request {
  return new Request("http://localhost/metrics", { method, headers });
}

test(`Prometheus 2.42 with native histograms gets protobuf that protoc decodes (${runtime})`, async () => {
  const registry = registryOf(families());
  const response = await metricsHandler({ registry })(get({ accept: PROMETHEUS_2_42_NATIVE_ACCEPT }));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), PROTOBUF);
  assert.equal(response.headers.get("content-type"), PROTOBUF_CONTENT_TYPE);
  assert.match(response.headers.get("vary") ?? "", /Accept/);
  const body = new Uint8Array(await response.arrayBuffer());
  assert.deepEqual(body, await generateProtobuf(registry));
  const decoded = await Promise.all(splitDelimited(body).map(protocDecode));
  assert.deepEqual(decoded, EXPECTED);
});

test("Prometheus without native histograms, */* and no Accept get the text formats", async () => {
  const handler = metricsHandler({ registry: registryOf(families()) });
  const table: [string | undefined, string][] = [
    [PROMETHEUS_2_42_ACCEPT, OPENMETRICS],
    ["*/*", TEXT],
    [undefined, TEXT],
    ["application/*", OPENMETRICS],
  ];
  for (const [accept, type] of table) {
    const response = await handler(get(accept === undefined ? {} : { accept }));
    assert.equal(response.headers.get("content-type"), type, accept);
    await response.body?.cancel();
  }
});

test("protobuf is gzipped when Accept-Encoding allows it, and HEAD gets its headers", async () => {
  const registry = registryOf(families());
  const handler = metricsHandler({ registry });
  const headers = { accept: PROMETHEUS_2_42_NATIVE_ACCEPT, "accept-encoding": "gzip" };
  const response = await handler(get(headers));
  assert.equal(response.headers.get("content-type"), PROTOBUF);
  assert.equal(response.headers.get("content-encoding"), "gzip");
  const stream = response.body!.pipeThrough(
    new DecompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
  const body = new Uint8Array(await new Response(stream).arrayBuffer());
  assert.deepEqual(body, await generateProtobuf(registry));
  assert.equal(decodeFamily(splitDelimited(body)[0]).name, "transfer_bytes_total");
  const head = await handler(get(headers, "HEAD"));
  assert.equal(head.headers.get("content-type"), PROTOBUF);
  assert.equal(head.headers.get("content-encoding"), "gzip");
  assert.equal(head.body, null);
});

test("negotiateFormat() offers protobuf only when asked to, and only for its message and encoding", () => {
  assert.equal(negotiateFormat(PROMETHEUS_2_42_NATIVE_ACCEPT), "openmetrics");
  assert.equal(negotiateFormat(PROMETHEUS_2_42_NATIVE_ACCEPT, { protobuf: false }), "openmetrics");
  assert.equal(negotiateFormat(PROMETHEUS_2_42_NATIVE_ACCEPT, { protobuf: true }), "protobuf");
  const p = "application/vnd.google.protobuf";
  const table: [string, string | undefined][] = [
    [`${p};proto=io.prometheus.client.MetricFamily;encoding=delimited`, "protobuf"],
    [`${p}; proto="io.prometheus.client.MetricFamily"; encoding="delimited"`, "protobuf"],
    [`${p};proto=io.prometheus.client.MetricFamily;encoding=text`, undefined],
    [`${p};proto=io.prometheus.client.MetricFamily;encoding=compact-text`, undefined],
    [`${p};proto=io.prometheus.client.MetricFamily`, undefined],
    [`${p};encoding=delimited`, undefined],
    [p, undefined],
    [`${p};proto=other.Message;encoding=delimited,*/*;q=0.1`, "prometheus"],
    ["*/*", "prometheus"],
    ["application/*", "openmetrics"],
  ];
  for (const [accept, format] of table) {
    assert.equal(negotiateFormat(accept, { protobuf: true }), format, accept);
  }
});

// Whole exposition texts, written by hand, in both formats; each golden text is also checked by
// the external validators, so a golden text that Prometheus would reject cannot pass.

import assert from "node:assert/strict";
import { Counter, Gauge, generateLatest, Histogram, type MetricFamily, Registry, Summary } from "../mod.ts";
import { runtime, test } from "./_harness.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

// A raw (no escape processing) multi-line text: the first line break and each line's
// indentation are dropped, so the text reads as it appears on the wire.
function golden(strings: TemplateStringsArray): string {
  return strings.raw.join("").replace(/^\n/, "").replace(/^[ ]+/gm, "");
}

function metricsRegistry(): Registry {
  const registry = new Registry({ prefix: "app" });
  const requests = new Counter({
    name: "http_requests_total",
    help: "HTTP requests handled",
    labelNames: ["method", "code"],
    registry,
  });
  requests.labels({ method: "GET", code: "200" }).inc(3);
  requests.labels({ code: "500", method: "POST" }).inc(1.5);
  new Counter({ name: "jobs", help: "Jobs done", registry }).inc(2);
  new Gauge({ name: "temperature_celsius", help: "Room temperature", registry }).set(-3.5);
  const latency = new Histogram({
    name: "request_duration_seconds",
    help: "Request latency",
    labelNames: ["path"],
    buckets: [1e-5, 0.005, 1, 2.5, 10, 100000, 1e6],
    registry,
  });
  const a = latency.labels({ path: "/a" });
  for (const seconds of [0.00390625, 0.25, 0.5, 3, 2000000]) a.observe(seconds);
  latency.labels({ path: "/b" });
  const payload = new Summary({ name: "payload_bytes", help: "Payload sizes", registry });
  payload.observe(100);
  payload.observe(28);
  return registry;
}

const METRICS_TEXT = golden`
  # HELP app_http_requests_total HTTP requests handled
  # TYPE app_http_requests_total counter
  app_http_requests_total{method="GET",code="200"} 3
  app_http_requests_total{method="POST",code="500"} 1.5
  # HELP app_jobs_total Jobs done
  # TYPE app_jobs_total counter
  app_jobs_total 2
  # HELP app_temperature_celsius Room temperature
  # TYPE app_temperature_celsius gauge
  app_temperature_celsius -3.5
  # HELP app_request_duration_seconds Request latency
  # TYPE app_request_duration_seconds histogram
  app_request_duration_seconds_bucket{path="/a",le="1e-05"} 0
  app_request_duration_seconds_bucket{path="/a",le="0.005"} 1
  app_request_duration_seconds_bucket{path="/a",le="1.0"} 3
  app_request_duration_seconds_bucket{path="/a",le="2.5"} 3
  app_request_duration_seconds_bucket{path="/a",le="10.0"} 4
  app_request_duration_seconds_bucket{path="/a",le="100000.0"} 4
  app_request_duration_seconds_bucket{path="/a",le="1e+06"} 4
  app_request_duration_seconds_bucket{path="/a",le="+Inf"} 5
  app_request_duration_seconds_sum{path="/a"} 2000003.75390625
  app_request_duration_seconds_count{path="/a"} 5
  app_request_duration_seconds_bucket{path="/b",le="1e-05"} 0
  app_request_duration_seconds_bucket{path="/b",le="0.005"} 0
  app_request_duration_seconds_bucket{path="/b",le="1.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="2.5"} 0
  app_request_duration_seconds_bucket{path="/b",le="10.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="100000.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="1e+06"} 0
  app_request_duration_seconds_bucket{path="/b",le="+Inf"} 0
  app_request_duration_seconds_sum{path="/b"} 0
  app_request_duration_seconds_count{path="/b"} 0
  # HELP app_payload_bytes Payload sizes
  # TYPE app_payload_bytes summary
  app_payload_bytes_sum 128
  app_payload_bytes_count 2
`;

const METRICS_OPENMETRICS = golden`
  # HELP app_http_requests HTTP requests handled
  # TYPE app_http_requests counter
  app_http_requests_total{method="GET",code="200"} 3
  app_http_requests_total{method="POST",code="500"} 1.5
  # HELP app_jobs Jobs done
  # TYPE app_jobs counter
  app_jobs_total 2
  # HELP app_temperature_celsius Room temperature
  # TYPE app_temperature_celsius gauge
  app_temperature_celsius -3.5
  # HELP app_request_duration_seconds Request latency
  # TYPE app_request_duration_seconds histogram
  app_request_duration_seconds_bucket{path="/a",le="1e-05"} 0
  app_request_duration_seconds_bucket{path="/a",le="0.005"} 1
  app_request_duration_seconds_bucket{path="/a",le="1.0"} 3
  app_request_duration_seconds_bucket{path="/a",le="2.5"} 3
  app_request_duration_seconds_bucket{path="/a",le="10.0"} 4
  app_request_duration_seconds_bucket{path="/a",le="100000.0"} 4
  app_request_duration_seconds_bucket{path="/a",le="1e+06"} 4
  app_request_duration_seconds_bucket{path="/a",le="+Inf"} 5
  app_request_duration_seconds_sum{path="/a"} 2000003.75390625
  app_request_duration_seconds_count{path="/a"} 5
  app_request_duration_seconds_bucket{path="/b",le="1e-05"} 0
  app_request_duration_seconds_bucket{path="/b",le="0.005"} 0
  app_request_duration_seconds_bucket{path="/b",le="1.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="2.5"} 0
  app_request_duration_seconds_bucket{path="/b",le="10.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="100000.0"} 0
  app_request_duration_seconds_bucket{path="/b",le="1e+06"} 0
  app_request_duration_seconds_bucket{path="/b",le="+Inf"} 0
  app_request_duration_seconds_sum{path="/b"} 0
  app_request_duration_seconds_count{path="/b"} 0
  # HELP app_payload_bytes Payload sizes
  # TYPE app_payload_bytes summary
  app_payload_bytes_sum 128
  app_payload_bytes_count 2
  # EOF
`;

function customRegistry(): Registry {
  const registry = new Registry();
  const families: MetricFamily[] = [
    {
      name: "legacy_value",
      help: 'Old "quoted" \\ help\nsecond line',
      type: "untyped",
      series: [{ labels: { kind: 'a"b\\c\nd' }, value: 7 }, { labels: { kind: "" }, value: NaN }],
    },
    { name: "events_total", help: "Events seen", type: "counter", series: [{ labels: {}, value: 10 }] },
    { name: "retries", help: "Retries", type: "counter", series: [{ labels: { op: "read" }, value: 0.5 }] },
    {
      name: "queue_depth",
      help: "Queue depth",
      type: "gauge",
      series: [{ labels: { queue: "q1" }, value: Infinity }, { labels: { queue: "q2" }, value: -Infinity }],
    },
    {
      name: "batch_size",
      help: "Batch sizes",
      type: "histogram",
      buckets: [0.5, 1e16, Infinity],
      series: [{ labels: {}, buckets: [1, 2, 3], sum: 20.5, count: 3 }],
    },
    {
      name: "rpc_seconds",
      help: "RPC durations",
      type: "summary",
      series: [{ labels: { service: "x" }, sum: 1e21, count: 1000 }],
    },
  ];
  registry.register({ collect: () => families });
  return registry;
}

const CUSTOM_TEXT = golden`
  # HELP legacy_value Old "quoted" \\ help\nsecond line
  # TYPE legacy_value untyped
  legacy_value{kind="a\"b\\c\nd"} 7
  legacy_value{kind=""} NaN
  # HELP events_total Events seen
  # TYPE events_total counter
  events_total 10
  # HELP retries_total Retries
  # TYPE retries_total counter
  retries_total{op="read"} 0.5
  # HELP queue_depth Queue depth
  # TYPE queue_depth gauge
  queue_depth{queue="q1"} +Inf
  queue_depth{queue="q2"} -Inf
  # HELP batch_size Batch sizes
  # TYPE batch_size histogram
  batch_size_bucket{le="0.5"} 1
  batch_size_bucket{le="1e+16"} 2
  batch_size_bucket{le="+Inf"} 3
  batch_size_sum 20.5
  batch_size_count 3
  # HELP rpc_seconds RPC durations
  # TYPE rpc_seconds summary
  rpc_seconds_sum{service="x"} 1e+21
  rpc_seconds_count{service="x"} 1000
`;

const CUSTOM_OPENMETRICS = golden`
  # HELP legacy_value Old \"quoted\" \\ help\nsecond line
  # TYPE legacy_value unknown
  legacy_value{kind="a\"b\\c\nd"} 7
  legacy_value{kind=""} NaN
  # HELP events Events seen
  # TYPE events counter
  events_total 10
  # HELP retries Retries
  # TYPE retries counter
  retries_total{op="read"} 0.5
  # HELP queue_depth Queue depth
  # TYPE queue_depth gauge
  queue_depth{queue="q1"} +Inf
  queue_depth{queue="q2"} -Inf
  # HELP batch_size Batch sizes
  # TYPE batch_size histogram
  batch_size_bucket{le="0.5"} 1
  batch_size_bucket{le="1e+16"} 2
  batch_size_bucket{le="+Inf"} 3
  batch_size_sum 20.5
  batch_size_count 3
  # HELP rpc_seconds RPC durations
  # TYPE rpc_seconds summary
  rpc_seconds_sum{service="x"} 1e+21
  rpc_seconds_count{service="x"} 1000
  # EOF
`;

test(`golden: every metric type, with a registry prefix, as text 0.0.4 (${runtime})`, async () => {
  assert.equal(await generateLatest(metricsRegistry()), METRICS_TEXT);
  await assertPromtool(METRICS_TEXT);
});

test(`golden: every metric type, with a registry prefix, as OpenMetrics (${runtime})`, async () => {
  assert.equal(await generateLatest(metricsRegistry(), { format: "openmetrics" }), METRICS_OPENMETRICS);
  await assertOpenMetrics(METRICS_OPENMETRICS);
});

test(`golden: custom collector families, untyped included, as text 0.0.4 (${runtime})`, async () => {
  assert.equal(await generateLatest(customRegistry(), { format: "prometheus" }), CUSTOM_TEXT);
  await assertPromtool(CUSTOM_TEXT);
});

test(`golden: custom collector families, untyped as unknown, as OpenMetrics (${runtime})`, async () => {
  assert.equal(await generateLatest(customRegistry(), { format: "openmetrics" }), CUSTOM_OPENMETRICS);
  await assertOpenMetrics(CUSTOM_OPENMETRICS);
});

test("golden: the OpenMetrics parser reads the help text and label values back unescaped", async () => {
  const families = await assertOpenMetrics(CUSTOM_OPENMETRICS);
  assert.equal(families[0].help, 'Old "quoted" \\ help\nsecond line');
  assert.deepEqual(families[0].samples[0][1], { kind: 'a"b\\c\nd' });
  assert.deepEqual(
    families.map((f) => [f.name, f.type]),
    [
      ["legacy_value", "unknown"],
      ["events", "counter"],
      ["retries", "counter"],
      ["queue_depth", "gauge"],
      ["batch_size", "histogram"],
      ["rpc_seconds", "summary"],
    ],
  );
});

test("golden: le values are written identically in both formats", async () => {
  const le = (text: string) => text.split("\n").filter((line) => line.includes("_bucket{"));
  for (const registry of [metricsRegistry, customRegistry]) {
    const text = le(await generateLatest(registry(), { format: "prometheus" }));
    const om = le(await generateLatest(registry(), { format: "openmetrics" }));
    assert.ok(text.length > 0);
    assert.deepEqual(text, om);
  }
});

test("golden: an empty registry is an empty text, and just # EOF in OpenMetrics", async () => {
  assert.equal(await generateLatest(new Registry()), "");
  assert.equal(await generateLatest(new Registry(), { format: "openmetrics" }), "# EOF\n");
  await assertPromtool("");
  await assertOpenMetrics("# EOF\n");
});

test("golden: a metric with labels but no children writes only HELP and TYPE", async () => {
  const registry = new Registry();
  new Gauge({ name: "idle", help: "Nothing yet", labelNames: ["x"], registry });
  const text = golden`
    # HELP idle Nothing yet
    # TYPE idle gauge
  `;
  assert.equal(await generateLatest(registry), text);
  assert.equal(await generateLatest(registry, { format: "openmetrics" }), `${text}# EOF\n`);
  await assertPromtool(text);
  await assertOpenMetrics(`${text}# EOF\n`);
});

test("golden: default labels and label order follow labelNames, not the order given", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "calls_total",
    help: "Calls",
    labelNames: ["b", "a"],
    defaultLabels: { a: "x" },
    registry,
  });
  c.labels({ b: "1" }).inc();
  c.labels({ a: "y", b: "2" }).inc(4);
  const text = golden`
    # HELP calls_total Calls
    # TYPE calls_total counter
    calls_total{b="1",a="x"} 1
    calls_total{b="2",a="y"} 4
  `;
  assert.equal(await generateLatest(registry), text);
  await assertPromtool(text);
});

test("golden: a histogram with a negative bound has no _sum or _count in OpenMetrics, as the spec requires", async () => {
  const registry = new Registry();
  const h = new Histogram({ name: "offset_seconds", help: "Clock offset", buckets: [-1, 0, 1], registry });
  h.observe(-2);
  h.observe(0.5);
  const text = golden`
    # HELP offset_seconds Clock offset
    # TYPE offset_seconds histogram
    offset_seconds_bucket{le="-1.0"} 1
    offset_seconds_bucket{le="0.0"} 1
    offset_seconds_bucket{le="1.0"} 2
    offset_seconds_bucket{le="+Inf"} 2
    offset_seconds_sum -1.5
    offset_seconds_count 2
  `;
  const om = golden`
    # HELP offset_seconds Clock offset
    # TYPE offset_seconds histogram
    offset_seconds_bucket{le="-1.0"} 1
    offset_seconds_bucket{le="0.0"} 1
    offset_seconds_bucket{le="1.0"} 2
    offset_seconds_bucket{le="+Inf"} 2
    # EOF
  `;
  assert.equal(await generateLatest(registry), text);
  assert.equal(await generateLatest(registry, { format: "openmetrics" }), om);
  await assertPromtool(text);
  await assertOpenMetrics(om);
});

test("golden: a negative sum is left out of OpenMetrics (a histogram's _count with it), kept in text", async () => {
  const registry = new Registry();
  const h = new Histogram({ name: "delta", help: "Deltas", buckets: [1], registry });
  h.observe(-4);
  const s = new Summary({ name: "change", help: "Changes", registry });
  s.observe(-4);
  const text = golden`
    # HELP delta Deltas
    # TYPE delta histogram
    delta_bucket{le="1.0"} 1
    delta_bucket{le="+Inf"} 1
    delta_sum -4
    delta_count 1
    # HELP change Changes
    # TYPE change summary
    change_sum -4
    change_count 1
  `;
  const om = golden`
    # HELP delta Deltas
    # TYPE delta histogram
    delta_bucket{le="1.0"} 1
    delta_bucket{le="+Inf"} 1
    # HELP change Changes
    # TYPE change summary
    change_count 1
    # EOF
  `;
  assert.equal(await generateLatest(registry), text);
  assert.equal(await generateLatest(registry, { format: "openmetrics" }), om);
  await assertPromtool(text);
  await assertOpenMetrics(om);
});

test("golden: an empty help text is written as an empty HELP in both formats", async () => {
  const registry = new Registry();
  new Gauge({ name: "quiet", help: "", registry }).set(1);
  const text = "# HELP quiet \n# TYPE quiet gauge\nquiet 1\n";
  assert.equal(await generateLatest(registry), text);
  assert.equal(await generateLatest(registry, { format: "openmetrics" }), `${text}# EOF\n`);
  // promtool's only complaint is its style lint "no help text"; the line parses.
  await assertPromtool(text, { allowLints: [/^quiet no help text$/] });
  const [family] = await assertOpenMetrics(`${text}# EOF\n`);
  assert.equal(family.help, "");
});

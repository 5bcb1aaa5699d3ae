// fromPromClient(): a real prom-client 15 registry (default metrics, counters with and without
// `_total`, a labelled gauge, a labelled histogram, a summary) bridged into a theus registry next
// to theus' own metrics, on Deno, Bun and Node. Its exposition passes promtool and the strict
// OpenMetrics parser, and its samples are prom-client's own, sample by sample, but for the
// differences the bridge documents.

import assert from "node:assert/strict";
import {
  collectDefaultMetrics,
  Counter as PromCounter,
  Gauge as PromGauge,
  Histogram as PromHistogram,
  type OpenMetricsContentType,
  Registry as PromRegistry,
  Summary as PromSummary,
} from "prom-client";
import {
  Counter,
  Gauge,
  generateLatest,
  Histogram,
  type HistogramSeries,
  metricsHandler,
  Registry,
  type SummarySeries,
} from "../mod.ts";
import { fromPromClient, type PromClientMetric, type PromClientRegistry } from "../adapters/prom_client.ts";
import { runtime, test } from "./_harness.ts";
import { parseSamples, type Sample } from "./_samples.ts";
import {
  assertOpenMetrics,
  assertPromtool,
  assertRoundTrip,
  goFloat,
  type ParsedFamily,
} from "./_validate.ts";

// --- fixtures -----------------------------------------------------------------------------

// A label value and a help text that need escaping, to check both writers escape alike.
const AWKWARD = 'a "quoted" \\ path\nnext line';

/** A prom-client registry with the default metrics and one metric of each type, recorded. */
function promRegistry(): PromRegistry {
  const prom = new PromRegistry();
  collectDefaultMetrics({ register: prom });
  const jobs = new PromCounter({
    name: "bridge_jobs_total",
    help: "Jobs run",
    labelNames: ["queue"],
    registers: [prom],
  });
  jobs.inc({ queue: "mail" });
  jobs.inc({ queue: "mail" }, 2.5);
  jobs.inc({ queue: "sms" });
  // Named without `_total`: prom-client writes it `bridge_retries` in text 0.0.4.
  const retries = new PromCounter({ name: "bridge_retries", help: `Retries: ${AWKWARD}`, registers: [prom] });
  retries.inc(4);
  const temperature = new PromGauge({
    name: "bridge_temperature_celsius",
    help: "Room temperature",
    labelNames: ["room", "floor"],
    registers: [prom],
  });
  temperature.set({ room: "hall", floor: 2 }, 21.5); // a number label value
  temperature.set({ room: AWKWARD, floor: -1 }, -3);
  temperature.set({ room: "attic", floor: 3 }, NaN);
  const latency = new PromHistogram({
    name: "bridge_latency_seconds",
    help: "Request latency",
    labelNames: ["route", "code"],
    buckets: [1e-7, 0.005, 0.1, 1, 2.5, 100_000],
    registers: [prom],
  });
  for (const v of [0.001, 0.05, 0.05, 0.7, 3, 200_000]) latency.observe({ route: "/a", code: 200 }, v);
  latency.observe({ route: "/b", code: 500 }, 0.2);
  // A labelled histogram never observed: no series at all.
  new PromHistogram({ name: "bridge_idle_seconds", help: "Idle", labelNames: ["x"], registers: [prom] });
  const payload = new PromSummary({
    name: "bridge_payload_bytes",
    help: "Payload sizes",
    labelNames: ["kind"],
    percentiles: [0.5, 0.9, 0.99],
    registers: [prom],
  });
  for (let i = 1; i <= 100; i++) payload.observe({ kind: "json" }, i * 10);
  payload.observe({ kind: "csv" }, 7);
  return prom;
}

/** A theus registry with theus' own metrics, and prom-client's bridged in. */
function theusRegistry(prom: PromClientRegistry): Registry {
  const registry = new Registry();
  new Counter({ name: "theus_orders_total", help: "Orders", labelNames: ["shop"], registry })
    .labels({ shop: "eu" }).inc(3);
  new Gauge({ name: "theus_queue_depth", help: "Queue depth", registry }).set(7);
  new Histogram({ name: "theus_handler_seconds", help: "Handler time", buckets: [0.1, 1], registry })
    .observe(0.5);
  registry.register(fromPromClient(prom));
  return registry;
}

/** A prom-client registry's metrics as they are now, read once: every scrape sees the same. */
async function frozen(prom: PromRegistry): Promise<PromClientRegistry> {
  const snapshot = structuredClone(await prom.getMetricsAsJSON()) as unknown as PromClientMetric[];
  return { getMetricsAsJSON: () => snapshot };
}

// prom-client names three of its default gauges `..._total`; promtool's lint says so. That is
// about the names prom-client chose, which the bridge keeps, not about what theus writes.
const PROM_CLIENT_NAMES = {
  allowLints: [/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/],
};

// --- comparing expositions ----------------------------------------------------------------

/** A sample's name and labels, label order ignored, `le` and `quantile` compared as numbers. */
function keyOf(sample: Sample): string {
  const labels = Object.entries(sample.labels).map((
    [k, v],
  ) => [k, k === "le" || k === "quantile" ? String(v === "+Inf" ? Infinity : Number(v)) : v]);
  labels.sort(([a], [b]) => (a < b ? -1 : 1));
  return `${sample.name}${JSON.stringify(labels)}`;
}

function samplesOf(text: string, keep: (name: string) => boolean): Map<string, number> {
  const out = new Map<string, number>();
  for (const sample of parseSamples(text)) {
    if (!keep(sample.name)) continue;
    const key = keyOf(sample);
    assert.ok(!out.has(key), `two samples ${key}`);
    out.set(key, sample.value);
  }
  return out;
}

/** `# TYPE` and `# HELP` lines, by family name. */
function comments(text: string, kind: "TYPE" | "HELP"): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = new RegExp(`^# ${kind} (\\S+) (.*)$`).exec(line);
    if (match) out.set(match[1], match[2]);
  }
  return out;
}

const OURS = (name: string) => name.startsWith("bridge_");
const THEIRS = (name: string) => !name.startsWith("theus_");

/** prom-client's 0.0.4 samples as the bridge writes them: a counter named without `_total` gains it. */
function asBridged(samples: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, value] of samples) {
    out.set(
      key.startsWith("bridge_retries[") ? key.replace("bridge_retries[", "bridge_retries_total[") : key,
      value,
    );
  }
  return out;
}

function assertSameSamples(actual: Map<string, number>, expected: Map<string, number>): void {
  const missing = [...expected.keys()].filter((key) => !actual.has(key));
  const extra = [...actual.keys()].filter((key) => !expected.has(key));
  assert.deepEqual({ missing, extra }, { missing: [], extra: [] });
  for (const [key, value] of expected) {
    assert.ok(Object.is(actual.get(key), value), `${key}: bridged ${actual.get(key)}, prom-client ${value}`);
  }
}

/**
 * assertRoundTrip's model of a summary has `_sum` and `_count` only: the quantile samples are
 * checked apart, each against the quantiles of the collected series with the same labels.
 */
function assertRoundTripWithQuantiles(
  families: Awaited<ReturnType<Registry["collect"]>>,
  parsed: readonly ParsedFamily[],
): void {
  const rest = parsed.map((family) =>
    family.type === "summary"
      ? { ...family, samples: family.samples.filter(([name]) => name !== family.name) }
      : family
  );
  assertRoundTrip(families, rest);
  const key = (labels: Record<string, string>) => JSON.stringify(Object.entries(labels).sort());
  let checked = 0;
  for (const family of families) {
    if (family.type !== "summary") continue;
    const samples = parsed.find((f) => f.name === family.name)!.samples.filter(([name]) =>
      name === family.name
    );
    const expected = (family.series as readonly SummarySeries[]).flatMap((series) =>
      (series.quantiles ?? []).map(({ quantile, value }) => [key(series.labels), quantile, value])
    );
    const actual = samples.map(([, labels, value]) => {
      const { quantile, ...rest } = labels;
      return [key(rest), goFloat(quantile), goFloat(value)];
    });
    assert.deepEqual(actual, expected, family.name);
    checked += expected.length;
  }
  assert.ok(checked > 0, "no quantile sample was compared");
}

// --- tests --------------------------------------------------------------------------------

test(`on ${runtime}, prom-client's metrics bridged next to theus' own pass promtool and the OpenMetrics parser`, async () => {
  const prom = promRegistry();
  const registry = theusRegistry(prom);
  const text = await generateLatest(registry);
  await assertPromtool(text, PROM_CLIENT_NAMES);
  await assertPromtool(await generateLatest(theusRegistry(await frozen(prom))), PROM_CLIENT_NAMES);
  // What the parser reads is exactly what was collected: on a snapshot, so that the default
  // metrics hold still between the collection and the exposition.
  const still = theusRegistry(await frozen(prom));
  const families = await still.collect();
  const parsed = await assertOpenMetrics(await generateLatest(still, { format: "openmetrics" }));
  assertRoundTripWithQuantiles(families, parsed);
  const types = Object.fromEntries(parsed.map((f) => [f.name, f.type]));
  assert.deepEqual(
    [
      types.theus_orders,
      types.bridge_jobs,
      types.bridge_retries,
      types.bridge_temperature_celsius,
      types.bridge_latency_seconds,
      types.bridge_idle_seconds,
      types.bridge_payload_bytes,
      types.process_cpu_seconds,
      types.process_start_time_seconds,
    ],
    ["counter", "counter", "counter", "gauge", "histogram", "histogram", "summary", "counter", "gauge"],
  );
  // And the live registry, default metrics moving, is valid OpenMetrics too.
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
});

test("the bridged families have theus' shapes: counters without _total, cumulative buckets ending at +Inf, sum and count, quantiles", async () => {
  const snapshot = await frozen(promRegistry());
  const registry = theusRegistry(snapshot);
  const families = await registry.collect();
  const byName = new Map(families.map((f) => [f.name, f]));
  assert.deepEqual(byName.get("bridge_jobs"), {
    name: "bridge_jobs",
    help: "Jobs run",
    type: "counter",
    series: [{ labels: { queue: "mail" }, value: 3.5 }, { labels: { queue: "sms" }, value: 1 }],
  });
  assert.equal(byName.get("bridge_retries")?.type, "counter");
  assert.ok(!byName.has("bridge_retries_total") && !byName.has("bridge_jobs_total"));
  assert.deepEqual(byName.get("bridge_temperature_celsius")?.series, [
    { labels: { room: "hall", floor: "2" }, value: 21.5 },
    { labels: { room: AWKWARD, floor: "-1" }, value: -3 },
    { labels: { room: "attic", floor: "3" }, value: NaN },
  ]);
  assert.deepEqual(byName.get("bridge_latency_seconds"), {
    name: "bridge_latency_seconds",
    help: "Request latency",
    type: "histogram",
    buckets: [1e-7, 0.005, 0.1, 1, 2.5, 100_000, Infinity],
    series: [
      {
        labels: { route: "/a", code: "200" },
        buckets: [0, 1, 3, 4, 4, 5, 6],
        sum: 0.001 + 0.05 + 0.05 + 0.7 + 3 + 200_000,
        count: 6,
      },
      { labels: { route: "/b", code: "500" }, buckets: [0, 0, 0, 1, 1, 1, 1], sum: 0.2, count: 1 },
    ],
  });
  assert.deepEqual(byName.get("bridge_idle_seconds"), {
    name: "bridge_idle_seconds",
    help: "Idle",
    type: "histogram",
    buckets: [Infinity],
    series: [],
  });
  // The quantiles are prom-client's own, read from its JSON: one value (7) is every quantile.
  const payload = (await snapshot.getMetricsAsJSON()).find((m) => m.name === "bridge_payload_bytes")!;
  const quantilesOf = (kind: string) =>
    payload.values!.filter((v) => v.labels?.kind === kind && v.labels?.quantile !== undefined)
      .map((v) => ({ quantile: v.labels!.quantile as number, value: v.value }));
  assert.deepEqual(quantilesOf("csv"), [{ quantile: 0.5, value: 7 }, { quantile: 0.9, value: 7 }, {
    quantile: 0.99,
    value: 7,
  }]);
  assert.equal(quantilesOf("json").length, 3);
  assert.deepEqual(byName.get("bridge_payload_bytes"), {
    name: "bridge_payload_bytes",
    help: "Payload sizes",
    type: "summary",
    series: [{ labels: { kind: "json" }, sum: 50_500, count: 100, quantiles: quantilesOf("json") }, {
      labels: { kind: "csv" },
      sum: 7,
      count: 1,
      quantiles: quantilesOf("csv"),
    }],
  });
});

test(`on ${runtime}, the bridged samples are prom-client's own, sample by sample, but for the documented differences`, async () => {
  const prom = promRegistry();
  const registry = theusRegistry(prom);
  const theirs = await prom.metrics();
  const ours = await generateLatest(registry);

  // The metrics this test records hold still: every sample equal, the summary's quantiles
  // included, counters' `_total` aside.
  const expected = asBridged(samplesOf(theirs, OURS));
  assertSameSamples(samplesOf(ours, OURS), expected);
  assert.ok(expected.has("bridge_retries_total[]") && expected.has('bridge_jobs_total[["queue","mail"]]'));
  assert.ok(expected.has('bridge_latency_seconds_bucket[["code","200"],["le","Infinity"],["route","/a"]]'));
  assert.ok(expected.has('bridge_payload_bytes_sum[["kind","json"]]'));
  // The quantile samples are among them: prom-client's six, kept with its values.
  const quantileSamples = (text: string) =>
    parseSamples(text).filter((s) => s.name === "bridge_payload_bytes" && "quantile" in s.labels);
  assert.equal(quantileSamples(theirs).length, 6);
  assert.equal(quantileSamples(ours).length, 6);
  assert.ok(expected.has('bridge_payload_bytes[["kind","json"],["quantile","0.99"]]'));
  // `le` is written canonically, where prom-client writes JavaScript's number text.
  assert.match(theirs, /bridge_latency_seconds_bucket\{le="1",route="\/a",code="200"\} 4/);
  assert.match(ours, /bridge_latency_seconds_bucket\{route="\/a",code="200",le="1\.0"\} 4/);
  assert.match(ours, /le="1e-07"/);
  assert.match(ours, /le="100000\.0"/);

  // Types and help texts, escaping included; the counter without `_total` gains it.
  const rename = (name: string) => (name === "bridge_retries" ? "bridge_retries_total" : name);
  for (const kind of ["TYPE", "HELP"] as const) {
    const want = new Map([...comments(theirs, kind)].map(([name, text]) => [rename(name), text]));
    const got = new Map([...comments(ours, kind)].filter(([name]) => THEIRS(name)));
    assert.deepEqual(got, want, kind);
  }
  assert.match(ours, /^# HELP bridge_retries_total Retries: a "quoted" \\\\ path\\nnext line$/m);

  // The default metrics move between two reads: the same families; the values of those that
  // hold still; the same series of those whose label sets do not change.
  const steady = (name: string) =>
    ["process_start_time_seconds", "process_max_fds", "nodejs_version_info"].includes(name);
  assertSameSamples(samplesOf(ours, steady), samplesOf(theirs, steady));
  const spaces = (name: string) => name === "nodejs_heap_space_size_total_bytes";
  assert.deepEqual([...samplesOf(ours, spaces).keys()], [...samplesOf(theirs, spaces).keys()]);
  assert.ok(samplesOf(ours, steady).size >= 2);

  // Each scrape reads prom-client again.
  (prom.getSingleMetric("bridge_retries") as PromCounter).inc();
  assert.match(await generateLatest(registry), /^bridge_retries_total 5$/m);
});

test(`on ${runtime}, metricsHandler serves prom-client's metrics and theus' from one endpoint, in both formats`, async () => {
  const registry = theusRegistry(promRegistry());
  const handler = metricsHandler({ registry, compress: false });
  const text = await handler(new Request("http://localhost/metrics"));
  assert.equal(text.status, 200);
  assert.match(text.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  const body = await text.text();
  assert.match(body, /^theus_orders_total\{shop="eu"\} 3$/m);
  assert.match(body, /^bridge_jobs_total\{queue="mail"\} 3\.5$/m);
  assert.match(body, /^process_cpu_seconds_total \S+$/m);
  await assertPromtool(body, PROM_CLIENT_NAMES);
  const om = await handler(
    new Request("http://localhost/metrics", { headers: { accept: "application/openmetrics-text" } }),
  );
  assert.equal(om.status, 200);
  assert.match(om.headers.get("content-type") ?? "", /^application\/openmetrics-text/);
  const omBody = await om.text();
  assert.match(omBody, /^# TYPE bridge_retries counter\nbridge_retries_total 4$/m);
  assert.match(omBody, /^bridge_payload_bytes_count\{kind="csv"\} 1$/m);
  await assertOpenMetrics(omBody);
});

test("a name both prom-client and theus write fails the collection with an error naming it", async () => {
  // The same counter, moved to theus but not yet removed from prom-client.
  const prom = new PromRegistry();
  new PromCounter({ name: "moved_total", help: "Moved", registers: [prom] }).inc();
  const registry = new Registry();
  new Counter({ name: "moved_total", help: "Moved", registry }).inc();
  registry.register(fromPromClient(prom));
  await assert.rejects(registry.collect(), (error: Error) => {
    assert.ok(error instanceof TypeError);
    assert.match(error.message, /family "moved": its sample name "moved" is also written by family "moved"/);
    return true;
  });
  await assert.rejects(generateLatest(registry), TypeError);
  const response = await metricsHandler({ registry })(new Request("http://localhost/metrics"));
  assert.equal(response.status, 500);
  assert.match(await response.text(), /moved/);

  // A sample name of one (a histogram's _count) that is the name of the other (a gauge).
  const prom2 = new PromRegistry();
  new PromHistogram({ name: "wait_seconds", help: "Wait", registers: [prom2] }).observe(1);
  const registry2 = new Registry();
  new Gauge({ name: "wait_seconds_count", help: "Not a count", registry: registry2 }).set(1);
  registry2.register(fromPromClient(prom2));
  await assert.rejects(
    registry2.collect(),
    /"wait_seconds_count" is also written by family "wait_seconds_count"/,
  );
});

test("fromPromClient() throws a TypeError for anything without getMetricsAsJSON()", async () => {
  const promClient = await import("prom-client");
  const bad: unknown[] = [
    undefined,
    null,
    42,
    "register",
    {},
    { getMetricsAsJSON: "no" },
    promClient, // the module, not its `register`
    new PromCounter({ name: "not_a_registry", help: "x", registers: [] }),
  ];
  for (const value of bad) {
    assert.throws(
      () => fromPromClient(value as PromClientRegistry),
      (error: Error) =>
        error instanceof TypeError &&
        /^fromPromClient\(\) needs a prom-client registry \(an object with a getMetricsAsJSON\(\) method\), got /
          .test(error.message),
    );
  }
  // The module's `register` is a registry.
  assert.equal(typeof fromPromClient(promClient.register).collect, "function");
  // A registry-like object that returns something else fails the collection.
  const registry = new Registry();
  registry.register(fromPromClient({ getMetricsAsJSON: () => ({}) as unknown as PromClientMetric[] }));
  await assert.rejects(registry.collect(), /getMetricsAsJSON\(\) must return an array, got an object/);
});

test("any object with getMetricsAsJSON() is bridged: sync results, numbers as label values, le as text, unknown types as untyped", async () => {
  const metrics: PromClientMetric[] = [
    {
      name: "cluster_requests_total",
      help: "Requests",
      type: "counter",
      values: [{ value: 4, labels: { worker: 1 } }, { value: 6, labels: { worker: 2 } }],
    },
    {
      // As it arrives from a worker over JSON: `le` as text, labels in any order.
      name: "cluster_wait_seconds",
      help: "Wait",
      type: "histogram",
      values: [
        { value: 2, labels: { le: "+Inf", pool: "a" }, metricName: "cluster_wait_seconds_bucket" },
        { value: 1, labels: { pool: "a", le: "0.5" }, metricName: "cluster_wait_seconds_bucket" },
        { value: 1.75, labels: { pool: "a" }, metricName: "cluster_wait_seconds_sum" },
        { value: 2, labels: { pool: "a" }, metricName: "cluster_wait_seconds_count" },
      ],
    },
    { name: "cluster_build", help: "Build", type: "info", values: [{ value: 1, labels: { sha: "abc" } }] },
    { name: "cluster_empty", type: "gauge" },
  ];
  const bridge = fromPromClient({ getMetricsAsJSON: () => metrics });
  assert.equal(bridge.name, undefined);
  const registry = new Registry();
  registry.register(bridge);
  assert.deepEqual(await registry.collect(), [
    {
      name: "cluster_requests",
      help: "Requests",
      type: "counter",
      series: [{ labels: { worker: "1" }, value: 4 }, { labels: { worker: "2" }, value: 6 }],
    },
    {
      name: "cluster_wait_seconds",
      help: "Wait",
      type: "histogram",
      buckets: [0.5, Infinity],
      series: [{ labels: { pool: "a" }, buckets: [1, 2], sum: 1.75, count: 2 }],
    },
    { name: "cluster_build", help: "Build", type: "untyped", series: [{ labels: { sha: "abc" }, value: 1 }] },
    { name: "cluster_empty", help: "", type: "gauge", series: [] },
  ]);
  await assertPromtool(await generateLatest(registry));
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));

  // A histogram whose series have different buckets cannot be one theus family.
  const uneven = fromPromClient({
    getMetricsAsJSON: () => [{
      name: "uneven",
      type: "histogram",
      values: [
        { value: 1, labels: { le: 1, x: "a" }, metricName: "uneven_bucket" },
        { value: 1, labels: { le: 2, x: "b" }, metricName: "uneven_bucket" },
        { value: 1, labels: { x: "a" }, metricName: "uneven_sum" },
        { value: 1, labels: { x: "b" }, metricName: "uneven_sum" },
        { value: 1, labels: { x: "a" }, metricName: "uneven_count" },
        { value: 1, labels: { x: "b" }, metricName: "uneven_count" },
      ],
    }],
  });
  await assert.rejects(
    Promise.resolve(uneven.collect()),
    /Invalid histogram "uneven" from the prom-client registry: its series have different buckets/,
  );
});

test("prom-client's default labels are carried over", async () => {
  const prom = new PromRegistry();
  prom.setDefaultLabels({ service: "api", zone: 3 as unknown as string });
  new PromGauge({ name: "up_ish", help: "Up", labelNames: ["zone"], registers: [prom] }).set(
    { zone: "x" },
    1,
  );
  const registry = new Registry();
  registry.register(fromPromClient(prom));
  const ours = samplesOf(await generateLatest(registry), () => true);
  assertSameSamples(ours, samplesOf(await prom.metrics(), () => true));
  assert.deepEqual([...ours.keys()], ['up_ish[["service","api"],["zone","x"]]']);
});

/** Sample line (exemplar aside) to exemplar text, from an OpenMetrics exposition. */
function exemplarsOf(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(" # {");
    if (line.startsWith("#") || at === -1) continue;
    const [sample] = parseSamples(line.slice(0, at));
    out.set(keyOf(sample), line.slice(at + 3));
  }
  return out;
}

test("exemplars of prom-client's counters and buckets are written in OpenMetrics as prom-client writes them", async () => {
  const prom = new PromRegistry<OpenMetricsContentType>();
  prom.setContentType(PromRegistry.OPENMETRICS_CONTENT_TYPE); // prom-client takes exemplars there only
  const hits = new PromCounter<string>({
    name: "ex_hits_total",
    help: "Hits",
    labelNames: ["path"],
    registers: [prom],
    enableExemplars: true,
  });
  hits.inc({ labels: { path: "/a" }, value: 2, exemplarLabels: { trace_id: "abc", sampled: 1 } });
  hits.inc({ labels: { path: "/c" }, value: 1 }); // no exemplar
  const wait = new PromHistogram<string>({
    name: "ex_wait_seconds",
    help: "Wait",
    labelNames: ["pool"],
    buckets: [0.1, 1],
    registers: [prom],
    enableExemplars: true,
  });
  wait.observe({ labels: { pool: "p" }, value: 0.5, exemplarLabels: { trace_id: "def" } });
  wait.observe({ labels: { pool: "p" }, value: 5, exemplarLabels: { trace_id: "ghi" } });
  wait.observe({ labels: { pool: "q" }, value: 0.05 }); // a series without exemplars
  const theirs = await prom.metrics();
  // A label name OpenMetrics refuses: prom-client writes it, the bridge drops that exemplar.
  hits.inc({ labels: { path: "/b" }, value: 1, exemplarLabels: { "trace-id": "x" } });

  const registry = new Registry();
  registry.register(fromPromClient(prom));
  const ours = await generateLatest(registry, { format: "openmetrics" });
  await assertOpenMetrics(ours);
  const expected = exemplarsOf(theirs);
  assert.equal(expected.size, 3);
  assert.deepEqual(exemplarsOf(ours), expected);
  assert.match(ours, /^ex_hits_total\{path="\/b"\} 1$/m);
  assert.match(ours, /^ex_wait_seconds_bucket\{pool="p",le="\+Inf"\} 2 # \{trace_id="ghi"\} 5 \d+(\.\d+)?$/m);
  // Text 0.0.4 has no exemplars.
  assert.doesNotMatch(await generateLatest(registry), / # \{/);
  const families = await registry.collect();
  const series = families.find((f) => f.name === "ex_wait_seconds")!.series as HistogramSeries[];
  assert.deepEqual(series.map((s) => s.exemplars?.map((e) => e?.labels.trace_id)), [
    [undefined, "def", "ghi"],
    undefined,
  ]);
});

// Hostile label values, help texts and names: every exposition must pass promtool (text) and
// the strict OpenMetrics parser, and the parser must read back exactly what was given.

import assert from "node:assert/strict";
import fc from "fast-check";
import {
  Counter,
  Gauge,
  generateLatest,
  Histogram,
  type MetricFamily,
  metricsHandler,
  Registry,
  Summary,
} from "../mod.ts";
import { runtime, test } from "./_harness.ts";
import {
  assertOpenMetricsAll,
  assertPromtoolAll,
  assertRoundTrip,
  NAME_STYLE_LINTS,
  wellFormed,
} from "./_validate.ts";

const LONG = "x".repeat(50_000) + '"\\\n' + "é".repeat(50_000);

const HOSTILE: readonly [string, string][] = [
  ["empty", ""],
  ["double quote", '"'],
  ["backslash", "\\"],
  ["trailing backslash", "abc\\"],
  ["backslash then n", "\\n"],
  ["backslash then quote", '\\"'],
  ["escaped-looking quote", 'a\\"b'],
  ["line feed", "\n"],
  ["CRLF", "line one\r\nline two"],
  ["lone CR", "a\rb"],
  ["tab", "a\tb"],
  ["hash", "#"],
  ["comment-looking", "# HELP x y"],
  ["braces", "{}"],
  ["equals and comma", 'a=b,c="d"'],
  ["label injection", '",evil="1'],
  ["sample injection", '"} 1\nfake_metric 2\n# EOF'],
  ["exemplar separator", '" # {trace_id="1"} 1'],
  ["spaces", "  leading and trailing  "],
  ["NUL and controls", "\u0000\u0001\u001f\u007f"],
  ["unicode line separators", "\u2028\u2029\u0085"],
  ["BOM", "\uFEFF"],
  ["emoji", "😀🎉"],
  ["astral", "𝄞𠜎"],
  ["combining", "e\u0301"],
  ["RTL", "שלום"],
  ["100k characters", LONG],
];

// A registry exposing `value` as a label value of every type, and as a custom untyped family.
function labelRegistry(value: string): Registry {
  const registry = new Registry({ prefix: "hostile" });
  const labelNames = ["v"];
  new Counter({ name: "calls_total", help: "C", labelNames, registry }).labels({ v: value }).inc(2);
  new Gauge({ name: "level", help: "G", labelNames, registry }).labels({ v: value }).set(-1);
  const h = new Histogram({ name: "latency_seconds", help: "H", labelNames, buckets: [0.5, 1], registry });
  h.labels({ v: value }).observe(0.7);
  new Summary({ name: "payload_bytes", help: "S", labelNames, registry }).labels({ v: value }).observe(3);
  registry.register({
    collect: (): MetricFamily[] => [
      { name: "legacy", help: "U", type: "untyped", series: [{ labels: { v: value, w: value }, value: 1 }] },
    ],
  });
  return registry;
}

function helpRegistry(help: string): Registry {
  const registry = new Registry();
  new Counter({ name: "calls", help, registry }).inc();
  new Gauge({ name: "level", help, registry }).set(1);
  new Histogram({ name: "latency_seconds", help, buckets: [1], registry }).observe(1);
  new Summary({ name: "payload_bytes", help, registry }).observe(1);
  registry.register({
    collect:
      (): MetricFamily[] => [{ name: "legacy", help, type: "untyped", series: [{ labels: {}, value: 1 }] }],
  });
  return registry;
}

// Writes every registry in both formats, validates them all, and compares what the
// OpenMetrics parser read with what the registry collected.
async function checkRegistries(
  registries: readonly Registry[],
  allowLints: readonly RegExp[] = [],
): Promise<void> {
  const collected = await Promise.all(registries.map((r) => r.collect()));
  const texts = await Promise.all(registries.map((r) => generateLatest(r)));
  const oms = await Promise.all(registries.map((r) => generateLatest(r, { format: "openmetrics" })));
  await assertPromtoolAll(texts, { allowLints });
  const parsed = await assertOpenMetricsAll(oms);
  parsed.forEach((families, i) => {
    try {
      assertRoundTrip(collected[i], families);
    } catch (error) {
      throw new Error(
        `Registry #${i}: ${(error as Error).message}\n--- OpenMetrics ---\n${oms[i].slice(0, 2000)}`,
      );
    }
  });
}

test(`hostile label values pass both validators and read back unchanged (${runtime})`, async () => {
  const registries = HOSTILE.map(([, value]) => labelRegistry(value));
  await checkRegistries(registries);
  // The round trip compares every label; check one by hand too.
  const [families] = await assertOpenMetricsAll([
    await generateLatest(labelRegistry('"} 1\nfake 2'), { format: "openmetrics" }),
  ]);
  assert.deepEqual(
    families.map((f) => f.name),
    ["hostile_calls", "hostile_level", "hostile_latency_seconds", "hostile_payload_bytes", "hostile_legacy"],
  );
  assert.deepEqual(families[0].samples, [["hostile_calls_total", { v: '"} 1\nfake 2' }, "2.0"]]);
}, { timeout: 120_000 });

test(`hostile help texts pass both validators and read back unchanged (${runtime})`, async () => {
  // An empty help is valid; promtool's style lint "no help text" is expected for that one.
  const registries = HOSTILE.map(([, help]) => helpRegistry(help));
  await checkRegistries(registries, [/ no help text$/]);
}, { timeout: 120_000 });

test("all hostile values at once, in one series with many labels, read back unchanged", async () => {
  const labels: Record<string, string> = {};
  HOSTILE.forEach(([, value], i) => (labels[`l${i}`] = value));
  const registry = new Registry();
  const g = new Gauge({
    name: "all",
    help: HOSTILE.map(([, v]) => v).join("|"),
    labelNames: Object.keys(labels),
    registry,
  });
  g.labels(labels).set(42);
  await checkRegistries([registry]);
});

test("a lone surrogate becomes U+FFFD on the wire, and the bytes stay valid UTF-8", async () => {
  const registry = new Registry();
  new Gauge({ name: "lone", help: "high \uD800 low \uDC00", labelNames: ["v"], registry })
    .labels({ v: "a\uD83Db\uDE00c" })
    .set(1);
  // A label value is made well formed when it is given; the help keeps its lone surrogates in
  // the string, and every encoder (TextEncoder, Node's Buffer, Deno and Bun file writers)
  // replaces them.
  const om = await generateLatest(registry, { format: "openmetrics" });
  assert.ok(om.includes('lone{v="a\uFFFDb\uFFFDc"} 1\n'), om);
  assert.ok(om.includes("high \uD800 low \uDC00"));
  for (const format of ["text/plain", "application/openmetrics-text"]) {
    const response = await metricsHandler({ registry })(
      new Request("http://x/metrics", { headers: { accept: format } }),
    );
    const bytes = new Uint8Array(await response.arrayBuffer());
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    assert.ok(text.includes('lone{v="a\uFFFDb\uFFFDc"} 1\n'), text);
    assert.ok(text.includes("high \uFFFD low \uFFFD"));
  }
  const [[family]] = await assertOpenMetricsAll([om]);
  assert.equal(family.help, "high \uFFFD low \uFFFD");
  assert.deepEqual(family.samples[0][1], { v: "a\uFFFDb\uFFFDc" });
  assert.equal(wellFormed("a\uD83Db\uDE00c\uD83D\uDE00"), "a\uFFFDb\uFFFDc\uD83D\uDE00");
});

test("label values that differ only in lone surrogates are one series, as they are written", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "lone_total", help: "h", labelNames: ["v"], registry });
  c.labels({ v: "x\uD800" }).inc();
  c.labels({ v: "x\uDFFF" }).inc(2);
  c.labels({ v: "x\uFFFD" }).inc(4);
  // The fast path finds the child again for a value it has seen before.
  c.labels({ v: "x\uD800" }).inc(8);
  assert.equal(
    await generateLatest(registry),
    '# HELP lone_total h\n# TYPE lone_total counter\nlone_total{v="x\uFFFD"} 15\n',
  );
  assert.equal(c.remove({ v: "x\uDBFF" }), true);
  assert.equal(await generateLatest(registry), "# HELP lone_total h\n# TYPE lone_total counter\n");
  const d = new Gauge({
    name: "lone_default",
    help: "h",
    defaultLabels: { v: "\uDC00" },
    labelNames: ["v"],
    registry,
  });
  d.set(1);
  assert.ok((await generateLatest(registry)).includes('lone_default{v="\uFFFD"} 1\n'));
});

test("a custom collector with two series written the same fails the collection", async () => {
  const registry = new Registry();
  registry.register({
    collect: () => [{
      name: "lone_custom",
      help: "h",
      type: "gauge" as const,
      series: [{ labels: { v: "\uD800" }, value: 1 }, { labels: { v: "\uDFFF" }, value: 2 }],
    }],
  });
  await assert.rejects(
    generateLatest(registry),
    /Invalid family "lone_custom" from a custom collector: two series/,
  );
});

test("label names of edge shapes are accepted and exposed validly", async () => {
  const registry = new Registry();
  const names = ["_", "_x", "A9", "a_b_", "le", "quantile", "x".repeat(200)];
  const c = new Counter({ name: "edge_total", help: "Edge", labelNames: names, registry });
  c.labels(Object.fromEntries(names.map((n) => [n, n]))).inc();
  new Histogram({ name: "edge_h", help: "Edge", labelNames: ["quantile", "_"], registry })
    .labels({ quantile: "0.5", _: "" })
    .observe(1);
  new Summary({ name: "edge_s", help: "Edge", labelNames: ["le"], registry }).labels({ le: "x" }).observe(1);
  // promtool's style lints warn about `le` outside histograms and `quantile` outside summaries.
  await checkRegistries([registry], NAME_STYLE_LINTS);
});

test("invalid label names are rejected with a TypeError quoting the name", async () => {
  const invalid = ["a:", "__x", "__", "1a", "a-b", "", "é", "a b", "a\nb"];
  for (const name of invalid) {
    assert.throws(
      () => new Counter({ name: "bad", help: "Bad", labelNames: [name], registry: null }),
      (error: Error) => error instanceof TypeError && error.message.includes(JSON.stringify(name)),
      `label name ${JSON.stringify(name)}`,
    );
    const registry = new Registry();
    registry.register({
      collect: (): MetricFamily[] => [{
        name: "bad",
        help: "",
        type: "gauge",
        series: [{ labels: { [name]: "v" }, value: 1 }],
      }],
    });
    await assert.rejects(registry.collect(), TypeError, `custom label name ${JSON.stringify(name)}`);
  }
  assert.throws(() => new Histogram({ name: "h", help: "H", labelNames: ["le"], registry: null }), /"le"/);
  assert.throws(
    () => new Summary({ name: "s", help: "S", labelNames: ["quantile"], registry: null }),
    /"quantile"/,
  );
});

test("metric names of edge shapes are accepted, invalid ones rejected", async () => {
  const registry = new Registry();
  for (const [i, name] of ["_", ":", "a:b", "_:_", `A${"z".repeat(300)}`].entries()) {
    new Gauge({ name, help: `name ${i}`, registry }).set(i);
  }
  await checkRegistries([registry], NAME_STYLE_LINTS);
  for (const name of ["", "1a", "a-b", "a b", "é", "a\n"]) {
    assert.throws(
      () => new Gauge({ name, help: "", registry: null }),
      (error: Error) => error instanceof TypeError && error.message.includes(JSON.stringify(name)),
    );
  }
});

// ---- property-based: random registries, validated in batches ------------------------------

const SPECIAL = fc.constantFrom(
  '"',
  "\\",
  "\n",
  "\r",
  "\r\n",
  "\t",
  "#",
  "{",
  "}",
  "=",
  ",",
  " ",
  " # ",
  '} 1 # {a="b"} 2',
  "😀",
  "\uD800",
  "\uDFFF",
  "\u2028",
  "\u0085",
  "\u0000",
  'le="1"',
  "\\n",
);
const hostileString = fc
  .array(fc.oneof(SPECIAL, fc.string({ unit: "binary", maxLength: 6 }), fc.string({ maxLength: 6 })), {
    maxLength: 5,
  })
  .map((parts) => parts.join(""));
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,6}$/).filter((n) => !n.startsWith("__"));
const metricBase = fc.stringMatching(/^[a-zA-Z_:][a-zA-Z0-9_:]{0,8}$/);
const anyDouble = fc.double();
const bounds = fc
  .uniqueArray(fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (v === 0 ? 0 : v)), {
    maxLength: 6,
  })
  .map((values) => values.sort((a, b) => a - b));

type Kind =
  | "counter"
  | "gauge"
  | "histogram"
  | "summary"
  | "untyped"
  | "custom_counter"
  | "custom_histogram"
  | "custom_summary";

interface Spec {
  kind: Kind;
  base: string;
  total: boolean;
  help: string;
  labelNames: string[];
  bounds: number[];
  series: { values: string[]; numbers: number[]; count: number }[];
}

const spec: fc.Arbitrary<Spec> = fc
  .record({
    kind: fc.constantFrom<Kind>(
      "counter",
      "gauge",
      "histogram",
      "summary",
      "untyped",
      "custom_counter",
      "custom_histogram",
      "custom_summary",
    ),
    base: metricBase,
    total: fc.boolean(),
    help: hostileString,
    labelNames: fc.uniqueArray(labelName, { maxLength: 3 }),
    bounds,
  })
  .chain((head) => {
    const labelNames = head.labelNames.filter((n) =>
      !((head.kind.endsWith("histogram") && n === "le") ||
        (head.kind.endsWith("summary") && n === "quantile"))
    );
    const series = fc.uniqueArray(
      fc.record({
        values: fc.array(hostileString, { minLength: labelNames.length, maxLength: labelNames.length }),
        numbers: fc.array(anyDouble, { maxLength: 4 }),
        count: fc.nat({ max: 1000 }),
      }),
      // Distinct as written: a lone surrogate becomes U+FFFD, so values differing only there
      // are one series (a custom collector giving both fails, which is tested above).
      {
        selector: (s) => JSON.stringify(s.values.map((v) => v.toWellFormed())),
        minLength: 1,
        maxLength: labelNames.length === 0 ? 1 : 4,
      },
    );
    return series.map((s) => ({ ...head, labelNames, series: s }));
  });

function build(specs: readonly Spec[], prefix: string | undefined): Registry {
  const registry = new Registry({ prefix });
  const custom: MetricFamily[] = [];
  specs.forEach((s, i) => {
    const name = `${s.base}_m${i}`;
    const { help, labelNames } = s;
    const labels = (values: string[]) => Object.fromEntries(labelNames.map((n, j) => [n, values[j]]));
    switch (s.kind) {
      case "counter": {
        const c = new Counter({ name: s.total ? `${name}_total` : name, help, labelNames, registry });
        for (const { values, numbers } of s.series) {
          const child = c.labels(labels(values));
          for (const n of numbers) if (n >= 0) child.inc(n);
        }
        break;
      }
      case "gauge": {
        const g = new Gauge({ name, help, labelNames, registry });
        for (const { values, numbers } of s.series) for (const n of numbers) g.labels(labels(values)).set(n);
        break;
      }
      case "histogram": {
        const h = new Histogram({ name, help, labelNames, buckets: s.bounds, registry });
        for (const { values, numbers } of s.series) {
          const child = h.labels(labels(values));
          for (const n of numbers) if (n === n) child.observe(n);
        }
        break;
      }
      case "summary": {
        const m = new Summary({ name, help, labelNames, registry });
        for (const { values, numbers } of s.series) {
          const child = m.labels(labels(values));
          for (const n of numbers) if (n === n) child.observe(n);
        }
        break;
      }
      case "untyped":
        custom.push({
          name,
          help,
          type: "untyped",
          series: s.series.map(({ values, numbers }) => ({ labels: labels(values), value: numbers[0] ?? 0 })),
        });
        break;
      case "custom_counter":
        // OpenMetrics counters are never negative or NaN: a custom collector must respect that.
        custom.push({
          name: s.total ? `${name}_total` : name,
          help,
          type: "counter",
          series: s.series.map(({ values, numbers }) => ({
            labels: labels(values),
            value: Math.abs(numbers[0] ?? 0) || 0,
          })),
        });
        break;
      case "custom_histogram": {
        const buckets = [...s.bounds, Infinity];
        custom.push({
          name,
          help,
          type: "histogram",
          buckets,
          series: s.series.map(({ values, numbers, count }) => {
            let total = 0;
            const cumulative = buckets.map((_, j) => (total += (count >> j) & 7));
            return { labels: labels(values), buckets: cumulative, sum: numbers[0] ?? 0, count: total };
          }),
        });
        break;
      }
      case "custom_summary":
        custom.push({
          name,
          help,
          type: "summary",
          series: s.series.map(({ values, numbers, count }) => ({
            labels: labels(values),
            sum: numbers[0] ?? 0,
            count,
          })),
        });
        break;
    }
  });
  if (custom.length > 0) registry.register({ collect: () => custom });
  return registry;
}

const registryArb = fc.record({
  prefix: fc.option(metricBase, { nil: undefined }),
  specs: fc.array(spec, { minLength: 1, maxLength: 5 }),
});

test(`property: random registries pass both validators and read back unchanged (${runtime})`, async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(registryArb, { minLength: 200, maxLength: 200 }), async (batch) => {
      await checkRegistries(batch.map(({ specs, prefix }) => build(specs, prefix)), NAME_STYLE_LINTS);
    }),
    // Each run validates 200 registries; shrinking a batch would rerun the validators for
    // minutes, and the failure message already shows the offending text.
    { numRuns: 3, endOnFailure: true },
  );
}, { timeout: 300_000 });

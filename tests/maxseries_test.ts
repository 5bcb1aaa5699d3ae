// maxSeries on the default (memory) backend: validation, the effective cap, the warning, the
// overflow series' identity and how remove(), clear() and partially bound metrics treat it.
// What every backend must do with the values is in conformance.ts.

import assert from "node:assert/strict";
import {
  Counter,
  defaultRegistry,
  Gauge,
  generateLatest,
  Histogram,
  type HistogramSeries,
  type Metric,
  type MetricFamily,
  OVERFLOW_LABEL_VALUE,
  Registry,
  Summary,
  type SummarySeries,
  type ValueSeries,
} from "../mod.ts";
import { test } from "./_harness.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

const OVERFLOW_FAMILY = "theus_series_overflow";
const WARNING = (name: string) => `theus: metric "${name}" has reached its maxSeries`;

/** Runs a body with console.warn captured, and returns what it warned. */
function warningsOf(body: () => void): string[] {
  const warn = console.warn;
  const warnings: string[] = [];
  console.warn = (...args: unknown[]) => {
    warnings.push(args.map(String).join(" "));
  };
  try {
    body();
  } finally {
    console.warn = warn;
  }
  return warnings;
}

async function family(metric: Metric): Promise<MetricFamily> {
  const families = await metric.collect();
  assert.equal(families.length, 1);
  return families[0];
}

/** The label value of `k` of every series of a counter or gauge, with its value, sorted. */
async function valuesByK(metric: Metric): Promise<[string, number][]> {
  const series = (await family(metric)).series as readonly ValueSeries[];
  return series.map((s): [string, number] => [s.labels.k, s.value]).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0
  );
}

/** theus_series_overflow_total{metric} of a registry, or undefined when there is no such series. */
async function overflowCount(registry: Registry, metric: string): Promise<number | undefined> {
  const counter = (await registry.collect()).find((f) => f.name === OVERFLOW_FAMILY);
  const series = (counter?.series as readonly ValueSeries[] | undefined)?.filter((s) =>
    s.labels.metric === metric
  );
  assert.ok((series?.length ?? 0) <= 1);
  return series?.[0]?.value;
}

const INVALID: readonly unknown[] = [0, -1, 1.5, NaN, "3", null, -Infinity, true, 3n, {}];

// --- validation ---

test("maxSeries: every metric type rejects an invalid maxSeries with a TypeError naming maxSeries", () => {
  const types = [Counter, Gauge, Histogram, Summary] as const;
  for (const Type of types) {
    for (const bad of INVALID) {
      const registry = new Registry();
      assert.throws(
        () => new Type({ name: "m_bad", help: "Bad", labelNames: ["k"], maxSeries: bad as number, registry }),
        (e: unknown) => e instanceof TypeError && e.message.includes("maxSeries"),
        `${Type.name} with maxSeries ${String(bad)}`,
      );
      // Nothing was registered: the name is still free.
      assert.equal(registry.get("m_bad"), undefined);
      new Type({ name: "m_bad", help: "Good", labelNames: ["k"], maxSeries: 2, registry });
    }
  }
});

test("maxSeries: whole numbers of at least 1 and Infinity are accepted, on metrics and registries", () => {
  for (const good of [1, 2, 10_000, Number.MAX_SAFE_INTEGER, Infinity]) {
    const registry = new Registry({ maxSeries: good });
    assert.equal(registry.maxSeries, good);
    registry.maxSeries = good;
    assert.equal(registry.maxSeries, good);
    for (const Type of [Counter, Gauge, Histogram, Summary] as const) {
      const metric = new Type({ name: "m_good", help: "Good", maxSeries: good, registry: null });
      assert.equal(metric.maxSeries, good, `${Type.name} with maxSeries ${good}`);
    }
  }
});

test("maxSeries: new Registry() rejects an invalid maxSeries with a TypeError naming maxSeries", () => {
  for (const bad of INVALID) {
    assert.throws(
      () => new Registry({ maxSeries: bad as number }),
      (e: unknown) => e instanceof TypeError && e.message.includes("maxSeries"),
      `new Registry({ maxSeries: ${String(bad)} })`,
    );
  }
});

test("maxSeries: setting registry.maxSeries to an invalid value throws a TypeError and keeps the cap", () => {
  const registry = new Registry({ maxSeries: 5 });
  for (const bad of INVALID) {
    assert.throws(
      () => (registry.maxSeries = bad as number),
      (e: unknown) => e instanceof TypeError && e.message.includes("maxSeries"),
      `registry.maxSeries = ${String(bad)}`,
    );
    assert.equal(registry.maxSeries, 5);
  }
});

// --- the effective cap ---

test("maxSeries: metric.maxSeries is its own cap, else its registry's (read live), else Infinity", () => {
  const registry = new Registry();
  const none = new Counter({ name: "m_none", help: "None", registry });
  const own = new Counter({ name: "m_own", help: "Own", maxSeries: 7, registry });
  const nowhere = new Counter({ name: "m_nowhere", help: "Nowhere", registry: null });
  const ownNowhere = new Counter({ name: "m_own_nowhere", help: "Own", maxSeries: 3, registry: null });
  assert.equal(registry.maxSeries, Infinity);
  assert.equal(none.maxSeries, Infinity);
  assert.equal(own.maxSeries, 7);
  registry.maxSeries = 4;
  assert.equal(none.maxSeries, 4, "the registry's cap applies at once");
  assert.equal(own.maxSeries, 7, "a metric's own cap wins");
  registry.maxSeries = 100;
  assert.equal(own.maxSeries, 7);
  assert.equal(none.maxSeries, 100);
  assert.equal(nowhere.maxSeries, Infinity);
  assert.equal(ownNowhere.maxSeries, 3);
  assert.equal(new Counter({ name: "m_late", help: "Late", registry }).maxSeries, 100);
  assert.equal(
    new Counter({ name: "m_ctor", help: "Ctor", registry: new Registry({ maxSeries: 9 }) }).maxSeries,
    9,
  );
});

test("maxSeries: a metric in no registry does not take the default registry's cap", () => {
  const before = defaultRegistry.maxSeries;
  let inDefault: Counter | undefined;
  try {
    defaultRegistry.maxSeries = 5;
    const nowhere = new Counter({ name: "maxseries_test_nowhere", help: "Nowhere", registry: null });
    inDefault = new Counter({ name: "maxseries_test_default_total", help: "Default" });
    assert.equal(nowhere.maxSeries, Infinity);
    assert.equal(inDefault.maxSeries, 5);
  } finally {
    defaultRegistry.maxSeries = before;
    if (inDefault !== undefined) defaultRegistry.unregister(inDefault);
  }
});

test("maxSeries: children and partially bound metrics report their metric's cap", () => {
  const registry = new Registry({ maxSeries: 6 });
  const m = new Gauge({ name: "m_children", help: "Children", labelNames: ["a", "b"], registry });
  assert.equal(m.labels({ a: "x" }).maxSeries, 6);
  assert.equal(m.labels({ a: "x", b: "y" }).maxSeries, 6);
  registry.maxSeries = 2;
  assert.equal(m.labels({ a: "x", b: "y" }).maxSeries, 2);
});

// --- the overflow series ---

test("maxSeries: past the cap, every new label set gets the one overflow series, at most cap + 1 series", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_cap_total", help: "Cap", labelNames: ["k"], maxSeries: 2, registry });
  const warnings = warningsOf(() => {
    const a = c.labels({ k: "a" });
    const b = c.labels({ k: "b" });
    assert.notEqual(a, b);
    const overflow = c.labels({ k: "c" });
    assert.deepEqual(overflow.labelValues, { k: OVERFLOW_LABEL_VALUE });
    assert.notEqual(overflow, a);
    assert.notEqual(overflow, b);
    for (let i = 0; i < 100; i++) {
      const child = c.labels({ k: `new${i}` });
      assert.equal(child, overflow, `label set new${i}`);
      child.inc();
    }
    assert.equal(c.labels({ k: OVERFLOW_LABEL_VALUE }), overflow);
  });
  assert.equal(warnings.length, 1);
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 100], ["a", 0], ["b", 0]]);
  assert.equal(await overflowCount(registry, "m_cap_total"), 101);
});

test("maxSeries: labels() of a label set kept before the cap returns the same child, in any key order", async () => {
  const registry = new Registry();
  const m = new Counter({
    name: "m_identity",
    help: "Identity",
    labelNames: ["a", "b"],
    maxSeries: 2,
    registry,
  });
  let x!: Counter, y!: Counter;
  warningsOf(() => {
    x = m.labels({ a: "1", b: "2" });
    y = m.labels({ b: "4", a: "3" });
    m.labels({ a: "5", b: "6" }).inc(); // over the cap
    assert.equal(m.labels({ a: "1", b: "2" }), x);
    assert.equal(m.labels({ b: "2", a: "1" }), x);
    assert.equal(m.labels({ a: "3" }).labels({ b: "4" }), y);
    assert.notEqual(m.labels({ a: "1", b: "2" }).labelValues.a, OVERFLOW_LABEL_VALUE);
  });
  x.inc(2);
  y.inc(3);
  assert.equal(await x.get(), 2);
  assert.equal(await y.get(), 3);
  // Existing label sets never count as overflow.
  assert.equal(await overflowCount(registry, "m_identity"), 1);
});

test("maxSeries: each labels() call that gets the overflow series is counted, not each use of it", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_calls", help: "Calls", labelNames: ["k"], maxSeries: 1, registry });
  warningsOf(() => {
    c.labels({ k: "kept" }).inc();
    const held = c.labels({ k: "gone" }); // 1
    held.inc();
    held.inc();
    c.labels({ k: "gone" }).inc(); // 2: the same label set, asked again
    c.labels({ k: "other" }).inc(); // 3
    c.labels({ k: "kept" }).inc(); // a kept label set: not counted
  });
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 4], ["kept", 2]]);
  assert.equal(await overflowCount(registry, "m_calls"), 3);
});

test("maxSeries: the warning is printed once per metric, naming it", () => {
  const registry = new Registry({ maxSeries: 1 });
  const one = new Counter({ name: "m_warn_one_total", help: "One", labelNames: ["k"], registry });
  const two = new Gauge({ name: "m_warn_two", help: "Two", labelNames: ["k"], registry });
  const quiet = new Gauge({
    name: "m_warn_quiet",
    help: "Quiet",
    labelNames: ["k"],
    maxSeries: 50,
    registry,
  });
  const warnings = warningsOf(() => {
    for (let i = 0; i < 20; i++) {
      one.labels({ k: String(i) }).inc();
      two.labels({ k: String(i) }).set(i);
      quiet.labels({ k: String(i) }).set(i);
    }
    one.clear();
    for (let i = 0; i < 5; i++) one.labels({ k: `again${i}` }).inc();
  });
  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.ok(warnings[0].startsWith(WARNING("m_warn_one_total")), warnings[0]);
  assert.ok(warnings[1].startsWith(WARNING("m_warn_two")), warnings[1]);
});

test("maxSeries: nothing is warned or counted while under the cap", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_under", help: "Under", labelNames: ["k"], maxSeries: 3, registry });
  const warnings = warningsOf(() => {
    for (const k of ["a", "b", "c", "a", "b", "c"]) c.labels({ k }).inc();
  });
  assert.deepEqual(warnings, []);
  assert.equal(registry.get("theus_series_overflow_total"), undefined);
  assert.deepEqual(await valuesByK(c), [["a", 2], ["b", 2], ["c", 2]]);
});

test("maxSeries: gauges and summaries overflow too, and every observation is kept", async () => {
  const registry = new Registry({ maxSeries: 1 });
  const g = new Gauge({ name: "m_types_gauge", help: "Gauge", labelNames: ["k"], registry });
  const s = new Summary({ name: "m_types_summary", help: "Summary", labelNames: ["k"], registry });
  warningsOf(() => {
    for (const [k, value] of [["a", 1], ["b", 2], ["c", 4], ["a", 8]] as const) {
      g.labels({ k }).inc(value);
      s.labels({ k }).observe(value);
    }
  });
  assert.deepEqual(await valuesByK(g), [[OVERFLOW_LABEL_VALUE, 6], ["a", 9]]);
  const series = (await family(s)).series as readonly SummarySeries[];
  assert.deepEqual(
    [...series].sort((x, y) => x.sum - y.sum),
    [{ labels: { k: OVERFLOW_LABEL_VALUE }, count: 2, sum: 6 }, { labels: { k: "a" }, count: 2, sum: 9 }],
  );
  assert.equal(await overflowCount(registry, "m_types_gauge"), 2);
  assert.equal(await overflowCount(registry, "m_types_summary"), 2);
});

test("maxSeries: a metric whose default labels bind every label counts that series toward the cap", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "m_defaults",
    help: "Defaults",
    labelNames: ["k"],
    defaultLabels: { k: "d" },
    maxSeries: 2,
    registry,
  });
  warningsOf(() => {
    c.inc();
    c.labels({ k: "a" }).inc();
    c.labels({ k: "b" }).inc();
  });
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 1], ["a", 1], ["d", 1]]);
});

test("maxSeries: partially bound metrics over the cap record into the overflow series, every label __overflow__", async () => {
  const registry = new Registry();
  const h = new Histogram({
    name: "m_partial",
    help: "Partial",
    labelNames: ["a", "b"],
    buckets: [1],
    maxSeries: 2,
    registry,
  });
  const x = h.labels({ a: "x" });
  let overflow!: Histogram;
  const warnings = warningsOf(() => {
    x.labels({ b: "1" }).observe(0.5);
    x.labels({ b: "2" }).observe(0.5);
    overflow = x.labels({ b: "3" });
    overflow.observe(2);
    h.labels({ a: "y" }).labels({ b: "1" }).observe(4);
  });
  assert.equal(warnings.length, 1);
  assert.deepEqual(overflow.labelValues, { a: OVERFLOW_LABEL_VALUE, b: OVERFLOW_LABEL_VALUE });
  assert.ok(overflow.isObservable);
  assert.equal(
    h.labels({ a: "z", b: "9" }),
    overflow,
    "the root and a partial metric share the overflow series",
  );
  assert.deepEqual(x.labelValues, { a: "x" }, "the partial metric keeps its bound labels");
  assert.equal(
    x.labels({ b: "1" }).labelValues.a,
    "x",
    "kept series are still reached through the partial metric",
  );
  const series = (await family(h)).series as readonly HistogramSeries[];
  const byLabels = Object.fromEntries(series.map((s) => [`${s.labels.a}/${s.labels.b}`, [s.count, s.sum]]));
  assert.deepEqual(byLabels, {
    "x/1": [1, 0.5],
    "x/2": [1, 0.5],
    [`${OVERFLOW_LABEL_VALUE}/${OVERFLOW_LABEL_VALUE}`]: [2, 6],
  });
  assert.equal(await overflowCount(registry, "m_partial"), 3);
});

test("maxSeries: a label set of __overflow__ values made before the cap is the one overflow series", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_explicit", help: "Explicit", labelNames: ["k"], maxSeries: 2, registry });
  const explicit = c.labels({ k: OVERFLOW_LABEL_VALUE });
  explicit.inc();
  c.labels({ k: "x" }).inc();
  warningsOf(() => {
    assert.equal(c.labels({ k: "y" }), explicit);
    for (let i = 0; i < 10; i++) c.labels({ k: `n${i}` }).inc();
  });
  const values = await valuesByK(c);
  assert.ok(values.length <= 3, JSON.stringify(values));
  assert.equal(values.filter(([k]) => k === OVERFLOW_LABEL_VALUE).length, 1);
  assert.equal(values.reduce((n, [, value]) => n + value, 0), 12);
});

// --- remove() and clear() ---

test("maxSeries: remove() frees a slot for the next new label set", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_remove", help: "Remove", labelNames: ["k"], maxSeries: 2, registry });
  warningsOf(() => {
    c.labels({ k: "a" }).inc();
    c.labels({ k: "b" }).inc();
    const overflow = c.labels({ k: "c" });
    assert.deepEqual(overflow.labelValues, { k: OVERFLOW_LABEL_VALUE });
    assert.equal(c.remove({ k: "a" }), true);
    const d = c.labels({ k: "d" });
    assert.notEqual(d, overflow);
    assert.deepEqual(d.labelValues, { k: "d" });
    d.inc(2);
    assert.equal(c.labels({ k: "e" }), overflow, "full again");
    assert.equal(c.remove({ k: "nope" }), false);
    assert.equal(c.labels({ k: "f" }), overflow, "removing nothing frees nothing");
  });
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 0], ["b", 1], ["d", 2]]);
});

test("maxSeries: the overflow series can be removed; the next overflow gets a fresh one", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "m_remove_overflow",
    help: "Remove",
    labelNames: ["k"],
    maxSeries: 1,
    registry,
  });
  let first!: Counter;
  warningsOf(() => {
    c.labels({ k: "a" }).inc();
    first = c.labels({ k: "b" });
    first.inc(5);
  });
  assert.equal(c.remove({ k: OVERFLOW_LABEL_VALUE }), true);
  assert.equal(c.remove({ k: OVERFLOW_LABEL_VALUE }), false);
  assert.deepEqual(await valuesByK(c), [["a", 1]]);
  let second!: Counter;
  warningsOf(() => {
    second = c.labels({ k: "c" });
    second.inc(2);
  });
  assert.notEqual(second, first);
  assert.deepEqual(second.labelValues, { k: OVERFLOW_LABEL_VALUE });
  first.inc(100); // a removed child keeps working but is not exported
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 2], ["a", 1]]);
  assert.equal(await overflowCount(registry, "m_remove_overflow"), 2);
});

test("maxSeries: removing the overflow series does not free a slot", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_remove_slot", help: "Remove", labelNames: ["k"], maxSeries: 2, registry });
  warningsOf(() => {
    for (const k of ["a", "b", "c"]) c.labels({ k }).inc();
    c.remove({ k: OVERFLOW_LABEL_VALUE });
    c.labels({ k: "d" }).inc();
  });
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 1], ["a", 1], ["b", 1]]);
});

test("maxSeries: clear() drops the overflow series and frees every slot", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_clear", help: "Clear", labelNames: ["k"], maxSeries: 2, registry });
  let before!: Counter;
  warningsOf(() => {
    for (const k of ["a", "b", "c", "d"]) c.labels({ k }).inc();
    before = c.labels({ k: OVERFLOW_LABEL_VALUE });
  });
  c.clear();
  assert.deepEqual(await valuesByK(c), []);
  let after!: Counter;
  warningsOf(() => {
    c.labels({ k: "x" }).inc();
    c.labels({ k: "y" }).inc();
    after = c.labels({ k: "z" });
    after.inc(3);
  });
  assert.notEqual(after, before);
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 3], ["x", 1], ["y", 1]]);
  assert.equal(await overflowCount(registry, "m_clear"), 3);
});

// --- the registry's cap, changed ---

test("maxSeries: lowering registry.maxSeries below the series held keeps them, and overflows new ones", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "m_lower", help: "Lower", labelNames: ["k"], registry });
  const kept = ["a", "b", "c", "d"].map((k) => c.labels({ k }));
  registry.maxSeries = 2;
  warningsOf(() => {
    assert.deepEqual(["a", "b", "c", "d"].map((k) => c.labels({ k })), kept);
    c.labels({ k: "e" }).inc();
  });
  registry.maxSeries = Infinity;
  c.labels({ k: "f" }).inc();
  assert.deepEqual((await valuesByK(c)).map(([k]) => k), [OVERFLOW_LABEL_VALUE, "a", "b", "c", "d", "f"]);
});

// --- the overflow counter ---

test("maxSeries: a metric in no registry overflows without throwing and is counted nowhere", async () => {
  const name = "maxseries_test_unregistered_total";
  const c = new Counter({ name, help: "Nowhere", labelNames: ["k"], maxSeries: 1, registry: null });
  const warnings = warningsOf(() => {
    for (const k of ["a", "b", "c"]) c.labels({ k }).inc();
  });
  assert.equal(warnings.length, 1);
  assert.ok(warnings[0].startsWith(WARNING(name)), warnings[0]);
  assert.deepEqual(await valuesByK(c), [[OVERFLOW_LABEL_VALUE, 2], ["a", 1]]);
  // The default registry may hold other files' metrics: only its overflow counter is read.
  const counter = defaultRegistry.get("theus_series_overflow_total") as Metric | undefined;
  if (counter !== undefined) {
    const series = (await family(counter)).series;
    assert.deepEqual(series.filter((s) => s.labels.metric === name), []);
  }
});

test("maxSeries: the overflow counter is one counter per registry, labelled with the metric name as given", async () => {
  const registry = new Registry({ prefix: "app", maxSeries: 1 });
  const c = new Counter({ name: "m_given_total", help: "Given", labelNames: ["k"], registry });
  const h = new Histogram({
    name: "m_given_seconds",
    help: "Given",
    labelNames: ["k"],
    buckets: [1],
    registry,
  });
  const other = new Registry();
  const o = new Counter({
    name: "m_given_total",
    help: "Other",
    labelNames: ["k"],
    maxSeries: 1,
    registry: other,
  });
  warningsOf(() => {
    for (const k of ["a", "b", "c"]) {
      c.labels({ k }).inc();
      h.labels({ k }).observe(1);
    }
    for (const k of ["a", "b"]) o.labels({ k }).inc();
  });
  const counter = registry.get("theus_series_overflow_total") as Metric | undefined;
  assert.ok(counter !== undefined);
  assert.equal(counter.type, "counter");
  assert.equal(counter.maxSeries, Infinity, "the overflow counter itself is never capped");
  const families = await registry.collect();
  const overflow = families.find((f) => f.name === `app_${OVERFLOW_FAMILY}`);
  assert.ok(overflow !== undefined, families.map((f) => f.name).join(", "));
  assert.deepEqual(
    (overflow.series as readonly ValueSeries[]).map((s) => [s.labels.metric, s.value]).sort(),
    [["m_given_seconds", 2], ["m_given_total", 2]],
  );
  assert.equal(await overflowCount(other, "m_given_total"), 1);
});

test("maxSeries: the exposition of an overflowing metric and its counter passes promtool and OpenMetrics", async () => {
  const registry = new Registry({ maxSeries: 2 });
  const c = new Counter({ name: "m_expo_total", help: "Requests", labelNames: ["path", "code"], registry });
  const h = new Histogram({
    name: "m_expo_seconds",
    help: "Latency",
    labelNames: ["path"],
    buckets: [1],
    registry,
  });
  warningsOf(() => {
    for (const path of ["/a", "/b", "/c", "/d"]) {
      c.labels({ path, code: "200" }).inc();
      h.labels({ path }).observe(0.5);
    }
  });
  const text = await generateLatest(registry);
  await assertPromtool(text);
  const lines = text.split("\n");
  assert.ok(lines.includes('m_expo_total{path="__overflow__",code="__overflow__"} 2'), text);
  assert.ok(lines.includes('theus_series_overflow_total{metric="m_expo_total"} 2'), text);
  assert.ok(lines.includes('theus_series_overflow_total{metric="m_expo_seconds"} 2'), text);
  assert.ok(lines.includes("# TYPE theus_series_overflow_total counter"), text);
  const parsed = await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  const overflow = parsed.find((f) => f.name === OVERFLOW_FAMILY);
  assert.ok(overflow !== undefined, parsed.map((f) => f.name).join(", "));
  assert.equal(overflow.type, "counter");
  assert.deepEqual(
    overflow.samples.filter(([name]) => name === `${OVERFLOW_FAMILY}_total`).map(([, labels, value]) => [
      labels.metric,
      Number(value),
    ]).sort(),
    [["m_expo_seconds", 2], ["m_expo_total", 2]],
  );
});

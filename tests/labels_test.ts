import assert from "node:assert/strict";
import fc from "fast-check";
import { Counter, Gauge, Histogram, type Metric, type MetricFamily, Summary } from "../mod.ts";
import { test } from "./_harness.ts";

const NONE = { help: "Help", registry: null } as const;

async function series(metric: Metric): Promise<MetricFamily["series"]> {
  const [family] = await metric.collect();
  return family.series;
}

function hasQuoted(...names: string[]): (e: unknown) => boolean {
  return (e) => e instanceof TypeError && names.every((name) => e.message.includes(JSON.stringify(name)));
}

// --- Binding labels ---

test("labels() binds partial labels step by step until the child is complete", async () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b", "c"], ...NONE });
  const first = c.labels({ a: "1" });
  assert.equal(first.isObservable, false);
  assert.deepEqual(first.labelValues, { a: "1" });
  const second = first.labels({ c: "3" });
  assert.equal(second.isObservable, false);
  assert.deepEqual(second.labelValues, { a: "1", c: "3" });
  const child = second.labels({ b: "2" });
  assert.equal(child.isObservable, true);
  assert.deepEqual(child.labelValues, { a: "1", b: "2", c: "3" });
  assert.equal(child, c.labels({ a: "1", b: "2", c: "3" }));
  child.inc();
  assert.deepEqual(await series(c), [{ labels: { a: "1", b: "2", c: "3" }, value: 1 }]);
});

test("labels() lets later values override labels bound earlier", () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b"], ...NONE });
  const partial = c.labels({ a: "1" });
  assert.equal(partial.labels({ a: "2", b: "x" }), c.labels({ a: "2", b: "x" }));
  assert.equal(c.labels({ a: "1", b: "x" }).labels({ b: "y" }), c.labels({ a: "1", b: "y" }));
});

test("labels() returns one cached child per complete label set, whatever the key order", async () => {
  const g = new Gauge({ name: "g", labelNames: ["method", "status"], ...NONE });
  const child = g.labels({ method: "GET", status: "200" });
  assert.equal(g.labels({ status: "200", method: "GET" }), child);
  assert.equal(g.labels({ status: "200" }).labels({ method: "GET" }), child);
  assert.notEqual(g.labels({ method: "GET", status: "500" }), child);
  assert.deepEqual(Object.keys(g.labels({ status: "200", method: "GET" }).labelValues), ["method", "status"]);
  child.set(3);
  g.labels({ status: "200", method: "GET" }).inc();
  assert.deepEqual(await series(g), [
    { labels: { method: "GET", status: "200" }, value: 4 },
    { labels: { method: "GET", status: "500" }, value: 0 },
  ]);
});

test("labels() copies the given object instead of keeping it", () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b"], ...NONE });
  const given = { a: "1", b: "2" };
  const child = c.labels(given);
  given.a = "changed";
  assert.deepEqual(child.labelValues, { a: "1", b: "2" });
  assert.equal(c.labels({ a: "1", b: "2" }), child);
  assert.ok(Object.isFrozen(child.labelValues));
});

test("labels({}) on a metric without labels returns the metric itself", () => {
  const c = new Counter({ name: "c", ...NONE });
  assert.equal(c.labels({}), c);
});

// --- Default labels ---

test("defaultLabels fill the labels that labels() leaves out", async () => {
  const c = new Counter({
    name: "requests_total",
    labelNames: ["method", "status"],
    defaultLabels: { method: "GET" },
    ...NONE,
  });
  c.labels({ status: "500" }).inc(2);
  assert.equal(c.labels({ status: "500" }), c.labels({ method: "GET", status: "500" }));
  assert.deepEqual(await series(c), [{ labels: { method: "GET", status: "500" }, value: 2 }]);
});

test("labels() overrides defaultLabels", async () => {
  const c = new Counter({
    name: "requests_total",
    labelNames: ["method", "status"],
    defaultLabels: { method: "GET" },
    ...NONE,
  });
  const post = c.labels({ method: "POST" });
  assert.equal(post.isObservable, false);
  post.labels({ status: "201" }).inc();
  assert.deepEqual(await series(c), [{ labels: { method: "POST", status: "201" }, value: 1 }]);
});

test("defaultLabels that cover every label make the metric itself observable", async () => {
  const g = new Gauge({ name: "g", labelNames: ["a", "b"], defaultLabels: { b: "2", a: "1" }, ...NONE });
  assert.equal(g.isObservable, true);
  g.set(5);
  assert.equal(g.labels({}), g);
  assert.equal(g.labels({ a: "1", b: "2" }), g);
  assert.deepEqual(await series(g), [{ labels: { a: "1", b: "2" }, value: 5 }]);
});

test("defaultLabels must use label names, with a TypeError naming the stranger", () => {
  assert.throws(
    // @ts-expect-error: a label the metric does not have (typed label names), refused at run time too
    () => new Counter({ name: "c_def", labelNames: ["a"], defaultLabels: { b: "1" }, ...NONE }),
    hasQuoted("b", "c_def"),
  );
  assert.throws(() => new Counter({ name: "c_def", defaultLabels: { a: "1" }, ...NONE }), hasQuoted("a"));
});

test("defaultLabels values must be strings", () => {
  assert.throws(
    () =>
      new Counter({
        name: "c",
        labelNames: ["a"],
        defaultLabels: { a: 1 as unknown as string },
        ...NONE,
      }),
    hasQuoted("a"),
  );
});

// --- Wrong labels ---

test("labels() rejects unknown label names with a TypeError naming the label", () => {
  const c = new Counter({ name: "c_unknown", labelNames: ["a", "b"], ...NONE });
  // @ts-expect-error: a label the metric does not have (typed label names), refused at run time too
  assert.throws(() => c.labels({ zzz: "1" }), hasQuoted("zzz", "c_unknown"));
  // @ts-expect-error: a label the metric does not have (typed label names), refused at run time too
  assert.throws(() => c.labels({ a: "1", zzz: "1" }), hasQuoted("zzz"));
  // @ts-expect-error: a label the metric does not have (typed label names), refused at run time too
  assert.throws(() => c.labels({ a: "1", b: "2", zzz: "1" }), hasQuoted("zzz"));
  const plain = new Counter({ name: "c_plain", ...NONE });
  assert.throws(() => plain.labels({ a: "1" }), hasQuoted("a", "c_plain"));
});

test("label values that are not strings are rejected with a TypeError, not coerced", async () => {
  const c = new Counter({ name: "c_values", labelNames: ["a", "b"], ...NONE });
  for (const bad of [1, 0, undefined, null, {}, [], true, 1n]) {
    const value = bad as unknown as string;
    assert.throws(() => c.labels({ a: value }), hasQuoted("a", "c_values"), `partial, a: ${String(bad)}`);
    assert.throws(() => c.labels({ a: value, b: "2" }), hasQuoted("a"), `complete, a: ${String(bad)}`);
    assert.throws(
      () => c.labels({ a: "1" }).labels({ b: value }),
      hasQuoted("b"),
      `bound, b: ${String(bad)}`,
    );
    assert.throws(() => c.remove({ a: value, b: "2" }), hasQuoted("a"), `remove, a: ${String(bad)}`);
  }
  // Not even when the string form is already a child.
  c.labels({ a: "1", b: "2" }).inc();
  assert.throws(() => c.labels({ a: 1 as unknown as string, b: "2" }), TypeError);
  assert.deepEqual(await series(c), [{ labels: { a: "1", b: "2" }, value: 1 }]);
});

test("labels() rejects a label set that is not an object with a TypeError", () => {
  const c = new Counter({ name: "c", labelNames: ["a"], ...NONE });
  for (const bad of [null, undefined, "a=1", 1, ["1"]]) {
    assert.throws(() => c.labels(bad as unknown as Record<string, string>), TypeError, String(bad));
  }
});

test("observing an incomplete metric throws a TypeError naming the missing labels", () => {
  const labelNames = ["a", "b", "c"];
  const counter = new Counter({ name: "inc_counter", labelNames, ...NONE }).labels({ a: "1" });
  const gauge = new Gauge({ name: "inc_gauge", labelNames, ...NONE }).labels({ a: "1" });
  const histogram = new Histogram({ name: "inc_histogram", labelNames, ...NONE }).labels({ a: "1" });
  const summary = new Summary({ name: "inc_summary", labelNames, ...NONE }).labels({ a: "1" });
  const calls: [string, string, () => unknown][] = [
    ["inc_counter", "inc()", () => counter.inc()],
    ["inc_counter", "get()", () => counter.get()],
    ["inc_counter", "countExceptions()", () => counter.countExceptions(() => 1)],
    ["inc_gauge", "inc()", () => gauge.inc()],
    ["inc_gauge", "dec()", () => gauge.dec()],
    ["inc_gauge", "set()", () => gauge.set(1)],
    ["inc_gauge", "setToCurrentTime()", () => gauge.setToCurrentTime()],
    ["inc_gauge", "trackInProgress()", () => gauge.trackInProgress()],
    ["inc_gauge", "startTimer().stop()", () => gauge.startTimer().stop()],
    ["inc_gauge", "time()", () => gauge.time(() => 1)],
    ["inc_gauge", "get()", () => gauge.get()],
    ["inc_histogram", "observe()", () => histogram.observe(1)],
    ["inc_histogram", "startTimer().stop()", () => histogram.startTimer().stop()],
    ["inc_histogram", "time()", () => histogram.time(() => 1)],
    ["inc_summary", "observe()", () => summary.observe(1)],
    ["inc_summary", "startTimer().stop()", () => summary.startTimer().stop()],
    ["inc_summary", "time()", () => summary.time(() => 1)],
  ];
  for (const [metric, method, call] of calls) {
    assert.throws(
      call,
      (e: unknown) => hasQuoted(metric, "b", "c")(e) && !(e as Error).message.includes('"a"'),
      `${metric} ${method}`,
    );
  }
});

test("observing a labelled metric without labels() throws a TypeError naming every label", () => {
  const c = new Counter({ name: "c", labelNames: ["method", "status"], ...NONE });
  assert.throws(() => c.inc(), hasQuoted("method", "status"));
});

test("label names that Object.prototype also has are bound only by labels()", async () => {
  const c = new Counter({ name: "c_proto", labelNames: ["constructor", "toString"], ...NONE });
  assert.equal(c.isObservable, false);
  assert.throws(() => c.inc(), hasQuoted("constructor", "toString"));
  const partial = c.labels({ toString: "x" });
  assert.equal(partial.isObservable, false);
  assert.throws(() => partial.inc(), hasQuoted("constructor"));
  assert.throws(() => c.remove({ toString: "x" }), hasQuoted("constructor"));
  partial.labels({ constructor: "y" }).inc();
  assert.deepEqual(await series(c), [{ labels: { constructor: "y", toString: "x" }, value: 1 }]);
  const defaulted = new Gauge({ name: "g_proto", labelNames: ["valueOf"], defaultLabels: {}, ...NONE });
  assert.equal(defaulted.isObservable, false);
});

// --- No collisions ---

test("label values with commas, equals signs and quotes never collide", async () => {
  const c = new Counter({ name: "c", labelNames: ["a", "b"], defaultLabels: { b: "" }, ...NONE });
  // Pairs that naive encodings (prom-client joins "name:value" with commas) map to one key.
  const pairs: [Record<string, string>, Record<string, string>][] = [
    [{ a: "1,b=2" }, { a: "1", b: "2" }],
    [{ a: "1,b:2", b: "3" }, { a: "1", b: "2,b:3" }],
    [{ a: "1,b=2", b: "3" }, { a: "1", b: "2,b=3" }],
    [{ a: "x|y", b: "z" }, { a: "x", b: "y|z" }],
    [{ a: '1",b="2', b: "3" }, { a: "1", b: '2",b="3' }],
    [{ a: "\u0000", b: "" }, { a: "", b: "\u0000" }],
  ];
  for (const [left, right] of pairs) {
    assert.notEqual(c.labels(left), c.labels(right), `${JSON.stringify(left)} vs ${JSON.stringify(right)}`);
  }
  c.labels({ a: "1,b=2" }).inc(1);
  c.labels({ a: "1", b: "2" }).inc(10);
  c.labels({ a: "1,b:2", b: "3" }).inc(100);
  c.labels({ a: "1", b: "2,b:3" }).inc(1000);
  const values = new Map(
    (await series(c)).map((s) => [JSON.stringify(s.labels), (s as { value: number }).value]),
  );
  assert.equal(values.get(JSON.stringify({ a: "1,b=2", b: "" })), 1);
  assert.equal(values.get(JSON.stringify({ a: "1", b: "2" })), 10);
  assert.equal(values.get(JSON.stringify({ a: "1,b:2", b: "3" })), 100);
  assert.equal(values.get(JSON.stringify({ a: "1", b: "2,b:3" })), 1000);
  assert.equal(values.size, 12);
});

test("random label sets in random key order map to the same child iff their values are equal", () => {
  const names = ["a", "b", "c"] as const;
  const c = new Counter({ name: "prop", labelNames: [...names], ...NONE });
  // A small alphabet of troublesome characters, so that equal values come up often.
  const value = fc.array(
    fc.constantFrom("", "a", "1", ",", "=", ":", '"', "\\", "\n", "|", "{", "}", " ", "é"),
    {
      maxLength: 3,
    },
  ).map((parts) => parts.join(""));
  const valueSet = fc.record({ a: value, b: value, c: value });
  const order = fc.shuffledSubarray([...names], { minLength: names.length, maxLength: names.length });
  const build = (values: Record<string, string>, keys: readonly string[]) => {
    const labels: Record<string, string> = {};
    for (const key of keys) labels[key] = values[key];
    return labels;
  };
  fc.assert(
    fc.property(valueSet, valueSet, order, order, fc.nat(names.length), (v1, v2, o1, o2, split) => {
      const child1 = c.labels(build(v1, o1));
      const child2 = c.labels(build(v2, o2));
      const equal = names.every((name) => v1[name] === v2[name]);
      assert.equal(child1 === child2, equal);
      assert.equal(c.labels(build(v1, o2)), child1);
      assert.deepEqual(child1.labelValues, { a: v1.a, b: v1.b, c: v1.c });
      // Bound in two steps, in another order: the same child.
      const stepwise = c.labels(build(v1, o2.slice(0, split))).labels(build(v1, o2.slice(split)));
      assert.equal(stepwise, child1);
    }),
    { numRuns: 500 },
  );
});

// --- Names ---

const TYPES = [Counter, Gauge, Histogram, Summary] as const;

test("every metric type rejects invalid metric names with a TypeError quoting the name", () => {
  for (const Type of TYPES) {
    for (const name of ["", "1abc", "a-b", "a b", "a.b", "é", "a\n", "a{b}"]) {
      assert.throws(
        () => new Type({ name, ...NONE }),
        hasQuoted(name),
        `${Type.name} ${JSON.stringify(name)}`,
      );
    }
    assert.throws(() => new Type({ name: 42 as unknown as string, ...NONE }), TypeError);
  }
});

test("metric names may use letters, digits, underscores and colons", () => {
  for (const name of ["a", "A", "_a", ":a", "a:b_c1", "__internal"]) {
    assert.equal(new Counter({ name, ...NONE }).name, name);
  }
});

test("every metric type rejects invalid label names with a TypeError quoting the name", () => {
  for (const Type of TYPES) {
    for (const label of ["", "1a", "a-b", "a:b", "a b", "é"]) {
      assert.throws(
        () => new Type({ name: "m_labels", labelNames: [label], ...NONE }),
        hasQuoted(label, "m_labels"),
        `${Type.name} ${JSON.stringify(label)}`,
      );
    }
    assert.throws(() => new Type({ name: "m", labelNames: [1 as unknown as string], ...NONE }), TypeError);
  }
});

test("label names starting with __ are reserved", () => {
  for (const label of ["__a", "__", "__name__"]) {
    assert.throws(() => new Gauge({ name: "g", labelNames: [label], ...NONE }), hasQuoted(label));
  }
  assert.deepEqual(new Gauge({ name: "g", labelNames: ["_a", "a__b"], ...NONE }).labelNames, ["_a", "a__b"]);
});

test("le is reserved on histograms and quantile on summaries", () => {
  assert.throws(() => new Histogram({ name: "h_le", labelNames: ["le"], ...NONE }), hasQuoted("le", "h_le"));
  assert.throws(
    () => new Summary({ name: "s_q", labelNames: ["quantile"], ...NONE }),
    hasQuoted("quantile", "s_q"),
  );
  assert.deepEqual(new Histogram({ name: "h", labelNames: ["quantile"], ...NONE }).labelNames, ["quantile"]);
  assert.deepEqual(new Summary({ name: "s", labelNames: ["le"], ...NONE }).labelNames, ["le"]);
  assert.deepEqual(new Counter({ name: "c", labelNames: ["le", "quantile"], ...NONE }).labelNames, [
    "le",
    "quantile",
  ]);
  assert.deepEqual(new Gauge({ name: "g", labelNames: ["le", "quantile"], ...NONE }).labelNames, [
    "le",
    "quantile",
  ]);
});

test("duplicate label names are rejected with a TypeError naming the label", () => {
  assert.throws(
    () => new Counter({ name: "c_dup", labelNames: ["a", "b", "a"], ...NONE }),
    hasQuoted("a", "c_dup"),
  );
});

test("labelNames that are not an array are rejected with a TypeError", () => {
  for (const bad of ["a", { a: 1 }, 1, null]) {
    assert.throws(
      () => new Counter({ name: "c", labelNames: bad as unknown as string[], ...NONE }),
      TypeError,
      String(bad),
    );
  }
});

test("options that are not an object, or help that is not a string, are rejected with a TypeError", () => {
  assert.throws(() => new Counter(null as unknown as { name: string; help: string }), TypeError);
  assert.throws(
    () => new Counter({ name: "c_help", help: 1 as unknown as string, registry: null }),
    hasQuoted("c_help"),
  );
});

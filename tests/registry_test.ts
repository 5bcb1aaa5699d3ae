import assert from "node:assert/strict";
import {
  AlreadyRegisteredError,
  type Collector,
  Counter,
  defaultRegistry,
  Gauge,
  generateLatest,
  Histogram,
  type MetricFamily,
  Registry,
  Summary,
} from "../mod.ts";
import { test } from "./_harness.ts";

function names(families: readonly MetricFamily[]): string[] {
  return families.map((family) => family.name);
}

function collector(families: unknown, name?: string): Collector {
  return { ...(name === undefined ? {} : { name }), collect: () => families as MetricFamily[] };
}

function isAlreadyRegistered(existing: Collector): (e: unknown) => boolean {
  return (e) => e instanceof AlreadyRegisteredError && e instanceof Error && e.existing === existing;
}

// --- Where metrics register ---

test("a metric registers in defaultRegistry unless told otherwise", async () => {
  const c = new Counter({ name: "registry_test_default_total", help: "Default" });
  try {
    assert.equal(defaultRegistry.get("registry_test_default_total"), c);
    c.inc(3);
    const text = await generateLatest();
    assert.ok(text.includes("\nregistry_test_default_total 3\n"), text);
  } finally {
    assert.equal(defaultRegistry.unregister(c), true);
  }
  assert.equal(defaultRegistry.get("registry_test_default_total"), undefined);
});

test("a metric with registry: null registers nowhere", () => {
  const c = new Counter({ name: "registry_test_nowhere", help: "Nowhere", registry: null });
  assert.equal(defaultRegistry.get("registry_test_nowhere"), undefined);
  // So another metric may take the name.
  const again = new Counter({ name: "registry_test_nowhere", help: "Nowhere" });
  try {
    assert.equal(defaultRegistry.get("registry_test_nowhere"), again);
    assert.notEqual(again, c);
  } finally {
    defaultRegistry.unregister(again);
  }
});

test("a metric registers in the registry it is given, and only there", async () => {
  const registry = new Registry();
  const g = new Gauge({ name: "registry_test_given", help: "Given", registry });
  assert.equal(registry.get("registry_test_given"), g);
  assert.equal(defaultRegistry.get("registry_test_given"), undefined);
  g.set(2);
  assert.deepEqual(await registry.collect(), [
    { name: "registry_test_given", help: "Given", type: "gauge", series: [{ labels: {}, value: 2 }] },
  ]);
});

// --- register, unregister, get ---

test("Registry.get() finds a metric by its name or by any sample name it writes", () => {
  const registry = new Registry();
  const c = new Counter({ name: "jobs_total", help: "Jobs", registry });
  const h = new Histogram({ name: "latency", help: "Latency", registry });
  const s = new Summary({ name: "size", help: "Size", registry });
  assert.equal(registry.get("jobs"), c);
  assert.equal(registry.get("jobs_total"), c);
  for (const name of ["latency", "latency_bucket", "latency_sum", "latency_count"]) {
    assert.equal(registry.get(name), h, name);
  }
  for (const name of ["size", "size_sum", "size_count"]) assert.equal(registry.get(name), s, name);
  assert.equal(registry.get("missing"), undefined);
});

test("Registry.unregister() frees the names and reports whether the collector was registered", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "x", help: "X", registry });
  assert.equal(registry.unregister(c), true);
  assert.equal(registry.unregister(c), false);
  assert.equal(registry.get("x"), undefined);
  assert.equal(registry.get("x_total"), undefined);
  assert.deepEqual(await registry.collect(), []);
  const g = new Gauge({ name: "x_total", help: "Now a gauge", registry });
  assert.equal(registry.get("x_total"), g);
  assert.throws(() => registry.register(c), isAlreadyRegistered(g));
  registry.unregister(g);
  registry.register(c);
  assert.equal(registry.get("x"), c);
});

test("Registry.register() rejects the same collector twice with AlreadyRegisteredError", () => {
  const registry = new Registry();
  const c = new Counter({ name: "twice", help: "Twice", registry });
  assert.throws(() => registry.register(c), isAlreadyRegistered(c));
  const custom = collector([]);
  registry.register(custom);
  assert.throws(() => registry.register(custom), isAlreadyRegistered(custom));
});

test("a second metric with a taken name throws AlreadyRegisteredError carrying the existing one", () => {
  const registry = new Registry();
  const first = new Counter({ name: "taken", help: "First", registry });
  assert.throws(
    () => new Counter({ name: "taken", help: "Second", registry }),
    (e: unknown) => isAlreadyRegistered(first)(e) && (e as Error).message.includes('"taken"'),
  );
  assert.throws(() => new Gauge({ name: "taken", help: "Gauge", registry }), isAlreadyRegistered(first));
  // The same name in another registry is fine.
  new Counter({ name: "taken", help: "Elsewhere", registry: new Registry() });
});

test("AlreadyRegisteredError lets lazy code reuse the existing metric", () => {
  const registry = new Registry();
  const make = () => {
    try {
      return new Counter({ name: "lazy_total", help: "Lazy", registry });
    } catch (error) {
      if (error instanceof AlreadyRegisteredError) return error.existing as Counter;
      throw error;
    }
  };
  const first = make();
  assert.equal(make(), first);
  assert.equal(new AlreadyRegisteredError("n", first).name, "AlreadyRegisteredError");
});

test("counter x and counter x_total collide, as both expose x_total", () => {
  const registry = new Registry();
  const x = new Counter({ name: "x", help: "X", registry });
  assert.throws(() => new Counter({ name: "x_total", help: "X total", registry }), isAlreadyRegistered(x));
  const other = new Registry();
  const xTotal = new Counter({ name: "x_total", help: "X total", registry: other });
  assert.throws(() => new Counter({ name: "x", help: "X", registry: other }), isAlreadyRegistered(xTotal));
});

test("a gauge named like a counter's sample collides with the counter", () => {
  const registry = new Registry();
  const x = new Counter({ name: "x", help: "X", registry });
  assert.throws(() => new Gauge({ name: "x_total", help: "G", registry }), isAlreadyRegistered(x));
  const other = new Registry();
  const g = new Gauge({ name: "x_total", help: "G", registry: other });
  assert.throws(() => new Counter({ name: "x", help: "X", registry: other }), isAlreadyRegistered(g));
});

test("histogram x collides with gauges x_count, x_sum and x_bucket, in either order", () => {
  for (const sample of ["x_count", "x_sum", "x_bucket"]) {
    const registry = new Registry();
    const h = new Histogram({ name: "x", help: "H", registry });
    assert.throws(() => new Gauge({ name: sample, help: "G", registry }), isAlreadyRegistered(h), sample);
    const other = new Registry();
    const g = new Gauge({ name: sample, help: "G", registry: other });
    assert.throws(
      () => new Histogram({ name: "x", help: "H", registry: other }),
      isAlreadyRegistered(g),
      sample,
    );
  }
});

test("summary x collides with gauges x_count and x_sum", () => {
  for (const sample of ["x_count", "x_sum"]) {
    const registry = new Registry();
    const s = new Summary({ name: "x", help: "S", registry });
    assert.throws(() => new Gauge({ name: sample, help: "G", registry }), isAlreadyRegistered(s), sample);
  }
});

test("Registry.register() rejects an object without collect() with a TypeError", () => {
  const registry = new Registry();
  for (const bad of [null, undefined, {}, { collect: 1 }, "collector"]) {
    assert.throws(() => registry.register(bad as unknown as Collector), TypeError, String(bad));
  }
});

// --- Prefix ---

test("new Registry({ prefix }) prefixes every collected name", async () => {
  const registry = new Registry({ prefix: "shop" });
  new Counter({ name: "orders_total", help: "Orders", registry }).inc(2);
  new Histogram({ name: "latency", help: "Latency", buckets: [1], registry }).observe(0.5);
  registry.register(collector([{ name: "custom", help: "Custom", type: "gauge", series: [] }]));
  assert.deepEqual(names(await registry.collect()), ["shop_orders", "shop_latency", "shop_custom"]);
  assert.equal(
    await generateLatest(registry),
    [
      "# HELP shop_orders_total Orders",
      "# TYPE shop_orders_total counter",
      "shop_orders_total 2",
      "# HELP shop_latency Latency",
      "# TYPE shop_latency histogram",
      'shop_latency_bucket{le="1.0"} 1',
      'shop_latency_bucket{le="+Inf"} 1',
      "shop_latency_sum 0.5",
      "shop_latency_count 1",
      "# HELP shop_custom Custom",
      "# TYPE shop_custom gauge",
      "",
    ].join("\n"),
  );
  // Metrics are found under their own names, without the prefix.
  assert.ok(registry.get("orders_total") !== undefined);
});

test("a registry prefix must be a valid metric name", () => {
  for (const prefix of ["1x", "a-b", "a b"]) {
    assert.throws(
      () => new Registry({ prefix }),
      (e: unknown) => e instanceof TypeError && e.message.includes(prefix),
    );
  }
  assert.equal(new Registry({ prefix: "ok:ns" }).prefix, "ok:ns");
  assert.equal(new Registry().prefix, undefined);
});

// --- Custom collectors ---

test("a custom collector with a sync collect() is collected", async () => {
  const registry = new Registry();
  registry.register(collector([
    {
      name: "temperature",
      help: "Temperature",
      type: "gauge",
      series: [{ labels: { room: "a" }, value: 21.5 }],
    },
  ]));
  assert.deepEqual(await registry.collect(), [
    {
      name: "temperature",
      help: "Temperature",
      type: "gauge",
      series: [{ labels: { room: "a" }, value: 21.5 }],
    },
  ]);
});

test("a custom collector with an async collect() is collected", async () => {
  const registry = new Registry();
  registry.register({
    async collect() {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return [
        { name: "queue", help: "Queue", type: "untyped", series: [{ labels: {}, value: 3 }] },
        {
          name: "wait",
          help: "Wait",
          type: "histogram",
          buckets: [1, Infinity],
          series: [{ labels: {}, buckets: [1, 2], sum: 2.5, count: 2 }],
        },
      ];
    },
  });
  assert.equal(
    await generateLatest(registry),
    [
      "# HELP queue Queue",
      "# TYPE queue untyped",
      "queue 3",
      "# HELP wait Wait",
      "# TYPE wait histogram",
      'wait_bucket{le="1.0"} 1',
      'wait_bucket{le="+Inf"} 2',
      "wait_sum 2.5",
      "wait_count 2",
      "",
    ].join("\n"),
  );
});

test("a custom counter family named x_total is collected as x", async () => {
  const registry = new Registry();
  registry.register(collector([
    { name: "events_total", help: "Events", type: "counter", series: [{ labels: {}, value: 4 }] },
  ]));
  assert.deepEqual(names(await registry.collect()), ["events"]);
  assert.equal(
    await generateLatest(registry),
    "# HELP events_total Events\n# TYPE events_total counter\nevents_total 4\n",
  );
});

test("a named custom collector claims its name", () => {
  const registry = new Registry();
  const custom = collector([], "custom_thing");
  registry.register(custom);
  assert.equal(registry.get("custom_thing"), custom);
  assert.throws(() => new Gauge({ name: "custom_thing", help: "G", registry }), isAlreadyRegistered(custom));
  assert.throws(() => registry.register(collector([], "bad name")), TypeError);
  // Collectors without a name never collide.
  registry.register(collector([]));
  registry.register(collector([]));
});

// [what, the family, a detail the message must quote]
const INVALID_FAMILIES: [string, unknown, string][] = [
  ["a family that is not an object", 42, "expected an object"],
  ["an invalid family name", { name: "bad-name", help: "", type: "gauge", series: [] }, '"bad-name"'],
  ["an unknown type", { name: "f", help: "", type: "meter", series: [] }, '"meter"'],
  ["help that is not a string", { name: "f", help: 1, type: "gauge", series: [] }, "help"],
  ["series that is not an array", { name: "f", help: "", type: "gauge", series: {} }, "series"],
  ["a series without a value", { name: "f", help: "", type: "gauge", series: [{ labels: {} }] }, "value"],
  ["a series without labels", { name: "f", help: "", type: "gauge", series: [{ value: 1 }] }, "labels"],
  [
    "a label value that is not a string",
    { name: "f", help: "", type: "gauge", series: [{ labels: { a: 1 }, value: 1 }] },
    '"a"',
  ],
  [
    "an invalid label name",
    { name: "f", help: "", type: "gauge", series: [{ labels: { "a-b": "1" }, value: 1 }] },
    '"a-b"',
  ],
  [
    "two series with the same labels",
    {
      name: "f",
      help: "",
      type: "gauge",
      series: [{ labels: { a: "1", b: "2" }, value: 1 }, { labels: { b: "2", a: "1" }, value: 2 }],
    },
    "two series",
  ],
  [
    "an le label on a histogram",
    {
      name: "f",
      help: "",
      type: "histogram",
      buckets: [Infinity],
      series: [{ labels: { le: "1" }, buckets: [1], sum: 1, count: 1 }],
    },
    '"le"',
  ],
  [
    "histogram buckets without a trailing Infinity",
    {
      name: "f",
      help: "",
      type: "histogram",
      buckets: [1, 2],
      series: [{ labels: {}, buckets: [1, 1], sum: 1, count: 1 }],
    },
    "Infinity",
  ],
  [
    "histogram buckets out of order",
    {
      name: "f",
      help: "",
      type: "histogram",
      buckets: [2, 1, Infinity],
      series: [{ labels: {}, buckets: [1, 1, 1], sum: 1, count: 1 }],
    },
    "increasing",
  ],
  [
    "a histogram series with the wrong number of bucket counts",
    {
      name: "f",
      help: "",
      type: "histogram",
      buckets: [1, Infinity],
      series: [{ labels: {}, buckets: [1], sum: 1, count: 1 }],
    },
    "bucket",
  ],
  [
    "a summary series without a sum",
    { name: "f", help: "", type: "summary", series: [{ labels: {}, count: 1 }] },
    "sum",
  ],
];

for (const [what, family, detail] of INVALID_FAMILIES) {
  test(`collect() rejects a custom collector's family with ${what}, with a clear TypeError`, async () => {
    const registry = new Registry();
    registry.register(collector([family]));
    await assert.rejects(
      registry.collect(),
      (e: unknown) =>
        e instanceof TypeError && e.message.includes(detail) &&
        // A family with a valid name is named in the message.
        ((family as { name?: unknown }).name !== "f" || e.message.includes('"f"')),
    );
  });
}

test("collect() rejects a custom collector whose collect() returns something other than an array", async () => {
  const registry = new Registry();
  registry.register(collector({ name: "f" }, "not_an_array"));
  await assert.rejects(
    registry.collect(),
    (e: unknown) =>
      e instanceof TypeError && e.message.includes('"not_an_array"') && e.message.includes("array"),
  );
});

test("collect() propagates an error thrown by a custom collector", async () => {
  const registry = new Registry();
  const error = new Error("collector broke");
  registry.register({
    collect: () => {
      throw error;
    },
  });
  await assert.rejects(registry.collect(), (e: unknown) => e === error);
});

// --- Order ---

test("collect() returns families in registration order", async () => {
  const registry = new Registry();
  const c = new Counter({ name: "c_first", help: "C", registry });
  new Gauge({ name: "a_second", help: "A", registry });
  registry.register(collector([
    { name: "custom_one", help: "", type: "gauge", series: [] },
    { name: "custom_two", help: "", type: "gauge", series: [] },
  ]));
  new Summary({ name: "b_fourth", help: "B", registry });
  assert.deepEqual(names(await registry.collect()), [
    "c_first",
    "a_second",
    "custom_one",
    "custom_two",
    "b_fourth",
  ]);
  registry.unregister(c);
  registry.register(c);
  assert.deepEqual(names(await registry.collect()), [
    "a_second",
    "custom_one",
    "custom_two",
    "b_fourth",
    "c_first",
  ]);
});

test("collect() includes labelled metrics without children as empty families", async () => {
  const registry = new Registry();
  new Counter({ name: "empty", help: "Empty", labelNames: ["a"], registry });
  assert.deepEqual(await registry.collect(), [{ name: "empty", help: "Empty", type: "counter", series: [] }]);
});

test("Registry.collect() rejects custom families that the strict OpenMetrics parser would reject", async () => {
  const cases: [string, MetricFamily][] = [
    ["counter values must be >= 0", {
      name: "neg",
      help: "h",
      type: "counter",
      series: [{ labels: {}, value: -1 }],
    }],
    ["counter values must be >= 0", {
      name: "nan",
      help: "h",
      type: "counter",
      series: [{ labels: {}, value: NaN }],
    }],
    ["never decreasing", {
      name: "dec",
      help: "h",
      type: "histogram",
      buckets: [1, Infinity],
      series: [{ labels: {}, buckets: [3, 2], sum: 1, count: 2 }],
    }],
    ["count must equal the +Inf bucket", {
      name: "cnt",
      help: "h",
      type: "histogram",
      buckets: [1, Infinity],
      series: [{ labels: {}, buckets: [1, 2], sum: 1, count: 5 }],
    }],
  ];
  for (const [message, family] of cases) {
    const registry = new Registry();
    registry.register({ collect: () => [family] });
    await assert.rejects(registry.collect(), (error: Error) => {
      assert.ok(error instanceof TypeError, `${family.name}: ${error}`);
      assert.ok(error.message.includes(message), `${family.name}: ${error.message}`);
      return true;
    });
  }
});

test("Registry.collect() rejects two families that write the same sample name", async () => {
  const registry = new Registry();
  new Counter({ name: "m", help: "h", registry });
  registry.register({
    collect: () => [{ name: "m_total", help: "h", type: "gauge", series: [{ labels: {}, value: 1 }] }],
  });
  await assert.rejects(registry.collect(), /sample name "m_total" is also written by family "m"/);
  const twice = new Registry();
  const family: MetricFamily = { name: "g", help: "h", type: "gauge", series: [] };
  twice.register({ collect: () => [family] });
  twice.register({ collect: () => [family] });
  await assert.rejects(twice.collect(), /sample name "g" is also written by family "g"/);
});

test("a large family is collected in slices: the event loop gets turns, and every series comes once, in order", async () => {
  const registry = new Registry();
  const counter = new Counter({ name: "big_total", help: "Big", labelNames: ["a", "b"], registry });
  const n = 200_000;
  for (let k = 0; k < n; k++) counter.labels({ a: String(Math.floor(k / 1000)), b: String(k % 1000) }).inc(k);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  let families: MetricFamily[];
  try {
    families = await registry.collect();
  } finally {
    clearInterval(timer);
  }
  assert.ok(ticks > 0, "the timer never fired while 200,000 series were collected");
  const series = families[0].series as { labels: Record<string, string>; value: number }[];
  assert.equal(series.length, n);
  for (let k = 0; k < n; k += 997) {
    assert.deepEqual(series[k], {
      labels: { a: String(Math.floor(k / 1000)), b: String(k % 1000) },
      value: k,
    });
  }
  assert.deepEqual(series[n - 1].labels, { a: "199", b: "999" });
});

test("generateLatest() writes a large family a part at a time: one header, every series once, in order", async () => {
  const registry = new Registry();
  const counter = new Counter({ name: "parts_total", help: "Parts", labelNames: ["k"], registry });
  const histogram = new Histogram({
    name: "parts_seconds",
    help: "Parts",
    labelNames: ["k"],
    buckets: [1],
    registry,
  });
  const n = 20_000; // past the size at which a family is written in parts
  for (let k = 0; k < n; k++) {
    counter.labels({ k: String(k) }).inc(k);
    histogram.labels({ k: String(k) }).observe(k % 2);
  }
  const text = await generateLatest(registry);
  const counterLines = Array.from({ length: n }, (_, k) => `parts_total{k="${k}"} ${k}`);
  const histogramLines = Array.from({ length: n }, (_, k) => [
    `parts_seconds_bucket{k="${k}",le="1.0"} 1`,
    `parts_seconds_bucket{k="${k}",le="+Inf"} 1`,
    `parts_seconds_sum{k="${k}"} ${k % 2}`,
    `parts_seconds_count{k="${k}"} 1`,
  ]).flat();
  const expected = [
    "# HELP parts_total Parts",
    "# TYPE parts_total counter",
    ...counterLines,
    "# HELP parts_seconds Parts",
    "# TYPE parts_seconds histogram",
    ...histogramLines,
    "",
  ];
  // Line by line: a failure names the first line that differs, not a diff of a megabyte.
  const lines = text.split("\n");
  const first = expected.findIndex((line, i) => lines[i] !== line);
  assert.equal(
    first,
    -1,
    `line ${first}: ${JSON.stringify(lines[first])}, expected ${JSON.stringify(expected[first])}`,
  );
  assert.equal(lines.length, expected.length);
});

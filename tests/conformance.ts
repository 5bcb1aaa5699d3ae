// The conformance suite every backend passes: the same metric behaviour, collection and
// exposition whatever stores the values. Written against the public API only; values may be
// read asynchronously, so every get() is awaited and series are compared in a fixed order.
//
//   conformance("memory", async () => {
//     await loadBackend({ backend: "memory" });
//     return { registry: new Registry() };
//   });

import assert from "node:assert/strict";
import {
  Counter,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  type HistogramSeries,
  type Labels,
  type MetricFamily,
  OVERFLOW_LABEL_VALUE,
  type Registry,
  Summary,
  type SummarySeries,
  type ValueSeries,
} from "../mod.ts";
import { test } from "./_harness.ts";
import { find, httpLabels, valueOf, warningsOf } from "./_samples.ts";
import { instrument } from "../adapters/http.ts";

/** What a backend's setup gives each test. */
export interface ConformanceContext {
  /** An empty registry; the suite creates its metrics in it, after setup. */
  registry: Registry;
  /** Undoes the setup: restores the memory backend, drops keys, closes clients. */
  cleanup?(): Promise<void>;
}

/** Sets up the backend for one test: selects it (loadBackend) and returns an empty registry. */
export type ConformanceSetup = () => Promise<ConformanceContext>;

type Body = (registry: Registry) => Promise<void>;

function sortKey(labels: Labels): string {
  return JSON.stringify(Object.keys(labels).sort().map((name) => [name, labels[name]]));
}

/** The series in a fixed order, so backends may return them in any order. */
function sortSeries<S extends { labels: Labels }>(series: readonly S[]): S[] {
  return [...series].sort((a, b) => {
    const [x, y] = [sortKey(a.labels), sortKey(b.labels)];
    return x < y ? -1 : x > y ? 1 : 0;
  });
}

function sorted(families: readonly MetricFamily[]): MetricFamily[] {
  return families.map((family) =>
    ({ ...family, series: sortSeries<{ labels: Labels }>(family.series) }) as unknown as MetricFamily
  );
}

async function collectOne(registry: Registry, name: string): Promise<MetricFamily> {
  const family = (await registry.collect()).find((f) => f.name === name);
  assert.ok(family !== undefined, `family "${name}" was not collected`);
  return sorted([family])[0];
}

/** The HELP and TYPE lines of each family, then its sample lines sorted. */
function normalized(text: string): string[] {
  const out: string[] = [];
  let samples: string[] = [];
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") {
      out.push(...samples.sort());
      samples = [];
      out.push(line);
    } else {
      samples.push(line);
    }
  }
  return [...out, ...samples.sort()];
}

/** The value of theus_series_overflow_total{metric}, or undefined when there is no such series. */
async function overflowCount(registry: Registry, metric: string): Promise<number | undefined> {
  const family = (await registry.collect()).find((f) => f.name === "theus_series_overflow");
  if (family === undefined) return undefined;
  assert.equal(family.type, "counter");
  const series = (family.series as readonly ValueSeries[]).filter((s) => s.labels.metric === metric);
  assert.ok(series.length <= 1, `${series.length} series for metric "${metric}"`);
  return series[0]?.value;
}

/** [label value of k, value] of every series of a counter or gauge family, in label order. */
function valuesByK(family: MetricFamily): [string, number][] {
  return (family.series as readonly ValueSeries[]).map((s) => [s.labels.k, s.value]);
}

/**
 * Throws unless each quantile of a series is within 1 % of the exact one of `values`: the value
 * of rank floor(q * (n - 1)) among them sorted ascending.
 */
function assertQuantiles(
  series: SummarySeries,
  ranks: readonly number[],
  values: readonly number[],
  what: string,
): void {
  const sorted = [...values].sort((a, b) => a - b);
  assert.deepEqual(series.quantiles?.map((q) => q.quantile), ranks, what);
  for (const { quantile, value } of series.quantiles!) {
    const exact = sorted[Math.floor(quantile * (sorted.length - 1))];
    const error = Math.abs(value - exact) / Math.abs(exact);
    assert.ok(error <= 0.01, `${what}, p${quantile * 100}: exact ${exact}, got ${value}`);
  }
}

/**
 * Registers the conformance tests for one backend.
 *
 * @param name The backend's name, prefixed to every test name.
 * @param setup Selects the backend and returns an empty registry; called once per test.
 */
export function conformance(name: string, setup: ConformanceSetup): void {
  const check = (title: string, body: Body) =>
    test(`${name}: ${title}`, async () => {
      const context = await setup();
      try {
        await body(context.registry);
      } finally {
        await context.cleanup?.();
      }
    });

  // --- Counter ---

  check("Counter.get() reads 0, then every increment", async (registry) => {
    const c = new Counter({ name: "conf_counter_basic_total", help: "Basic", registry });
    assert.equal(await c.get(), 0);
    c.inc();
    c.inc(0.5);
    c.inc(0.25);
    assert.equal(await c.get(), 1.75);
    c.inc(10);
    assert.equal(await c.get(), 11.75);
  });

  check("Counter.inc() rejects negative values and leaves the stored value alone", async (registry) => {
    const c = new Counter({ name: "conf_counter_negative", help: "Negative", registry });
    c.inc(2);
    assert.throws(() => c.inc(-1), RangeError);
    assert.equal(await c.get(), 2);
  });

  check("Counter.inc() folds many updates into the right total", async (registry) => {
    const c = new Counter({ name: "conf_counter_many", help: "Many", labelNames: ["i"], registry });
    for (let i = 0; i < 1000; i++) c.labels({ i: String(i % 4) }).inc();
    for (const i of ["0", "1", "2", "3"]) assert.equal(await c.labels({ i }).get(), 250);
  });

  check("Counter.countExceptions() counts sync throws and async rejections", async (registry) => {
    const c = new Counter({ name: "conf_counter_exceptions", help: "Exceptions", registry });
    assert.throws(() =>
      c.countExceptions(() => {
        throw new Error("sync");
      }), /sync/);
    await assert.rejects(
      c.countExceptions(() => Promise.reject(new Error("async"))),
      /async/,
    );
    assert.equal(c.countExceptions(() => "fine"), "fine");
    assert.equal(await c.get(), 2);
  });

  check("Counter children are collected with their labels", async (registry) => {
    const c = new Counter({
      name: "conf_counter_children_total",
      help: "Children",
      labelNames: ["method", "status"],
      defaultLabels: { method: "GET" },
      registry,
    });
    c.labels({ status: "200", method: "GET" }).inc(3);
    c.labels({ status: "500" }).inc();
    c.labels({ method: "POST" }).labels({ status: "201" }).inc(2);
    assert.deepEqual(await collectOne(registry, "conf_counter_children"), {
      name: "conf_counter_children",
      help: "Children",
      type: "counter",
      series: [
        { labels: { method: "GET", status: "200" }, value: 3 },
        { labels: { method: "GET", status: "500" }, value: 1 },
        { labels: { method: "POST", status: "201" }, value: 2 },
      ],
    });
  });

  // --- Gauge ---

  check("Gauge.inc(), dec() and set() are read back", async (registry) => {
    const g = new Gauge({ name: "conf_gauge_basic", help: "Basic", registry });
    assert.equal(await g.get(), 0);
    g.inc(5);
    g.dec(1.5);
    assert.equal(await g.get(), 3.5);
    g.set(-2);
    assert.equal(await g.get(), -2);
    g.inc();
    g.dec(0.25);
    assert.equal(await g.get(), -1.25);
    g.set(7);
    g.set(8);
    assert.equal(await g.get(), 8);
  });

  check("Gauge.setToCurrentTime() stores the Unix time in seconds", async (registry) => {
    const g = new Gauge({ name: "conf_gauge_time", help: "Time", registry });
    const before = Date.now() / 1000;
    g.setToCurrentTime();
    const after = Date.now() / 1000;
    const value = await g.get();
    assert.ok(value >= before - 0.001 && value <= after + 0.001, `${value} not in [${before}, ${after}]`);
  });

  check("Gauge.trackInProgress() is undone at the end of a using block, even on throw", async (registry) => {
    const g = new Gauge({ name: "conf_gauge_inprogress", help: "In progress", registry });
    {
      using _ = g.trackInProgress();
      assert.equal(await g.get(), 1);
    }
    assert.throws(() => {
      using _ = g.trackInProgress();
      throw new Error("boom");
    }, /boom/);
    assert.equal(await g.get(), 0);
  });

  check("Gauge.startTimer() and Gauge.time() store a plausible duration", async (registry) => {
    const g = new Gauge({ name: "conf_gauge_timer", help: "Timer", labelNames: ["kind"], registry });
    const timer = g.labels({ kind: "timer" });
    {
      using _ = timer.startTimer();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const timed = g.labels({ kind: "time" });
    await timed.time(() => new Promise((resolve) => setTimeout(resolve, 25)));
    for (const child of [timer, timed]) {
      const seconds = await child.get();
      assert.ok(seconds >= 0.015 && seconds < 5, `got ${seconds}`);
    }
  });

  // --- Histogram ---

  check("Histogram.observe() fills the buckets, sum and count", async (registry) => {
    const h = new Histogram({
      name: "conf_histogram_basic",
      help: "Basic",
      buckets: [0.25, 1, 10],
      registry,
    });
    // Values on a bound count in that bound's bucket; the sums are exact in binary.
    for (const value of [0.0625, 0.25, 0.5, 1, 20, -2]) h.observe(value);
    assert.deepEqual(await collectOne(registry, "conf_histogram_basic"), {
      name: "conf_histogram_basic",
      help: "Basic",
      type: "histogram",
      buckets: [0.25, 1, 10, Infinity],
      series: [{ labels: {}, buckets: [3, 5, 5, 6], sum: 19.8125, count: 6 }],
    });
  });

  check("Histogram children keep their own buckets", async (registry) => {
    const h = new Histogram({
      name: "conf_histogram_children",
      help: "Children",
      labelNames: ["route"],
      buckets: [1],
      registry,
    });
    h.labels({ route: "/a" }).observe(0.5);
    h.labels({ route: "/a" }).observe(2);
    h.labels({ route: "/b" }).observe(4);
    assert.deepEqual((await collectOne(registry, "conf_histogram_children")).series, [
      { labels: { route: "/a" }, buckets: [1, 2], sum: 2.5, count: 2 },
      { labels: { route: "/b" }, buckets: [0, 1], sum: 4, count: 1 },
    ]);
  });

  check("Histogram.startTimer() and Histogram.time() observe plausible durations", async (registry) => {
    const h = new Histogram({ name: "conf_histogram_timer", help: "Timer", buckets: [0.01, 5], registry });
    {
      using _ = h.startTimer();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await h.time(() => new Promise((resolve) => setTimeout(resolve, 25)));
    assert.throws(() =>
      h.time(() => {
        throw new Error("boom");
      }), /boom/);
    const [series] = (await collectOne(registry, "conf_histogram_timer"))
      .series as readonly HistogramSeries[];
    assert.equal(series.count, 3);
    assert.equal(series.buckets[2], 3);
    assert.ok(series.buckets[1] >= 2, `buckets ${series.buckets}`);
    assert.ok(series.sum >= 0.03 && series.sum < 10, `sum ${series.sum}`);
  });

  // --- Summary ---

  check("Summary.observe() adds to the count and the sum", async (registry) => {
    const s = new Summary({ name: "conf_summary_basic", help: "Basic", labelNames: ["a"], registry });
    s.labels({ a: "x" }).observe(1.5);
    s.labels({ a: "x" }).observe(2.5);
    s.labels({ a: "y" }).observe(-1);
    assert.deepEqual(await collectOne(registry, "conf_summary_basic"), {
      name: "conf_summary_basic",
      help: "Basic",
      type: "summary",
      series: [
        { labels: { a: "x" }, count: 2, sum: 4 },
        { labels: { a: "y" }, count: 1, sum: -1 },
      ],
    });
  });

  check("Summary.time() observes sync and async durations", async (registry) => {
    const s = new Summary({ name: "conf_summary_timer", help: "Timer", registry });
    assert.equal(s.time(() => 1), 1);
    assert.equal(await s.time(() => new Promise((resolve) => setTimeout(() => resolve(2), 25))), 2);
    const [series] = (await collectOne(registry, "conf_summary_timer")).series as readonly SummarySeries[];
    assert.equal(series.count, 2);
    assert.ok(series.sum >= 0.015 && series.sum < 5, `sum ${series.sum}`);
  });

  // --- Summary quantiles ---

  check("Summary quantiles: within 1 % of the exact ones; count and sum exact", async (registry) => {
    const ranks = [0.5, 0.9, 0.99];
    const s = new Summary({ name: "conf_quantiles", help: "Quantiles", quantiles: ranks, registry });
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    for (const value of values) s.observe(value);
    await flush();
    const [series] = (await collectOne(registry, "conf_quantiles")).series as readonly SummarySeries[];
    assert.deepEqual([series.labels, series.count, series.sum], [{}, 1000, 500500]);
    assertQuantiles(series, ranks, values, "1..1000");
    const text = await generateLatest(registry);
    for (const { quantile, value } of series.quantiles!) {
      assert.equal(valueOf(text, "conf_quantiles", { quantile: String(quantile) }), value, text);
    }
  });

  check("Summary quantiles: children apart; remove() and reset() drop them", async (registry) => {
    const s = new Summary({
      name: "conf_quantiles_children",
      help: "Children",
      labelNames: ["k"],
      quantiles: [0.5, 0.9],
      registry,
    });
    const a = Array.from({ length: 100 }, (_, i) => (i + 1) / 64);
    const b = Array.from({ length: 100 }, (_, i) => 1000 + i);
    for (const value of a) s.labels({ k: "a" }).observe(value);
    for (const value of b) s.labels({ k: "b" }).observe(value);
    await flush();
    const byK = async () =>
      new Map(
        ((await collectOne(registry, "conf_quantiles_children")).series as readonly SummarySeries[])
          .map((series) => [series.labels.k, series]),
      );
    let series = await byK();
    assert.deepEqual([...series.keys()], ["a", "b"]);
    assertQuantiles(series.get("a")!, [0.5, 0.9], a, "a");
    assertQuantiles(series.get("b")!, [0.5, 0.9], b, "b");
    assert.equal(series.get("a")!.count, 100);

    assert.equal(s.remove({ k: "a" }), true);
    await flush();
    assert.deepEqual([...(await byK()).keys()], ["b"]);
    s.labels({ k: "a" }).observe(5); // a fresh series: nothing of the removed one
    await flush();
    series = await byK();
    assert.deepEqual([series.get("a")!.count, series.get("a")!.sum], [1, 5]);
    assertQuantiles(series.get("a")!, [0.5, 0.9], [5], "a after remove()");

    s.reset();
    await flush();
    assert.deepEqual((await collectOne(registry, "conf_quantiles_children")).series, []);
    s.labels({ k: "b" }).observe(3);
    await flush();
    series = await byK();
    assert.deepEqual([...series.keys()], ["b"]);
    assert.deepEqual([series.get("b")!.count, series.get("b")!.sum], [1, 3]);
    assertQuantiles(series.get("b")!, [0.5, 0.9], [3], "b after reset()");
  });

  check(
    "Summary quantiles: on a shared backend, another registry's summary of the same name adds its observations",
    async (registry) => {
      const name = "conf_quantiles_fleet";
      const ranks = [0.1, 0.5, 0.9];
      // Both write every bucket (1..1000), the other many times more at the top: the union's
      // quantiles are far from either's own.
      const mine = Array.from({ length: 1000 }, (_, i) => i + 1);
      const theirs = mine.flatMap((value) => value > 900 ? Array(9).fill(value) : [value]);
      const ours = new Summary({ name, help: "Fleet", quantiles: ranks, registry });
      // Another registry with the same summary: on a shared backend it writes to the same store.
      const other = new (registry.constructor as new () => Registry)();
      const others = new Summary({ name, help: "Fleet", quantiles: ranks, registry: other });
      for (const value of mine) ours.observe(value);
      for (const value of theirs) others.observe(value);
      await flush();
      const [seen] = (await collectOne(registry, name)).series as readonly SummarySeries[];
      const shared = seen.count === mine.length + theirs.length;
      assert.ok(shared || seen.count === mine.length, `count ${seen.count}`);
      const union = [...mine, ...theirs];
      const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
      assert.equal(seen.sum, sum(shared ? union : mine));
      assertQuantiles(seen, ranks, shared ? union : mine, shared ? "the union, from this registry" : "mine");
      const [seenThere] = (await collectOne(other, name)).series as readonly SummarySeries[];
      assert.equal(seenThere.count, shared ? union.length : theirs.length);
      assertQuantiles(
        seenThere,
        ranks,
        shared ? union : theirs,
        shared ? "the union, from the other" : "theirs",
      );
    },
  );

  // --- native Histogram ---

  check(
    "native Histogram: count, sum, zero count, native and classic bucket counts exact",
    async (registry) => {
      const h = new Histogram({
        name: "conf_native_seconds",
        help: "Native",
        buckets: [1, 5],
        native: { zeroThreshold: 0.001 },
        registry,
      });
      for (const value of [0, 2 ** -12, -(2 ** -12), 1, 1.5, 2, 2, -0.5, 4, 7]) h.observe(value);
      await flush();
      // Schema 3 (bucketFactor 1.1): index ceil(log2(|v|) * 8); |v| <= 0.001 is zero.
      assert.deepEqual((await collectOne(registry, "conf_native_seconds")).series, [{
        labels: {},
        buckets: [5, 9, 10],
        sum: 17,
        count: 10,
        native: {
          schema: 3,
          zeroThreshold: 0.001,
          zeroCount: 3,
          positive: [
            { index: 0, count: 1 },
            { index: 5, count: 1 },
            { index: 8, count: 2 },
            { index: 16, count: 1 },
            { index: 23, count: 1 },
          ],
          negative: [{ index: -8, count: 1 }],
        },
      }]);
    },
  );

  check(
    "native Histogram: past maxBuckets, the reduced schema and its counts are read back",
    async (registry) => {
      const h = new Histogram({
        name: "conf_native_reduced",
        help: "Reduced",
        native: { maxBuckets: 2 },
        registry,
      });
      for (const value of [1, 2, 4, 8]) h.observe(value);
      await flush();
      // Schema 3 indices 0, 8, 16, 24 need four buckets; at schema -2, (16 ** (k - 1), 16 ** k],
      // they fit in two.
      const [series] = (await collectOne(registry, "conf_native_reduced"))
        .series as readonly HistogramSeries[];
      assert.deepEqual([series.count, series.sum, series.buckets], [4, 15, [4]]);
      assert.deepEqual(series.native, {
        schema: -2,
        zeroThreshold: 2 ** -128,
        zeroCount: 0,
        positive: [{ index: 0, count: 1 }, { index: 1, count: 3 }],
        negative: [],
      });
    },
  );

  check("native Histogram: remove() and reset() drop its buckets", async (registry) => {
    const h = new Histogram({
      name: "conf_native_remove",
      help: "Remove",
      labelNames: ["k"],
      native: true,
      registry,
    });
    h.labels({ k: "a" }).observe(1);
    h.labels({ k: "a" }).observe(-2);
    h.labels({ k: "a" }).observe(0);
    h.labels({ k: "b" }).observe(4);
    await flush();
    const native = async () =>
      ((await collectOne(registry, "conf_native_remove")).series as readonly HistogramSeries[])
        .map((series) => [series.labels.k, series.count, series.native?.zeroCount, series.native?.positive]);
    assert.deepEqual(await native(), [
      ["a", 3, 1, [{ index: 0, count: 1 }]],
      ["b", 1, 0, [{ index: 16, count: 1 }]],
    ]);
    assert.equal(h.remove({ k: "a" }), true);
    await flush();
    assert.deepEqual(await native(), [["b", 1, 0, [{ index: 16, count: 1 }]]]);
    h.labels({ k: "a" }).observe(8); // a fresh series: none of the removed buckets
    await flush();
    assert.deepEqual(await native(), [
      ["a", 1, 0, [{ index: 24, count: 1 }]],
      ["b", 1, 0, [{ index: 16, count: 1 }]],
    ]);
    const [a] = (await collectOne(registry, "conf_native_remove")).series as readonly HistogramSeries[];
    assert.deepEqual(a.native?.negative, []);
    h.reset();
    await flush();
    assert.deepEqual(await native(), []);
    h.labels({ k: "b" }).observe(0.5);
    await flush();
    assert.deepEqual(await native(), [["b", 1, 0, [{ index: -8, count: 1 }]]]);
  });

  // --- Labels ---

  check("label values with separators and quotes are distinct series, read back intact", async (registry) => {
    const c = new Counter({ name: "conf_labels_tricky", help: "Tricky", labelNames: ["a", "b"], registry });
    c.labels({ a: "1,b:2", b: "3" }).inc(1);
    c.labels({ a: "1", b: "2,b:3" }).inc(10);
    c.labels({ a: '"', b: "\\" }).inc(100);
    c.labels({ a: "", b: "\n🎉" }).inc(1000);
    assert.deepEqual(
      (await collectOne(registry, "conf_labels_tricky")).series,
      sortSeries([
        { labels: { a: "1,b:2", b: "3" }, value: 1 },
        { labels: { a: "1", b: "2,b:3" }, value: 10 },
        { labels: { a: '"', b: "\\" }, value: 100 },
        { labels: { a: "", b: "\n🎉" }, value: 1000 },
      ]),
    );
    assert.equal(await c.labels({ b: "3", a: "1,b:2" }).get(), 1);
  });

  check("a labelled metric without children collects as an empty family", async (registry) => {
    new Gauge({ name: "conf_labels_empty", help: "Empty", labelNames: ["a"], registry });
    assert.deepEqual(await collectOne(registry, "conf_labels_empty"), {
      name: "conf_labels_empty",
      help: "Empty",
      type: "gauge",
      series: [],
    });
  });

  // --- HTTP request metrics ---

  check(
    "instrument(): requests counted by method, status and route; none left in flight",
    async (registry) => {
      const handler = instrument((request: Request) => {
        const path = new URL(request.url).pathname;
        if (path === "/boom") throw new Error("boom");
        if (path.startsWith("/users/")) return new Response("user");
        return new Response("no", { status: 404 });
      }, { registry, inFlight: true });
      for (let i = 0; i < 30; i++) await handler(new Request(`http://test/users/${1000 + i}`));
      for (let i = 0; i < 5; i++) await handler(new Request(`http://test/nowhere/${i}`, { method: "POST" }));
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          Promise.resolve().then(() => handler(new Request("http://test/boom"))),
          /boom/,
        );
      }
      const text = await generateLatest(registry);
      assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 200, "/users/:id")), 30, text);
      assert.equal(valueOf(text, "http_requests_total", httpLabels("POST", 404, "(unmatched)")), 5, text);
      assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 500, "/boom")), 2, text);
      assert.equal(find(text, "http_requests_total").length, 3, text);
      const counts = find(text, "http_request_duration_seconds_count");
      assert.equal(counts.reduce((sum, s) => sum + s.value, 0), 37, text);
      assert.deepEqual(find(text, "http_requests_in_flight").map((s) => s.value), [0, 0], text);
    },
  );

  check("instrument(): past maxSeries, the overflow series keeps the totals exact", async (registry) => {
    const handler = instrument(() => new Response("page"), { registry, maxSeries: 3 });
    await warningsOf(async () => {
      for (let i = 0; i < 20; i++) {
        await handler(new Request(`http://test/page-${String.fromCharCode(97 + i)}`));
      }
    });
    const text = await generateLatest(registry);
    const series = find(text, "http_requests_total");
    assert.equal(series.length, 4, text);
    assert.equal(series.reduce((sum, s) => sum + s.value, 0), 20, text);
    const overflow = {
      method: "__overflow__",
      status: "__overflow__",
      ok: "__overflow__",
      route: "__overflow__",
    };
    assert.equal(valueOf(text, "http_requests_total", overflow), 17, text);
    assert.equal(valueOf(text, "theus_series_overflow_total", { metric: "http_requests_total" }), 17, text);
    assert.equal(
      find(text, "http_request_duration_seconds_count").reduce((sum, s) => sum + s.value, 0),
      20,
      text,
    );
  });

  // --- maxSeries ---

  check(
    "maxSeries: past the cap, new label sets are recorded into one overflow series, none lost",
    async (registry) => {
      const name = "conf_maxseries_counter_total";
      const c = new Counter({ name, help: "Capped", labelNames: ["k"], maxSeries: 3, registry });
      assert.equal(c.maxSeries, 3);
      let recorded = 0;
      const warnings = await warningsOf(async () => {
        for (let i = 0; i < 10; i++) {
          c.labels({ k: `v${i}` }).inc();
          recorded += 1;
        }
        c.labels({ k: "v0" }).inc(2);
        c.labels({ k: "v2" }).inc(0.5);
        recorded += 2.5;
        await flush();
      });
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.ok(
        warnings[0].startsWith(`theus: metric "${name}" has reached its maxSeries`),
        warnings[0],
      );
      const family = await collectOne(registry, "conf_maxseries_counter");
      assert.deepEqual(valuesByK(family), [[OVERFLOW_LABEL_VALUE, 7], ["v0", 3], ["v1", 1], ["v2", 1.5]]);
      const total = valuesByK(family).reduce((sum, [, value]) => sum + value, 0);
      assert.equal(total, recorded);
      assert.equal(await c.labels({ k: OVERFLOW_LABEL_VALUE }).get(), 7);
      assert.equal(await overflowCount(registry, name), 7);
      const text = (await generateLatest(registry)).split("\n");
      assert.ok(text.includes(`${name}{k="__overflow__"} 7`), text.join("\n"));
      assert.ok(text.includes(`theus_series_overflow_total{metric="${name}"} 7`), text.join("\n"));
    },
  );

  check(
    "maxSeries: a histogram past its cap keeps every observation in _count and _sum",
    async (registry) => {
      const name = "conf_maxseries_seconds";
      const h = new Histogram({
        name,
        help: "Capped",
        labelNames: ["route"],
        buckets: [1],
        maxSeries: 2,
        registry,
      });
      const observed: [string, number][] = [
        ["/a", 0.5],
        ["/b", 2],
        ["/c", 0.25],
        ["/d", 4],
        ["/a", 1],
        ["/e", 8],
        ["/c", 0.125],
      ];
      await warningsOf(async () => {
        for (const [route, value] of observed) h.labels({ route }).observe(value);
        await flush();
      });
      const series = (await collectOne(registry, name)).series as readonly HistogramSeries[];
      assert.deepEqual(series, [
        { labels: { route: "/a" }, buckets: [2, 2], sum: 1.5, count: 2 },
        { labels: { route: "/b" }, buckets: [0, 1], sum: 2, count: 1 },
        { labels: { route: OVERFLOW_LABEL_VALUE }, buckets: [2, 4], sum: 12.375, count: 4 },
      ]);
      assert.equal(series.reduce((n, s) => n + s.count, 0), observed.length);
      assert.equal(series.reduce((n, s) => n + s.sum, 0), observed.reduce((n, [, value]) => n + value, 0));
      assert.equal(await overflowCount(registry, name), 4);
      const text = (await generateLatest(registry)).split("\n");
      assert.ok(text.includes(`${name}_count{route="__overflow__"} 4`), text.join("\n"));
      assert.ok(text.includes(`${name}_sum{route="__overflow__"} 12.375`), text.join("\n"));
    },
  );

  check(
    "maxSeries: registry.maxSeries caps the metrics without their own, from when it is set",
    async (registry) => {
      const g = new Gauge({ name: "conf_maxseries_gauge", help: "Default cap", labelNames: ["k"], registry });
      const own = new Counter({
        name: "conf_maxseries_own_total",
        help: "Own cap",
        labelNames: ["k"],
        maxSeries: 3,
        registry,
      });
      assert.equal(registry.maxSeries, Infinity);
      assert.equal(g.maxSeries, Infinity);
      g.labels({ k: "a" }).inc(1);
      const before = registry.maxSeries;
      try {
        registry.maxSeries = 2;
        assert.equal(g.maxSeries, 2);
        assert.equal(own.maxSeries, 3, "a metric's own maxSeries wins over the registry's");
        await warningsOf(async () => {
          for (const [k, value] of [["b", 2], ["c", 3], ["d", 4]] as const) {
            g.labels({ k }).inc(value);
            own.labels({ k }).inc();
          }
          own.labels({ k: "e" }).inc();
          own.labels({ k: "f" }).inc();
          await flush();
        });
      } finally {
        registry.maxSeries = before;
      }
      assert.equal(g.maxSeries, Infinity);
      g.labels({ k: "e" }).inc(5); // no cap any more: a series of its own
      await flush();
      assert.deepEqual(valuesByK(await collectOne(registry, "conf_maxseries_gauge")), [
        [OVERFLOW_LABEL_VALUE, 7],
        ["a", 1],
        ["b", 2],
        ["e", 5],
      ]);
      assert.deepEqual(valuesByK(await collectOne(registry, "conf_maxseries_own")), [
        [OVERFLOW_LABEL_VALUE, 2],
        ["b", 1],
        ["c", 1],
        ["d", 1],
      ]);
      assert.equal(await overflowCount(registry, "conf_maxseries_gauge"), 2);
      assert.equal(await overflowCount(registry, "conf_maxseries_own_total"), 2);
    },
  );

  check(
    "maxSeries: remove() frees a slot, the overflow series can be removed, clear() starts over",
    async (registry) => {
      const name = "conf_maxseries_remove_total";
      const c = new Counter({ name, help: "Remove", labelNames: ["k"], maxSeries: 2, registry });
      const family = () => collectOne(registry, "conf_maxseries_remove");
      await warningsOf(async () => {
        for (const k of ["a", "b", "c"]) c.labels({ k }).inc();
        await flush();
        assert.equal(c.remove({ k: "a" }), true);
        c.labels({ k: "d" }).inc(2); // the slot a left
        c.labels({ k: "e" }).inc(3); // full again
        await flush();
        assert.deepEqual(valuesByK(await family()), [[OVERFLOW_LABEL_VALUE, 4], ["b", 1], ["d", 2]]);
        assert.equal(c.remove({ k: OVERFLOW_LABEL_VALUE }), true);
        await flush();
        assert.deepEqual(valuesByK(await family()), [["b", 1], ["d", 2]]);
        c.labels({ k: "f" }).inc(5); // still full: a fresh overflow series
        await flush();
        assert.deepEqual(valuesByK(await family()), [[OVERFLOW_LABEL_VALUE, 5], ["b", 1], ["d", 2]]);
        c.clear();
        for (const k of ["x", "y", "z"]) c.labels({ k }).inc();
        await flush();
      });
      assert.deepEqual(valuesByK(await family()), [[OVERFLOW_LABEL_VALUE, 1], ["x", 1], ["y", 1]]);
      assert.equal(await overflowCount(registry, name), 4);
    },
  );

  // --- Collection and exposition ---

  check(
    "remove() drops one child from collection; labels() then starts that series afresh",
    async (registry) => {
      const labelNames = ["k"];
      const c = new Counter({ name: "conf_remove_total", help: "Remove", labelNames, registry });
      const g = new Gauge({ name: "conf_remove_gauge", help: "Remove", labelNames, registry });
      const h = new Histogram({
        name: "conf_remove_seconds",
        help: "Remove",
        labelNames,
        buckets: [1],
        registry,
      });
      const s = new Summary({ name: "conf_remove_bytes", help: "Remove", labelNames, registry });
      for (const k of ["a", "b"]) {
        c.labels({ k }).inc(3);
        g.labels({ k }).set(2);
        h.labels({ k }).observe(0.5);
        s.labels({ k }).observe(4);
      }
      await flush();
      const removed = c.labels({ k: "a" });
      for (const metric of [c, g, h, s]) assert.equal(metric.remove({ k: "a" }), true, metric.name);
      assert.equal(c.remove({ k: "a" }), false, "a second remove() finds nothing");
      removed.inc(5); // a removed child keeps working, but is not exported
      for (const family of await registry.collect()) {
        assert.deepEqual(family.series.map((series) => series.labels), [{ k: "b" }], family.name);
      }
      c.labels({ k: "a" }).inc(1);
      const counter = await collectOne(registry, "conf_remove");
      assert.deepEqual(
        counter.series.map((series) => [series.labels.k, (series as { value: number }).value]),
        [["a", 1], ["b", 3]],
      );
    },
  );

  check("clear() drops every child from collection", async (registry) => {
    const c = new Counter({ name: "conf_clear_total", help: "Clear", labelNames: ["k"], registry });
    const h = new Histogram({
      name: "conf_clear_seconds",
      help: "Clear",
      labelNames: ["k"],
      buckets: [1],
      registry,
    });
    for (const k of ["a", "b", "c"]) {
      c.labels({ k }).inc();
      h.labels({ k }).observe(2);
    }
    await flush();
    c.clear();
    h.clear();
    for (const family of await registry.collect()) assert.deepEqual(family.series, [], family.name);
    c.labels({ k: "b" }).inc(2);
    const counter = await collectOne(registry, "conf_clear");
    assert.deepEqual(counter.series.map((series) => (series as { value: number }).value), [2]);
  });

  check("flush() resolves and keeps every value", async (registry) => {
    const c = new Counter({ name: "conf_flush", help: "Flush", registry });
    c.inc(4);
    await flush();
    await flush();
    assert.equal(await c.get(), 4);
  });

  check("registry.collect() returns every family in registration order", async (registry) => {
    new Counter({ name: "conf_order_c", help: "C", registry }).inc();
    new Gauge({ name: "conf_order_g", help: "G", registry }).set(2);
    new Histogram({ name: "conf_order_h", help: "H", buckets: [1], registry }).observe(1);
    new Summary({ name: "conf_order_s", help: "S", registry }).observe(3);
    assert.deepEqual(sorted(await registry.collect()), [
      { name: "conf_order_c", help: "C", type: "counter", series: [{ labels: {}, value: 1 }] },
      { name: "conf_order_g", help: "G", type: "gauge", series: [{ labels: {}, value: 2 }] },
      {
        name: "conf_order_h",
        help: "H",
        type: "histogram",
        buckets: [1, Infinity],
        series: [{ labels: {}, buckets: [1, 1], sum: 1, count: 1 }],
      },
      { name: "conf_order_s", help: "S", type: "summary", series: [{ labels: {}, sum: 3, count: 1 }] },
    ]);
  });

  const golden = (registry: Registry) => {
    const requests = new Counter({
      name: "conf_golden_requests_total",
      help: 'Say "hi"\\ now\nplease',
      labelNames: ["path"],
      registry,
    });
    requests.labels({ path: 'q"b\\s\n🎉' }).inc(3);
    new Gauge({ name: "conf_golden_temperature", help: "Temperature", registry }).set(-1.5);
    const latency = new Histogram({
      name: "conf_golden_latency",
      help: "Latency",
      buckets: [0.1, 1, 10],
      registry,
    });
    for (const value of [0.0625, 0.5, 0.5, 20]) latency.observe(value);
    const size = new Summary({ name: "conf_golden_size", help: "Size", registry });
    size.observe(512);
    size.observe(1024);
    new Gauge({ name: "conf_golden_idle", help: "Idle", labelNames: ["a"], registry });
  };

  const goldenSamples = [
    'conf_golden_requests_total{path="q\\"b\\\\s\\n🎉"} 3',
    "# HELP conf_golden_temperature Temperature",
    "# TYPE conf_golden_temperature gauge",
    "conf_golden_temperature -1.5",
    "# HELP conf_golden_latency Latency",
    "# TYPE conf_golden_latency histogram",
    'conf_golden_latency_bucket{le="0.1"} 1',
    'conf_golden_latency_bucket{le="1.0"} 3',
    'conf_golden_latency_bucket{le="10.0"} 3',
    'conf_golden_latency_bucket{le="+Inf"} 4',
    "conf_golden_latency_sum 21.0625",
    "conf_golden_latency_count 4",
    "# HELP conf_golden_size Size",
    "# TYPE conf_golden_size summary",
    "conf_golden_size_sum 1536",
    "conf_golden_size_count 2",
    "# HELP conf_golden_idle Idle",
    "# TYPE conf_golden_idle gauge",
  ];

  check("generateLatest() writes text 0.0.4 by default", async (registry) => {
    golden(registry);
    const expected = [
      '# HELP conf_golden_requests_total Say "hi"\\\\ now\\nplease',
      "# TYPE conf_golden_requests_total counter",
      ...goldenSamples,
      "",
    ].join("\n");
    assert.equal(await generateLatest(registry), expected);
    assert.equal(await generateLatest(registry, { format: "prometheus" }), expected);
  });

  check("generateLatest() writes OpenMetrics 1.0, ending with # EOF", async (registry) => {
    golden(registry);
    assert.equal(
      await generateLatest(registry, { format: "openmetrics" }),
      [
        '# HELP conf_golden_requests Say \\"hi\\"\\\\ now\\nplease',
        "# TYPE conf_golden_requests counter",
        ...goldenSamples,
        "# EOF",
        "",
      ].join("\n"),
    );
  });

  check("generateLatest() writes every child of a family", async (registry) => {
    const c = new Counter({ name: "conf_expo_children", help: "Children", labelNames: ["a", "b"], registry });
    c.labels({ a: "x", b: "1" }).inc();
    c.labels({ b: "2", a: "x" }).inc(2);
    c.labels({ a: "y", b: "1" }).inc(3);
    const h = new Histogram({
      name: "conf_expo_hist",
      help: "Hist",
      labelNames: ["a"],
      buckets: [1],
      registry,
    });
    h.labels({ a: "x" }).observe(0.5);
    h.labels({ a: "y" }).observe(5);
    const samples = [
      'conf_expo_children_total{a="x",b="1"} 1',
      'conf_expo_children_total{a="x",b="2"} 2',
      'conf_expo_children_total{a="y",b="1"} 3',
      "# HELP conf_expo_hist Hist",
      "# TYPE conf_expo_hist histogram",
      'conf_expo_hist_bucket{a="x",le="+Inf"} 1',
      'conf_expo_hist_bucket{a="x",le="1.0"} 1',
      'conf_expo_hist_bucket{a="y",le="+Inf"} 1',
      'conf_expo_hist_bucket{a="y",le="1.0"} 0',
      'conf_expo_hist_count{a="x"} 1',
      'conf_expo_hist_count{a="y"} 1',
      'conf_expo_hist_sum{a="x"} 0.5',
      'conf_expo_hist_sum{a="y"} 5',
    ];
    assert.deepEqual(normalized(await generateLatest(registry)), [
      "# HELP conf_expo_children_total Children",
      "# TYPE conf_expo_children_total counter",
      ...samples,
      "",
    ]);
    assert.deepEqual(normalized(await generateLatest(registry, { format: "openmetrics" })), [
      "# HELP conf_expo_children Children",
      "# TYPE conf_expo_children counter",
      ...samples,
      "# EOF",
      "",
    ]);
  });

  // --- collect option and reset() ---

  check("collect option: what collect() sets is what every scrape reads", async (registry) => {
    let depth = 3;
    let calls = 0;
    const g = new Gauge({
      name: "conf_collect_depth",
      help: "Queue depth, set at scrape time",
      registry,
      collect() {
        calls++;
        this.set(depth);
      },
    });
    new Gauge({
      name: "conf_collect_async",
      help: "Set at scrape time, after an await",
      labelNames: ["queue"],
      registry,
      async collect() {
        await new Promise((resolve) => setTimeout(resolve, 5));
        this.labels({ queue: "a" }).set(depth * 2);
      },
    });
    assert.equal(calls, 0, "collect() runs at scrape time only");
    let families = await registry.collect();
    assert.equal(calls, 1);
    assert.deepEqual(sorted(families).map((family) => [family.name, family.series]), [
      ["conf_collect_depth", [{ labels: {}, value: 3 }]],
      ["conf_collect_async", [{ labels: { queue: "a" }, value: 6 }]],
    ]);
    depth = 11;
    g.set(100); // overwritten by the next scrape's collect()
    const text = await generateLatest(registry);
    assert.equal(calls, 2);
    assert.equal(valueOf(text, "conf_collect_depth", {}), 11, text);
    assert.equal(valueOf(text, "conf_collect_async", { queue: "a" }), 22, text);
    depth = 0;
    families = await registry.collect();
    assert.equal(calls, 3);
    assert.deepEqual(sorted(families).map((family) => [family.name, family.series]), [
      ["conf_collect_depth", [{ labels: {}, value: 0 }]],
      ["conf_collect_async", [{ labels: { queue: "a" }, value: 0 }]],
    ]);
    assert.equal(await g.get(), 0);
  });

  check(
    "reset() zeroes an unlabelled counter and drops a histogram's children; later scrapes show only new values",
    async (registry) => {
      const c = new Counter({ name: "conf_reset_total", help: "Reset", registry });
      const h = new Histogram({
        name: "conf_reset_seconds",
        help: "Reset",
        labelNames: ["route"],
        buckets: [1],
        registry,
      });
      const family = (from: Registry, name: string) => collectOne(from, name);
      c.inc(5);
      const stale = h.labels({ route: "/a" });
      stale.observe(0.5);
      h.labels({ route: "/b" }).observe(2);
      await flush();
      // Another registry with the same metrics: on a shared backend it reads the same store, so
      // it shows what this one wrote; on the memory backend it has values of its own.
      const other = new (registry.constructor as new () => Registry)();
      new Counter({ name: "conf_reset_total", help: "Reset", registry: other });
      new Histogram({
        name: "conf_reset_seconds",
        help: "Reset",
        labelNames: ["route"],
        buckets: [1],
        registry: other,
      });
      const seen = (await family(other, "conf_reset_seconds")).series.length;
      const shared = seen === 2;
      assert.ok(seen === 0 || shared, `the other registry sees ${seen} histogram series`);
      // A backend whose values live in a store of their own but that has no collect hook (the
      // custom one) shares the unlabelled counter's value, not the other registry's children.
      const counted = (await family(other, "conf_reset")).series;
      const storeShared = (counted[0] as { value?: number } | undefined)?.value === 5;
      assert.deepEqual(counted, [{ labels: {}, value: storeShared ? 5 : 0 }]);
      assert.ok(storeShared || !shared, "a backend that shares children shares the counter");
      assert.deepEqual((await family(registry, "conf_reset_seconds")).series.map((s) => s.labels), [
        { route: "/a" },
        { route: "/b" },
      ]);

      c.reset();
      h.reset();
      await flush();
      assert.equal(await c.get(), 0);
      assert.deepEqual((await family(registry, "conf_reset")).series, [{ labels: {}, value: 0 }]);
      assert.deepEqual((await family(registry, "conf_reset_seconds")).series, []);
      // Gone from the store: the other registry no longer shows them either.
      assert.deepEqual((await family(other, "conf_reset")).series, [{ labels: {}, value: 0 }]);
      assert.deepEqual((await family(other, "conf_reset_seconds")).series, []);

      c.inc(2);
      h.labels({ route: "/b" }).observe(0.25);
      stale.observe(0.75); // a child dropped by reset() keeps working, but is not exported
      await flush();
      assert.equal(await c.get(), 2);
      assert.deepEqual((await family(registry, "conf_reset")).series, [{ labels: {}, value: 2 }]);
      const fresh = [{ labels: { route: "/b" }, buckets: [1, 1], sum: 0.25, count: 1 }];
      assert.deepEqual((await family(registry, "conf_reset_seconds")).series, fresh);
      assert.deepEqual((await family(other, "conf_reset")).series, [{
        labels: {},
        value: storeShared ? 2 : 0,
      }]);
      assert.deepEqual((await family(other, "conf_reset_seconds")).series, shared ? fresh : []);

      // Reset and record again with no flush in between: the new values come after the removal.
      c.reset();
      h.reset();
      c.inc(1);
      h.labels({ route: "/c" }).observe(3);
      const text = await generateLatest(registry);
      assert.equal(valueOf(text, "conf_reset_total", {}), 1, text);
      assert.deepEqual(find(text, "conf_reset_seconds_count"), [
        { name: "conf_reset_seconds_count", labels: { route: "/c" }, value: 1 },
      ], text);
      assert.equal(valueOf(text, "conf_reset_seconds_bucket", { route: "/c", le: "1" }), 0, text);
      assert.equal(valueOf(text, "conf_reset_seconds_bucket", { route: "/c", le: "+Inf" }), 1, text);
      assert.equal(valueOf(text, "conf_reset_seconds_sum", { route: "/c" }), 3, text);
    },
  );
}

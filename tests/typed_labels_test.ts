// Typed label names: with `labelNames: [...] as const`, a label the metric does not have is a
// compile-time error. Every `@ts-expect-error` below is checked by `deno check` (the test runner
// checks each test file) and by `tsc` (the Node build compiles tests/): a line that stops being an
// error fails both. Each such call is also run, and must throw the same mistake at run time, for
// JavaScript callers and for label names typed as plain strings.

import assert from "node:assert/strict";
import {
  Counter,
  Gauge,
  Histogram,
  type LabelValues,
  type MetricFamily,
  Registry,
  Summary,
  type Timer,
} from "../mod.ts";
import { test } from "./_harness.ts";

/** True when A and B are the same type (not merely assignable either way). */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;

/** A TypeError whose message quotes every one of `names`. */
function quoting(...names: string[]): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof TypeError, `expected a TypeError, got ${e}`);
    for (const name of names) {
      assert.ok(e.message.includes(JSON.stringify(name)), `${JSON.stringify(name)} not in: ${e.message}`);
    }
    return true;
  };
}

async function seriesOf(registry: Registry, name: string): Promise<MetricFamily["series"]> {
  const family = (await registry.collect()).find((f) => f.name === name);
  assert.ok(family !== undefined, `family "${name}" was not collected`);
  return family.series;
}

test("labelNames as const: a misspelt label name is a compile-time error and a TypeError at run time", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "typed_requests_total",
    help: "Requests",
    labelNames: ["method", "status"] as const,
    registry,
  });
  const labelNames: readonly ("method" | "status")[] = c.labelNames;
  assert.deepEqual(labelNames, ["method", "status"]);
  const exact: Equal<typeof c, Counter<"method" | "status">> = true;
  assert.ok(exact);

  // @ts-expect-error: "methd" is not a label of the counter
  assert.throws(() => c.labels({ methd: "GET" }), quoting("methd", "typed_requests_total"));
  // @ts-expect-error: "stauts" is not a label of the counter, even next to a right one
  assert.throws(() => c.labels({ method: "GET", stauts: "200" }), quoting("stauts"));
  // @ts-expect-error: the child keeps the label names: "stauts" is still not one
  assert.throws(() => c.labels({ method: "GET" }).labels({ stauts: "200" }), quoting("stauts"));
  // @ts-expect-error: label values are strings
  assert.throws(() => c.labels({ method: "GET", status: 200 }), quoting("status"));
  const stranger = { methd: "GET" };
  // @ts-expect-error: an object that shares no label with the metric, not a literal either
  assert.throws(() => c.labels(stranger), quoting("methd"));

  // The right names, in any order and in steps, compile and record.
  c.labels({ status: "200", method: "GET" }).inc();
  c.labels({ method: "GET" }).labels({ status: "200" }).inc(2);
  assert.deepEqual(await seriesOf(registry, "typed_requests"), [
    { labels: { method: "GET", status: "200" }, value: 3 },
  ]);
});

test("every metric type takes typed label names", async () => {
  const registry = new Registry();
  const labelNames = ["route"] as const;
  const g = new Gauge({ name: "typed_gauge", help: "G", labelNames, registry });
  const h = new Histogram({ name: "typed_seconds", help: "H", labelNames, buckets: [1], registry });
  const s = new Summary({ name: "typed_bytes", help: "S", labelNames, registry });
  // @ts-expect-error: "rout" is not a label of the gauge
  assert.throws(() => g.labels({ rout: "/" }), quoting("rout"));
  // @ts-expect-error: "rout" is not a label of the histogram
  assert.throws(() => h.labels({ rout: "/" }), quoting("rout"));
  // @ts-expect-error: "rout" is not a label of the summary
  assert.throws(() => s.labels({ rout: "/" }), quoting("rout"));
  g.labels({ route: "/" }).set(1);
  h.labels({ route: "/" }).observe(0.5);
  s.labels({ route: "/" }).observe(2);
  for (const name of ["typed_gauge", "typed_seconds", "typed_bytes"]) {
    assert.deepEqual((await seriesOf(registry, name)).map((series) => series.labels), [{ route: "/" }], name);
  }
});

test("label names like constructor and toString still type-check, and work", async () => {
  const registry = new Registry();
  const g = new Gauge({
    name: "typed_proto",
    help: "Object's member names as label names",
    labelNames: ["constructor", "toString", "region"] as const,
    registry,
  });
  g.labels({ constructor: "a", toString: "b", region: "c" }).set(1);
  g.labels({ toString: "b" }).labels({ constructor: "x", region: "y" }).set(2);
  assert.deepEqual(await seriesOf(registry, "typed_proto"), [
    { labels: { constructor: "a", toString: "b", region: "c" }, value: 1 },
    { labels: { constructor: "x", toString: "b", region: "y" }, value: 2 },
  ]);
  // Typed loosely (TypeScript sees Object's member in every literal), checked at run time.
  assert.throws(
    () => g.labels({ constructor: 1, toString: "b", region: "c" }),
    quoting("constructor"),
  );
  // @ts-expect-error: "constructr" is still not a label of the gauge
  assert.throws(() => g.labels({ constructr: "a" }), quoting("constructr"));
  // @ts-expect-error: the other labels are typed as strings still
  assert.throws(() => g.labels({ constructor: "a", region: 3 }), quoting("region"));
  assert.equal(g.remove({ constructor: "a", toString: "b", region: "c" }), true);
  assert.deepEqual((await seriesOf(registry, "typed_proto")).map((s) => s.labels), [
    { constructor: "x", toString: "b", region: "y" },
  ]);
});

test("defaultLabels are typed by labelNames", () => {
  const registry = new Registry();
  assert.throws(
    () =>
      new Counter({
        name: "typed_default_total",
        help: "Defaults",
        labelNames: ["method", "status"] as const,
        // @ts-expect-error: "methd" is not a label of the counter
        defaultLabels: { methd: "GET" },
        registry,
      }),
    quoting("methd"),
  );
  assert.throws(
    () =>
      new Histogram({
        name: "typed_default_seconds",
        help: "Defaults",
        labelNames: ["code"] as const,
        // @ts-expect-error: label values are strings
        defaultLabels: { code: 200 },
        registry,
      }),
    quoting("code"),
  );
  assert.equal(registry.get("typed_default_total"), undefined);
  const c = new Counter({
    name: "typed_default_total",
    help: "Defaults",
    labelNames: ["method", "status"] as const,
    defaultLabels: { method: "GET" },
    registry,
  });
  assert.deepEqual(c.labels({ status: "200" }).labelValues, { method: "GET", status: "200" });
});

test("remove() is typed by labelNames", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "typed_remove_total",
    help: "Remove",
    labelNames: ["shard"] as const,
    registry,
  });
  c.labels({ shard: "1" }).inc();
  // @ts-expect-error: "shrd" is not a label of the counter
  assert.throws(() => c.remove({ shrd: "1" }), quoting("shrd"));
  // @ts-expect-error: label values are strings
  assert.throws(() => c.remove({ shard: 1 }), quoting("shard"));
  assert.equal((await seriesOf(registry, "typed_remove")).length, 1);
  assert.equal(c.remove({ shard: "1" }), true);
  assert.deepEqual(await seriesOf(registry, "typed_remove"), []);
});

test("startTimer() and the timer's stop() are typed by labelNames", async () => {
  const registry = new Registry();
  const labelNames = ["method", "status"] as const;
  const h = new Histogram({ name: "typed_timer_seconds", help: "T", labelNames, buckets: [5], registry });
  const s = new Summary({ name: "typed_timer_bytes", help: "T", labelNames, registry });
  const g = new Gauge({ name: "typed_timer_gauge", help: "T", labelNames, registry });

  const timer = h.startTimer({ method: "GET" });
  const typed: Equal<typeof timer, Timer<"method" | "status">> = true;
  assert.ok(typed);
  // @ts-expect-error: "stauts" is not a label of the histogram
  assert.throws(() => timer.stop({ stauts: "200" }), quoting("stauts"));
  timer.stop({ status: "200" });

  // @ts-expect-error: "methd" is not a label of the histogram
  assert.throws(() => h.startTimer({ methd: "GET" }), quoting("methd"));
  // @ts-expect-error: "methd" is not a label of the summary
  assert.throws(() => s.startTimer({ methd: "GET" }), quoting("methd"));
  // @ts-expect-error: "methd" is not a label of the gauge
  assert.throws(() => g.startTimer({ methd: "GET" }), quoting("methd"));
  const st = s.startTimer();
  // @ts-expect-error: label values are strings
  assert.throws(() => st.stop({ method: "GET", status: 200 }), quoting("status"));
  st.stop({ method: "GET", status: "200" });
  const gt = g.startTimer({ status: "200" });
  // @ts-expect-error: "mthod" is not a label of the gauge
  assert.throws(() => gt.stop({ mthod: "GET" }), quoting("mthod"));
  gt.stop({ method: "GET" });

  for (const name of ["typed_timer_seconds", "typed_timer_bytes", "typed_timer_gauge"]) {
    assert.deepEqual(
      (await seriesOf(registry, name)).map((series) => series.labels),
      [{ method: "GET", status: "200" }],
      name,
    );
  }
});

test("collect() sees its metric typed: a misspelt label there is a compile-time error too", async () => {
  const registry = new Registry();
  let misspell = true;
  new Gauge({
    name: "typed_collect",
    help: "Collect",
    labelNames: ["queue"] as const,
    registry,
    collect() {
      if (misspell) {
        // @ts-expect-error: "queu" is not a label of the gauge
        this.labels({ queu: "email" }).set(1);
      }
      this.labels({ queue: "email" }).set(2);
    },
  });
  await assert.rejects(registry.collect(), (e: unknown) => {
    assert.ok(e instanceof Error && e.message.includes('"typed_collect"') && e.message.includes('"queu"'));
    return true;
  });
  misspell = false;
  assert.deepEqual(await seriesOf(registry, "typed_collect"), [{ labels: { queue: "email" }, value: 2 }]);
});

test("without as const, label names typed as string[] let any label compile; the run time still checks", async () => {
  const registry = new Registry();
  const names: string[] = ["method"];
  const c = new Counter({ name: "untyped_total", help: "Untyped", labelNames: names, registry });
  const loose: Equal<typeof c, Counter<string>> = true;
  assert.ok(loose);
  const values: LabelValues = { anything: "x" };
  assert.throws(() => c.labels({ anything: "x" }), quoting("anything"));
  assert.throws(() => c.labels(values), quoting("anything"));
  assert.throws(() => c.remove({ anything: "x" }), quoting("anything"));
  const h = new Histogram({ name: "untyped_seconds", help: "Untyped", labelNames: names, registry });
  assert.throws(() => h.startTimer({ anything: "x" }), quoting("anything"));
  const timer = h.startTimer();
  assert.throws(() => timer.stop({ anything: "x" }), quoting("anything"));
  timer.stop({ method: "GET" });
  c.labels({ method: "GET" }).inc();
  assert.deepEqual(await seriesOf(registry, "untyped"), [{ labels: { method: "GET" }, value: 1 }]);
});

test("LabelValues<L> has one optional string per label name", () => {
  const both: Equal<LabelValues<"a" | "b">, { readonly a?: string; readonly b?: string }> = true;
  const any: Equal<LabelValues, { readonly [name: string]: string | undefined }> = true;
  assert.ok(both && any);
  const partial: LabelValues<"a" | "b"> = { a: "1" };
  assert.deepEqual(partial, { a: "1" });
});

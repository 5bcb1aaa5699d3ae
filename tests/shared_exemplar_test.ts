// Exemplars on the shared memory backend (shareMemory()), with real worker threads on Deno, Bun
// and Node: a collection from the main thread shows, per counter series and per histogram
// bucket, the newest exemplar any thread recorded (the largest timestamp, whatever order the
// threads wrote in), kept by a thread before its series was registered and written once it was;
// OpenMetrics writes them and passes the strict parser; remove(), clear() and reset() drop every
// thread's; a collection never sees half of one exemplar and half of another while a thread
// rewrites them, nor loses the latest one while a thread is stopped in the middle of a write;
// and one thread alone keeps what the memory backend keeps.

import assert from "node:assert/strict";
import {
  Counter,
  type Exemplar,
  flush,
  generateLatest,
  Histogram,
  type HistogramSeries,
  loadBackend,
  type MetricFamily,
  Registry,
  shareMemory,
  type ValueSeries,
} from "../mod.ts";
import { Arena } from "../backends/shared/arena.ts";
import { ExemplarChunk, type ExemplarSlot } from "../backends/shared/exemplars.ts";
import { SharedStore } from "../backends/shared/store.ts";
import { test } from "./_harness.ts";
import { startThread, type TestThread } from "./_threads.ts";
import { assertOpenMetrics } from "./_validate.ts";
import {
  bucketRecord,
  bucketWinner,
  IN_BUCKET,
  LONG_ROUTE,
  LONG_WINNER,
  longRecord,
  MANY,
  manyRecord,
  manyWinner,
  planMetrics,
  recordPlan,
  routeRecord,
  ROUTES,
  routeWinner,
  THREADS,
  tornIncrement,
  tornLabels,
  tornMetrics,
  tornObservation,
} from "./fixtures/shared_exemplar_metrics.ts";
import type { Command } from "./fixtures/shared_exemplar_writer.ts";

const WRITER = new URL("./fixtures/shared_exemplar_writer.ts", import.meta.url);

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name);
  assert.ok(found !== undefined, `no family ${name} in ${families.map((f) => f.name).join(", ")}`);
  return found;
}

function series<S extends ValueSeries | HistogramSeries>(
  families: readonly MetricFamily[],
  name: string,
  labels: Record<string, string> = {},
): S | undefined {
  const key = JSON.stringify(Object.entries(labels).sort());
  return (family(families, name).series as readonly S[]).find((s) =>
    JSON.stringify(Object.entries(s.labels).sort()) === key
  );
}

/** An exemplar as plain data, for deepEqual (the collected ones are frozen). */
function plain(e: Exemplar | undefined): Exemplar | undefined {
  return e === undefined ? undefined : { labels: { ...e.labels }, value: e.value, timestamp: e.timestamp };
}

function exemplar([value, labels, timestamp]: [number, Record<string, string>, number]): Exemplar {
  return { labels, value, timestamp };
}

async function stopAll(threads: readonly TestThread[]): Promise<void> {
  await Promise.allSettled(threads.map((thread) => thread.terminate()));
  await loadBackend({ backend: "memory" });
}

test(
  "3 workers and the main thread record exemplars: a collection shows the newest of each series and bucket",
  async () => {
    const handle = await shareMemory();
    const registry = new Registry();
    const metrics = planMetrics(registry);
    const workers = THREADS.slice(1);
    const threads = workers.map((id) => startThread(WRITER, { handle, mode: "plan", id }));
    try {
      for (const [i, thread] of threads.entries()) {
        assert.deepEqual(await thread.next(), { done: workers[i] });
      }
      // The main thread writes last, and its exemplars are mostly older: they replace nothing newer.
      recordPlan(metrics, 0, "early");
      recordPlan(metrics, 0, "late");
      const families = await registry.collect();

      for (let j = 0; j < ROUTES.length; j++) {
        const found = series<ValueSeries>(families, "ex_requests", { route: ROUTES[j] });
        assert.equal(found?.value, 1 + 2 + 3 + 4);
        assert.deepEqual(
          plain(found.exemplar),
          exemplar(routeRecord(routeWinner(j), j)),
          `route ${ROUTES[j]}`,
        );
      }
      const long = series<ValueSeries>(families, "ex_requests", { route: LONG_ROUTE });
      assert.deepEqual(plain(long?.exemplar), exemplar(longRecord(LONG_WINNER)));
      for (let n = 0; n < MANY; n++) {
        const found = series<ValueSeries>(families, "ex_many", { n: String(n) });
        assert.equal(found?.value, THREADS.length);
        assert.deepEqual(plain(found.exemplar), exemplar(manyRecord(manyWinner(n), n)), `series ${n}`);
      }
      const histogram = series<HistogramSeries>(families, "ex_seconds");
      assert.equal(histogram?.count, THREADS.length * 3);
      const exemplars = histogram.exemplars;
      assert.ok(exemplars !== undefined, "the histogram has exemplars");
      for (let k = 0; k < IN_BUCKET.length; k++) {
        const record = bucketRecord(bucketWinner(k), k);
        assert.deepEqual(plain(exemplars[k]), record && exemplar(record), `bucket ${k}`);
      }
      // Sparse, as the memory backend's: no entry at all for the bucket without one.
      assert.equal(Object.hasOwn(exemplars, 2), false);

      const text = await generateLatest(registry, { format: "openmetrics" });
      await assertOpenMetrics(text);
      assert.match(text, /^ex_requests_total\{route="a"\} 10 # \{trace_id="t1-a"\} 2 1700000009\.25$/m);
      assert.match(
        text,
        /^ex_seconds_bucket\{le="\+Inf"\} 12 # \{trace_id="h1-3",span_id="ßßß"\} 7 1700000139\.25$/m,
      );
      assert.match(text, new RegExp(`# \\{t="${"😀".repeat(127)}"\\} 1 1700000509\\.25$`, "m"));
      // Text 0.0.4 has no exemplars.
      assert.doesNotMatch(await generateLatest(registry), / # \{/);
    } finally {
      await stopAll(threads);
    }
  },
  { timeout: 120_000 },
);

test("remove(), clear() and reset() drop every thread's exemplars of the series", async () => {
  const handle = await shareMemory();
  const registry = new Registry();
  const counter = new Counter({ name: "ex_rm_total", help: "Removal", labelNames: ["k"], registry });
  const histogram = new Histogram({
    name: "ex_rm_seconds",
    help: "Removal",
    labelNames: ["k"],
    buckets: [1],
    registry,
  });
  const plainCounter = new Counter({ name: "ex_rm_plain_total", help: "Reset", registry });
  const thread = startThread(WRITER, { handle, mode: "commands", id: 1 });
  const tell = async (command: Command) => {
    thread.post(command);
    assert.equal(await thread.next(), "ok");
  };
  const collect = async (name: string, labels: Record<string, string> = {}) =>
    series<ValueSeries & HistogramSeries>(await registry.collect(), name, labels);
  // remove() and clear() act on the children this thread has: create them.
  counter.labels({ k: "b" });
  histogram.labels({ k: "a" });
  try {
    assert.equal(await thread.next(), "ready");
    await tell({ metric: "ex_rm_total", labels: { k: "a" }, value: 1, exemplar: { w: "a" }, ts: 10 });
    await tell({ metric: "ex_rm_total", labels: { k: "b" }, value: 1, exemplar: { w: "b" }, ts: 11 });
    await tell({ metric: "ex_rm_seconds", labels: { k: "a" }, value: 0.5, exemplar: { w: "h" }, ts: 12 });
    await tell({ metric: "ex_rm_plain_total", value: 1, exemplar: { w: "p" }, ts: 13 });
    counter.labels({ k: "a" }).inc(1, { main: "a" }, 5);
    assert.deepEqual(plain((await collect("ex_rm", { k: "a" }))?.exemplar), {
      labels: { w: "a" },
      value: 1,
      timestamp: 10,
    });
    assert.deepEqual(
      (await collect("ex_rm_seconds", { k: "a" }))?.exemplars?.map(plain),
      [{ labels: { w: "h" }, value: 0.5, timestamp: 12 }],
    );

    // remove(): gone, the worker's exemplar with it; what is recorded since shows, older or not.
    counter.remove({ k: "a" });
    assert.equal(await collect("ex_rm", { k: "a" }), undefined);
    await tell({ metric: "ex_rm_total", labels: { k: "a" }, value: 1 });
    assert.deepEqual(await collect("ex_rm", { k: "a" }), { labels: { k: "a" }, value: 1 });
    counter.labels({ k: "a" }).inc(1, { main: "again" }, 3);
    assert.deepEqual(plain((await collect("ex_rm", { k: "a" }))?.exemplar), {
      labels: { main: "again" },
      value: 1,
      timestamp: 3,
    });
    // Removed and recorded again before any flush: the new exemplar comes after the removal.
    assert.deepEqual(plain((await collect("ex_rm", { k: "b" }))?.exemplar), {
      labels: { w: "b" },
      value: 1,
      timestamp: 11,
    });
    counter.remove({ k: "b" });
    counter.labels({ k: "b" }).inc(2, { main: "b" }, 1);
    assert.deepEqual(plain((await collect("ex_rm", { k: "b" }))?.exemplar), {
      labels: { main: "b" },
      value: 2,
      timestamp: 1,
    });

    // clear(): every series of the histogram, and their exemplars.
    histogram.clear();
    assert.deepEqual(family(await registry.collect(), "ex_rm_seconds").series, []);
    await tell({ metric: "ex_rm_seconds", labels: { k: "a" }, value: 0.5 });
    assert.deepEqual(await collect("ex_rm_seconds", { k: "a" }), {
      labels: { k: "a" },
      buckets: [1, 1],
      sum: 0.5,
      count: 1,
    });

    // reset(): the unlabelled counter is zero again, and without an exemplar.
    plainCounter.reset();
    assert.deepEqual(await collect("ex_rm_plain"), { labels: {}, value: 0 });
    await tell({ metric: "ex_rm_plain_total", value: 1 });
    assert.deepEqual(await collect("ex_rm_plain"), { labels: {}, value: 1 });
    await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  } finally {
    await stopAll([thread]);
  }
}, { timeout: 60_000 });

test(
  "while a thread rewrites exemplars in a loop, every exemplar a collection reads is one that was written",
  async () => {
    const handle = await shareMemory();
    const registry = new Registry();
    tornMetrics(registry);
    const progress = new SharedArrayBuffer(8);
    const words = new Int32Array(progress);
    const thread = startThread(WRITER, { handle, mode: "torn", id: 1, progress });
    try {
      assert.equal(await thread.next(), "ready");
      const seen = new Set<number>();
      let last = [0, 0, 0];
      let collections = 0;
      const started = Date.now();
      // At least 300 collections, and for at least a second, with the writer going meanwhile.
      while (collections < 300 || Date.now() - started < 1000) {
        const before = Atomics.load(words, 0);
        const families = await registry.collect();
        collections++;
        const counter = series<ValueSeries>(families, "ex_torn")!;
        const histogram = series<HistogramSeries>(families, "ex_torn_seconds")!;
        const read: [Exemplar | undefined, (i: number) => number][] = [
          [counter.exemplar, tornIncrement],
          [histogram.exemplars?.[0], tornObservation],
          [histogram.exemplars?.[1], tornObservation],
        ];
        read.forEach(([e, valueOf], slot) => {
          if (e === undefined) return;
          const i = e.timestamp!;
          assert.ok(Number.isInteger(i) && i >= 1, `timestamp ${i}`);
          assert.deepEqual({ ...e.labels }, tornLabels(i), `labels of write ${i}`);
          assert.equal(e.value, valueOf(i), `value of write ${i}`);
          // One writer: its latest exemplar never goes back, and is never ahead of it.
          assert.ok(i >= last[slot], `slot ${slot} went back from ${last[slot]} to ${i}`);
          // (The writer counts a write once both of its exemplars are written: one ahead at most.)
          assert.ok(i <= Atomics.load(words, 0) + 1, `write ${i} read before it was made`);
          last[slot] = i;
          seen.add(i);
        });
        assert.ok(counter.exemplar !== undefined || before === 0, "no counter exemplar after writes");
        if (collections % 100 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
      }
      last = [...last];
      Atomics.store(words, 1, 1);
      const { wrote } = (await thread.next(30_000)) as { wrote: number };
      assert.ok(seen.size >= 50, `${seen.size} distinct exemplars seen in ${collections} collections`);
      // Once the writer stopped, its very last write is what a collection shows.
      const families = await registry.collect();
      const counter = series<ValueSeries>(families, "ex_torn")!;
      assert.equal(
        counter.value,
        // Writes 1 and 3 on added to the counter; write 2 only observed.
        Array.from({ length: wrote }, (_, i) => tornIncrement(i + 1)).reduce((a, b) => a + b, 0) -
          tornIncrement(2),
      );
      assert.deepEqual(plain(counter.exemplar), {
        labels: tornLabels(wrote),
        value: tornIncrement(wrote),
        timestamp: wrote,
      });
      const histogram = series<HistogramSeries>(families, "ex_torn_seconds")!;
      const odd = wrote % 2 === 1 ? wrote : wrote - 1;
      const even = wrote % 2 === 0 ? wrote : wrote - 1;
      assert.deepEqual(histogram.exemplars?.map(plain), [
        { labels: tornLabels(odd), value: tornObservation(odd), timestamp: odd },
        { labels: tornLabels(even), value: tornObservation(even), timestamp: even },
      ]);
    } finally {
      Atomics.store(words, 1, 1);
      await stopAll([thread]);
    }
  },
  { timeout: 120_000 },
);

test("a slot's latest exemplar stays readable while its writer is stopped in the middle of the next write", () => {
  const arena = Arena.create(1 << 20);
  // A chunk of 8 slots in the arena's first page, past its header; slot 0 written by "thread 1".
  const chunk = new ExemplarChunk(arena, 1, 16_384, 8);
  const writer = chunk.claim(0, 5, 0);
  const seq = (writer.at >> 2) + 0;
  // A writer stopped (descheduled, or terminated) with a write begun: the sequence stays odd.
  const begin = () => Atomics.add(chunk.i32, seq, 1);
  const undo = () => Atomics.sub(chunk.i32, seq, 1);
  const read = (slot: ExemplarSlot = chunk.slot(0)) => {
    const exemplar = slot.read();
    return exemplar === undefined ? undefined : { ...exemplar, labels: { ...exemplar.labels } };
  };
  const a = { labels: { trace_id: "a" }, value: 1, timestamp: 10 };
  const b = { labels: { trace_id: "b", span_id: "é€𝄞" }, value: 2.5, timestamp: 20 };
  assert.equal(read(), undefined, "an empty slot");
  writer.write(a);
  begin();
  // A reader that never read the slot before (a new collection, another thread).
  assert.deepEqual(read(), a);
  undo();
  writer.write(b);
  const reader = chunk.slot(0);
  assert.deepEqual(read(reader), b);
  begin();
  assert.deepEqual(read(reader), b);
  assert.deepEqual(read(), b);
  undo();

  // A removal empties the slot, also while the owner's next write is under way; that write shows.
  reader.clear();
  assert.equal(read(reader), undefined);
  begin();
  assert.equal(read(reader), undefined);
  assert.equal(read(), undefined);
  undo();
  writer.write(a);
  assert.deepEqual(read(reader), a);

  // The sequence wraps around past 2^31 writes, the halves still alternating.
  Atomics.store(chunk.i32, seq, 0x7ffffffe);
  writer.write(b);
  assert.equal(Atomics.load(chunk.i32, seq), -0x80000000);
  assert.deepEqual(read(reader), b);
  writer.write(a);
  begin();
  assert.deepEqual(read(), a);
  assert.deepEqual(read(reader), a);
  undo();
  reader.clear();
  assert.equal(read(), undefined);
});

test("in one thread, shared memory keeps the exemplars the memory backend keeps", async () => {
  const record = async (): Promise<MetricFamily[]> => {
    const registry = new Registry();
    const counter = new Counter({ name: "ex_one_total", help: "One", labelNames: ["k"], registry });
    const histogram = new Histogram({ name: "ex_one_seconds", help: "One", buckets: [1, 2, 3], registry });
    // Recorded before the series exist in the arena, then after: in one thread the latest call
    // wins, whatever its timestamp, as in the memory backend.
    counter.labels({ k: "a" }).inc(1, { trace_id: "first" }, 50);
    counter.labels({ k: "a" }).inc(2, { trace_id: "second" }, 40);
    counter.labels({ k: "b" }).inc(1);
    histogram.observe(2.5, { trace_id: "early" }, 1);
    await flush();
    histogram.observe(1.5, { trace_id: "x", empty: "" }, 7);
    histogram.observe(9, {}, 8);
    counter.labels({ k: "b" }).inc(1, { trace_id: "b", span_id: "日本語" }, 9);
    const families = await registry.collect();
    // Read through the metric too: its collect() reads the same exemplars.
    assert.deepEqual(await histogram.collect(), [families[1]]);
    return families;
  };
  await loadBackend({ backend: "memory" });
  const memory = await record();
  try {
    await shareMemory();
    const shared = await record();
    assert.deepStrictEqual(shared, memory);
    const exemplars = (shared[1].series[0] as HistogramSeries).exemplars!;
    assert.equal(exemplars.length, 4);
    assert.equal(Object.hasOwn(exemplars, 0), false);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("a series' values keep exemplars before registration and read them back through exemplars()", async () => {
  const store = await SharedStore.join(Arena.create(1 << 20), 5000);
  const metric = {
    name: "ex_values_seconds",
    type: "histogram" as const,
    labelValues: { k: "v" },
    labelNames: ["k"],
  };
  store.define({
    name: metric.name,
    exposedName: metric.name,
    help: "Values",
    type: "histogram",
    labelNames: ["k"],
    buckets: [1, Infinity],
  });
  const values = store.values(metric, ["1.0", "+Inf", "sum"]);
  // Sparse, as the memory backend's: holes read as undefined here.
  const dense = (read: readonly (Exemplar | undefined)[] | undefined) => read && Array.from(read, plain);
  const early = { labels: { trace_id: "early" }, value: 3, timestamp: 20 };
  values.exemplar!(1, early);
  // Not registered yet: exemplars() waits for the registration, then reads the slot.
  assert.deepEqual(dense(await values.exemplars!()), [undefined, early]);
  const late = { labels: { trace_id: "late" }, value: 0.5, timestamp: 10 };
  values.exemplar!(0, late);
  const read = await values.exemplars!();
  assert.deepEqual(dense(read), [late, early]);
  // Another series' values of the same metric in this thread share its slots.
  const again = store.values(metric, ["1.0", "+Inf", "sum"]);
  await store.flush();
  assert.deepEqual(dense(await again.exemplars!()), [late, early]);
  values.dispose!();
  values.exemplar!(0, { labels: {}, value: 0.1, timestamp: 30 });
  assert.deepEqual(dense(await again.exemplars!()), [late, early]);
});

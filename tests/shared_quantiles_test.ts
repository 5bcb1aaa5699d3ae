// A summary with quantiles on the shared memory backend: its window moves slice after slice, and
// the arena does not grow with it (the buckets of a slice that left the window are given to the
// buckets of new slices), while the quantiles stay those of the memory backend, exactly.

import assert from "node:assert/strict";
import { flush, loadBackend, Registry, shareMemory, Summary, type SummarySeries } from "../mod.ts";
import { Arena } from "../backends/shared/arena.ts";
import { test } from "./_harness.ts";
import { startThread } from "./_threads.ts";
import { WINDOW_OPTIONS } from "./fixtures/shared_window.ts";

const WRITER = new URL("./fixtures/shared_window_writer.ts", import.meta.url);

// A seeded lognormal generator, so a failure reproduces.
function lognormal(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.exp(Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()));
}

async function only(registry: Registry): Promise<SummarySeries> {
  const [family] = await registry.collect();
  assert.equal(family.series.length, 1);
  return family.series[0] as SummarySeries;
}

test("shared memory: a summary's window moves for 60 slices without growing the arena, its quantiles those of memory", async () => {
  const realNow = Date.now;
  const slice = 1000; // maxAgeSeconds 5 in 5 slices
  let now = Math.ceil(realNow() / slice) * slice;
  Date.now = () => now;
  try {
    const handle = await shareMemory();
    const arena = new Arena((handle as unknown as { memory: WebAssembly.Memory }).memory);
    const options = { name: "window_seconds", help: "Window", quantiles: [0.5, 0.9, 0.99], maxAgeSeconds: 5 };
    const shared = new Registry();
    const onShared = new Summary({ ...options, registry: shared });
    await loadBackend({ backend: "memory" });
    const memory = new Registry();
    const inMemory = new Summary({ ...options, registry: memory });
    const next = lognormal(12);
    let warm = 0;
    for (let round = 0; round < 60; round++) {
      // Another spread each slice, so the slices' buckets differ.
      const scale = 1 + (round % 7);
      for (let i = 0; i < 1000; i++) {
        const value = next() * scale;
        onShared.observe(value);
        inMemory.observe(value);
      }
      await flush();
      const a = await only(shared);
      const b = await only(memory);
      assert.deepEqual(a.quantiles, b.quantiles, `round ${round}`);
      assert.equal(a.count, b.count);
      if (round === 15) warm = arena.used;
      now += slice;
    }
    // Each slice makes about 400 buckets; a record, labels and a value for each would be some
    // 70 KB a slice, 3 MB over the 45 slices after the warm-up.
    const grown = arena.used - warm;
    assert.ok(grown < 8192, `the arena grew by ${grown} bytes over 45 slices`);
  } finally {
    Date.now = realNow;
    await loadBackend({ backend: "memory" });
  }
});

test(
  "shared memory: 3 threads move a summary's window through many slices; then a new window holds only new values",
  async () => {
    const handle = await shareMemory();
    const arena = new Arena((handle as unknown as { memory: WebAssembly.Memory }).memory);
    const registry = new Registry();
    const summary = new Summary({ ...WINDOW_OPTIONS, registry });
    const rounds = 150; // some 2 s, 20 slices, with 10 ms between rounds
    const threads = [1, 2, 3].map((id) => startThread(WRITER, { handle, id, rounds }));
    try {
      for (const thread of threads) thread.post("go");
      // Meanwhile this thread reads, so that collections sweep slices too.
      const done = Promise.all(threads.map((thread) => thread.next(60_000)));
      // The arena once the window has filled (the threads a good way into their rounds: more than
      // 0.6 s of writing, past the 0.5 s window), and at the end.
      let warm: number | undefined;
      let settled = false;
      void done.then(() => (settled = true));
      while (!settled) {
        const { count } = await only(registry);
        if (warm === undefined && count >= 3 * 200 * 70) warm = arena.used;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      const reports = (await done) as { observed: number }[];
      assert.ok(warm !== undefined, "the threads were done before the window had filled");
      const grown = arena.used - warm!;
      // Without reuse, some 7 more slices of about 150 buckets, made by 3 threads, 200 B a bucket:
      // hundreds of kilobytes.
      assert.ok(grown < 64 * 1024, `the arena grew by ${grown} bytes once the window had filled`);
      // Once the window has passed, only what is observed now counts.
      await new Promise((resolve) => setTimeout(resolve, 700));
      for (let i = 1; i <= 1000; i++) summary.observe(i);
      await flush();
      const series = await only(registry);
      const total = reports.reduce((n, r) => n + r.observed, 0) + 1000;
      assert.equal(series.count, total);
      for (const { quantile, value } of series.quantiles!) {
        const exact = Math.floor(quantile * 999) + 1;
        assert.ok(Math.abs(value - exact) / exact <= 0.01, `quantile ${quantile}: ${value}, exact ${exact}`);
      }
    } finally {
      await Promise.allSettled(threads.map((thread) => thread.terminate()));
      await loadBackend({ backend: "memory" });
    }
  },
  { timeout: 60_000 },
);

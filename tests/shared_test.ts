// shareMemory() in one thread: its errors, the arena's limit, exact sums past the Int32 range,
// the fallback where memory cannot be shared, and the mutex (waitAsync and its fallback, and the
// lease of a holder that died). The threads themselves: tests/shared_threads_test.ts.

import assert from "node:assert/strict";
import {
  Counter,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  loadBackend,
  Registry,
  type SharedMemoryHandle,
  shareMemory,
} from "../mod.ts";
import { Arena, F_LOCK_TIME, H_LOCK } from "../backends/shared/arena.ts";
import { LEASE_MS, lock, unlock } from "../backends/shared/mutex.ts";
import { test } from "./_harness.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test("shareMemory() rejects what is not a handle, and bad options, with a TypeError naming them", async () => {
  try {
    for (const bad of [null, 42, "x", {}, { kind: "other", memory: undefined }]) {
      await assert.rejects(
        shareMemory(bad as unknown as SharedMemoryHandle),
        { name: "TypeError", message: /Invalid shareMemory\(\) handle/ },
      );
    }
    // A shared memory that holds no arena, an unshared one, and something else.
    const notArena = new WebAssembly.Memory({ initial: 1, maximum: 2, shared: true });
    await assert.rejects(
      shareMemory({ kind: "theus.shared-memory", memory: notArena }),
      { name: "TypeError", message: /holds no theus arena/ },
    );
    for (const memory of [new WebAssembly.Memory({ initial: 1 }), new SharedArrayBuffer(65536)]) {
      await assert.rejects(
        shareMemory({ kind: "theus.shared-memory", memory: memory as WebAssembly.Memory }),
        { name: "TypeError", message: /not a shared WebAssembly.Memory/ },
      );
    }
    await assert.rejects(shareMemory(undefined, { maxBytes: 1000 }), {
      name: "TypeError",
      message: /maxBytes/,
    });
    await assert.rejects(shareMemory(undefined, { maxBytes: 1.5e6 + 0.5 }), /maxBytes/);
    await assert.rejects(shareMemory(undefined, { maxBytes: 2 ** 32 + 65536 }), /maxBytes/);
    await assert.rejects(shareMemory(undefined, { instanceTtlSeconds: 0 }), /instanceTtlSeconds/);
    await assert.rejects(shareMemory(undefined, null as unknown as object), /options/);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("a full arena fails flush() and the collection with a RangeError naming maxBytes", async () => {
  try {
    await shareMemory(undefined, { maxBytes: 65536 });
    const registry = new Registry();
    const counter = new Counter({ name: "full_total", help: "h", labelNames: ["n"], registry });
    // 12 KiB per page of 1,024 values, plus text and records: 64 KiB holds a few thousand series.
    for (let i = 0; i < 20_000; i++) counter.labels({ n: String(i) }).inc();
    await assert.rejects(flush(), { name: "RangeError", message: /arena is full \(65536 bytes\).*maxBytes/ });
    // Reported once by flush(); every collection keeps failing with it: nothing is lost silently.
    await flush();
    await assert.rejects(registry.collect(), RangeError);
    await assert.rejects(registry.collect(), RangeError);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("sums stay exact past the Int32 range, whole and fractional increments mixed", async () => {
  try {
    await shareMemory();
    const registry = new Registry();
    const counter = new Counter({ name: "big_total", help: "h", registry });
    const histogram = new Histogram({ name: "big_h", help: "h", buckets: [1], registry });
    let expected = 0;
    const steps = [2 ** 31 - 1, 1, 2 ** 31, 0.5, 2 ** 31, 2 ** 40, 3, 2 ** 31 - 1, 0.25, 7];
    for (const step of steps) {
      counter.inc(step);
      histogram.observe(step);
      expected += step;
    }
    await flush();
    // Before the series existed the increments were kept locally; now they go to the page.
    for (let i = 0; i < 3_000; i++) counter.inc(2 ** 30);
    expected += 3_000 * 2 ** 30;
    assert.equal(await counter.get(), expected);
    const [, family] = await registry.collect();
    assert.deepEqual(family.series, [{
      labels: {},
      buckets: [steps.filter((v) => v <= 1).length, steps.length],
      sum: steps.reduce((a, b) => a + b, 0),
      count: steps.length,
    }]);
    const gauge = new Gauge({ name: "big_gauge", help: "h", mode: "sum", registry });
    gauge.inc(2 ** 31);
    gauge.inc(2 ** 31);
    await flush();
    assert.equal(await gauge.get(), 2 ** 32);
  } finally {
    await loadBackend({ backend: "memory" });
  }
});

test("where memory cannot be shared, shareMemory() keeps every thread's values its own, without error", async () => {
  const real = globalThis.SharedArrayBuffer;
  // Workers isolates and pages without cross-origin isolation have no SharedArrayBuffer.
  Object.defineProperty(globalThis, "SharedArrayBuffer", {
    value: undefined,
    configurable: true,
    writable: true,
  });
  try {
    const handle = await shareMemory();
    assert.deepEqual(handle, { kind: "theus.shared-memory", memory: undefined });
    // A worker given that handle carries on too.
    assert.deepEqual(await shareMemory(handle), handle);
    const registry = new Registry();
    new Counter({ name: "alone_total", help: "h", registry }).inc(2);
    assert.match(await generateLatest(registry), /^alone_total 2$/m);
  } finally {
    Object.defineProperty(globalThis, "SharedArrayBuffer", {
      value: real,
      configurable: true,
      writable: true,
    });
    await loadBackend({ backend: "memory" });
  }
});

for (const waits of ["Atomics.waitAsync", "a timer (no Atomics.waitAsync)"]) {
  test(`the mutex hands over to a waiter without blocking, waiting with ${waits}`, async () => {
    const atomics = Atomics as unknown as { waitAsync?: unknown };
    const real = atomics.waitAsync;
    if (waits.startsWith("a timer")) atomics.waitAsync = undefined;
    else assert.equal(typeof real, "function", "this runtime has Atomics.waitAsync");
    try {
      const arena = Arena.create(65536);
      await lock(arena.header, arena.headerF64, 1);
      let second = false;
      const waiting = lock(arena.header, arena.headerF64, 2).then(() => (second = true));
      let turns = 0;
      for (; turns < 5; turns++) await sleep(5);
      assert.equal(second, false, "the mutex was taken twice");
      const released = Date.now();
      unlock(arena.header, 1);
      await waiting;
      assert.ok(Date.now() - released < 200, `handed over in ${Date.now() - released} ms`);
      // Unlocking as a thread that does not hold it changes nothing.
      unlock(arena.header, 1);
      let third = false;
      const after = lock(arena.header, arena.headerF64, 3).then(() => (third = true));
      await sleep(20);
      assert.equal(third, false);
      unlock(arena.header, 2);
      await after;
      unlock(arena.header, 3);
    } finally {
      atomics.waitAsync = real;
    }
  });
}

test("a mutex held past its lease is taken over; one within it is waited for", async () => {
  const arena = Arena.create(65536);
  await lock(arena.header, arena.headerF64, 7);
  // Thread 7 took it LEASE_MS - 300 ms ago and died: the waiter takes it when the lease ends.
  arena.headerF64[F_LOCK_TIME] = Date.now() - LEASE_MS + 300;
  const started = Date.now();
  await lock(arena.header, arena.headerF64, 8);
  const waited = Date.now() - started;
  assert.ok(waited >= 250 && waited < 1000, `waited ${waited} ms`);
  assert.equal(Atomics.load(arena.header, H_LOCK), 8 + 1);
  unlock(arena.header, 8);
  assert.equal(Atomics.load(arena.header, H_LOCK), 0);
});

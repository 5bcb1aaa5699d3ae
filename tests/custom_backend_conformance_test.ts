// The conformance suite against a backend written the way a user would write one, from the
// documented protocol only: a class over a Map given in the config, with asynchronous reads.

import assert from "node:assert/strict";
import { type BackendConfig, Counter, loadBackend, Registry } from "../mod.ts";
import type { Backend, MetricInfo } from "../core/backend.ts";
import { test } from "./_harness.ts";
import { conformance } from "./conformance.ts";

type Store = Map<string, number>;

class MapBackend implements Backend {
  static initialized = 0;
  #store: Store;
  #key: string;
  #removed = false;

  static initialize(config: BackendConfig): void {
    if (!(config.store instanceof Map)) throw new TypeError("MapBackend needs a Map in config.store");
    MapBackend.initialized++;
  }

  static async flush(): Promise<void> {
    // Nothing is buffered; the hook only has to resolve.
    await Promise.resolve();
  }

  constructor(config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
    this.#store = config.store as Store;
    this.#key = JSON.stringify([metric.name, metric.labelValues, histogramBucket ?? ""]);
  }

  inc(value: number): void {
    if (this.#removed) return;
    this.#store.set(this.#key, (this.#store.get(this.#key) ?? 0) + value);
  }

  dec(value: number): void {
    this.inc(-value);
  }

  set(value: number): void {
    if (this.#removed) return;
    this.#store.set(this.#key, value);
  }

  // The series was removed: a child made later for the same labels starts from zero.
  dispose(): void {
    this.#removed = true;
    this.#store.delete(this.#key);
  }

  async get(): Promise<number> {
    await Promise.resolve();
    return this.#store.get(this.#key) ?? 0;
  }
}

async function useMapBackend(store: Store): Promise<void> {
  await loadBackend({ backend: MapBackend, config: { store } });
}

conformance("custom backend", async () => {
  await useMapBackend(new Map());
  return { registry: new Registry(), cleanup: () => loadBackend({ backend: "memory" }) };
});

test("custom backend: metrics created after loadBackend() keep their values in its store", async () => {
  const store: Store = new Map();
  const before = MapBackend.initialized;
  await useMapBackend(store);
  try {
    assert.equal(MapBackend.initialized, before + 1);
    const c = new Counter({ name: "in_store_total", help: "In store", labelNames: ["a"], registry: null });
    c.labels({ a: "x" }).inc(4);
    assert.deepEqual([...store], [[JSON.stringify(["in_store_total", { a: "x" }, ""]), 4]]);
    const pending = c.labels({ a: "x" }).get();
    assert.ok(pending instanceof Promise);
    assert.equal(await pending, 4);
  } finally {
    await loadBackend({ backend: "memory" });
  }
  const after = new Counter({ name: "after_total", help: "After", registry: null });
  after.inc();
  assert.equal(store.size, 1, "a metric created after restoring memory does not use the store");
});

test("custom backend: loadBackend() rejects with the error its initialize() throws", async () => {
  await assert.rejects(
    loadBackend({ backend: MapBackend, config: { store: "not a map" } }),
    (e: unknown) => e instanceof TypeError && e.message.includes("config.store"),
  );
});

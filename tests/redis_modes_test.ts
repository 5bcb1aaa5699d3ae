// Gauge modes across instances on one redis-server. Each config object is its own store, with
// its own instance id: two or three config objects behave like two or three processes.

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import {
  flush,
  Gauge,
  type GaugeOptions,
  generateLatest,
  type Labels,
  loadBackend,
  type MetricFamily,
  Registry,
} from "../mod.ts";
import type { GaugeMode } from "../core/backend.ts";
import { RedisBackend } from "../backends/redis.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { test } from "./_harness.ts";

async function withRedis(fn: (server: RedisServer) => Promise<void>): Promise<void> {
  const server = await startRedis();
  try {
    await fn(server);
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
    await server.stop();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One store ("process"): its registry and a gauge per mode, created under its own config. */
interface Instance {
  registry: Registry;
  gauges: Map<GaugeMode, Gauge>;
}

async function instance(
  config: Record<string, unknown>,
  modes: readonly GaugeMode[],
  options: Partial<GaugeOptions> = {},
): Promise<Instance> {
  await loadBackend({ backend: "redis", config });
  const registry = new Registry();
  const gauges = new Map<GaugeMode, Gauge>();
  for (const mode of modes) {
    gauges.set(mode, new Gauge({ name: `mode_${mode}`, help: `Mode ${mode}`, mode, registry, ...options }));
  }
  return { registry, gauges };
}

type Sample = { labels: Labels; value: number };

function samples(families: readonly MetricFamily[], name: string): Sample[] {
  const found = families.find((f) => f.name === name);
  assert.ok(found !== undefined, `family "${name}" was not collected`);
  return [...(found.series as Sample[])].sort((a, b) =>
    JSON.stringify(a.labels) < JSON.stringify(b.labels) ? -1 : 1
  );
}

function single(families: readonly MetricFamily[], name: string): number {
  const series = samples(families, name);
  assert.equal(series.length, 1, `${name}: ${JSON.stringify(series)}`);
  return series[0].value;
}

test("an unknown gauge mode is a TypeError at construction", () => {
  for (const mode of ["avg", "", "SUM", "live", 1]) {
    assert.throws(
      () => new Gauge({ name: "bad_mode", help: "Bad", mode: mode as GaugeMode, registry: null }),
      (error: unknown) =>
        error instanceof TypeError && /Invalid mode .* for gauge "bad_mode"/.test(error.message),
      String(mode),
    );
  }
  for (const mode of ["all", "liveall"] as const) {
    assert.throws(
      () =>
        new Gauge({ name: "bad_label", help: "Bad", mode, labelNames: ["theus_instance"], registry: null }),
      TypeError,
    );
  }
});

test("shared, sum, max, min, latest and all combine three instances", async () => {
  await withRedis(async (server) => {
    const modes: GaugeMode[] = ["shared", "sum", "max", "min", "latest", "all"];
    const config = (id: string) => ({
      url: server.url,
      keyPrefix: "modes",
      flushIntervalMs: 0,
      instanceId: id,
    });
    const a = await instance(config("a"), modes, { labelNames: ["k"] });
    const b = await instance(config("b"), modes, { labelNames: ["k"] });
    const c = await instance(config("c"), modes, { labelNames: ["k"] });
    const written = { a: 5, b: 2, c: 9 };
    // One instance after the other, each flushed (and a few ms apart for "latest").
    for (const [id, inst] of [["a", a], ["b", b], ["c", c]] as const) {
      for (const g of inst.gauges.values()) g.labels({ k: "x" }).set(written[id]);
      await flush();
      await sleep(5);
    }
    let families = await a.registry.collect();
    assert.equal(single(families, "mode_shared"), 9); // set: the last writer wins
    assert.equal(single(families, "mode_sum"), 5 + 2 + 9);
    assert.equal(single(families, "mode_max"), 9);
    assert.equal(single(families, "mode_min"), 2);
    assert.equal(single(families, "mode_latest"), 9);
    assert.deepEqual(samples(families, "mode_all"), [
      { labels: { k: "x", theus_instance: "a" }, value: 5 },
      { labels: { k: "x", theus_instance: "b" }, value: 2 },
      { labels: { k: "x", theus_instance: "c" }, value: 9 },
    ]);
    // Every instance reads the same.
    assert.deepEqual(await c.registry.collect(), families);

    // inc and dec: shared adds across instances; the others change the instance's own value.
    for (const g of a.gauges.values()) g.labels({ k: "x" }).inc(1);
    for (const g of b.gauges.values()) g.labels({ k: "x" }).dec(4);
    await flush();
    await sleep(5);
    for (const g of a.gauges.values()) g.labels({ k: "x" }).inc(0.5); // a is written last
    await flush();
    families = await b.registry.collect();
    const [va, vb, vc] = [5 + 1 + 0.5, 2 - 4, 9];
    assert.equal(single(families, "mode_shared"), 9 + 1 - 4 + 0.5);
    assert.equal(single(families, "mode_sum"), va + vb + vc);
    assert.equal(single(families, "mode_max"), Math.max(va, vb, vc));
    assert.equal(single(families, "mode_min"), Math.min(va, vb, vc));
    assert.equal(single(families, "mode_latest"), va);
    assert.deepEqual(samples(families, "mode_all").map((s) => s.value), [va, vb, vc]);
    const text = await generateLatest(b.registry);
    assert.ok(text.includes(`\nmode_all{k="x",theus_instance="b"} ${vb}\n`), text);
  });
});

test("live modes drop an instance whose heartbeat expired, the others keep it", async () => {
  await withRedis(async (server) => {
    const modes: GaugeMode[] = ["livesum", "livemax", "livemin", "livelatest", "liveall", "sum", "all"];
    const common = { url: server.url, keyPrefix: "live", instanceTtlSeconds: 1 };
    // "a" keeps flushing on its interval; "d" writes once, then its connection is gone, as if
    // its process had died.
    const dead = new Redis(server.url);
    const a = await instance({ ...common, instanceId: "a", flushIntervalMs: 100 }, modes);
    const d = await instance({ ...common, client: dead, instanceId: "d", flushIntervalMs: 0 }, modes);
    try {
      for (const g of a.gauges.values()) g.set(3);
      await flush();
      await sleep(5);
      for (const g of d.gauges.values()) g.set(10);
      await flush();
      let families = await a.registry.collect();
      assert.equal(single(families, "mode_livesum"), 13);
      assert.equal(single(families, "mode_livemax"), 10);
      assert.equal(single(families, "mode_livemin"), 3);
      assert.equal(single(families, "mode_livelatest"), 10);
      assert.deepEqual(samples(families, "mode_liveall"), [
        { labels: { theus_instance: "a" }, value: 3 },
        { labels: { theus_instance: "d" }, value: 10 },
      ]);

      await dead.quit();
      await sleep(1500);
      families = await a.registry.collect();
      assert.equal(single(families, "mode_livesum"), 3);
      assert.equal(single(families, "mode_livemax"), 3);
      assert.equal(single(families, "mode_livemin"), 3);
      assert.equal(single(families, "mode_livelatest"), 3);
      assert.deepEqual(samples(families, "mode_liveall"), [{ labels: { theus_instance: "a" }, value: 3 }]);
      // The non-live modes still count the silent instance.
      assert.equal(single(families, "mode_sum"), 13);
      assert.equal(samples(families, "mode_all").length, 2);

      // The live instance's later changes keep showing.
      for (const g of a.gauges.values()) g.set(1);
      await flush();
      families = await a.registry.collect();
      assert.equal(single(families, "mode_livesum"), 1);
    } finally {
      if (dead.status !== "end") await dead.quit();
    }
  });
});

// The Redis backend's cases, against a real redis-server: the hot path beside the memory
// backend, update throughput beside one awaited command per update, and a flush and a
// collection of 10,000 series with the round trips Redis counted.

import { Redis as IoRedis } from "ioredis";
import {
  Counter,
  defaultRegistry,
  flush,
  generateLatest,
  Histogram,
  type HistogramSeries,
  loadBackend,
  type MetricFamily,
  Registry,
  type ValueSeries,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { metricKey, SHARDS } from "../backends/_remote/layout.ts";
import { READ_BUDGET } from "../backends/_remote/reader.ts";
import type { RedisServer } from "../tests/_redis.ts";
import {
  fmt,
  median,
  type PairResult,
  type Side,
  timeSides,
  timeSidesYielding,
  type TimingOptions,
  withTicker,
} from "./_harness.ts";
import {
  atLeast,
  atMost,
  check,
  countRow,
  familyOf,
  hashSum,
  infoRow,
  LABEL_NAMES,
  labelsOf,
  M100,
  notes,
  OBSERVED,
  rate,
  rows,
  SERIES,
  type Settings,
  sleep,
  valueSum,
} from "./_remote_common.ts";

/** Calls (and rejected calls) per command since the last CONFIG RESETSTAT, redis-cli's own left out. */
async function commandStats(server: RedisServer): Promise<Map<string, number>> {
  const text = await server.cli("info", "commandstats");
  const out = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+),.*rejected_calls=(\d+)/gm)) {
    out.set(m[1], Number(m[2]) + Number(m[3]));
  }
  out.delete("info");
  out.delete("config|resetstat");
  return out;
}

/** Scripts sent: what a theus flush or collection costs in round trips (the commands they run are internal). */
const scriptCalls = (stats: Map<string, number>) => (stats.get("evalsha") ?? 0) + (stats.get("eval") ?? 0);

const describeStats = (stats: Map<string, number>) =>
  [...stats].map(([name, n]) => `${name} ${n}`).join(", ");

async function redisHotPath(s: Settings, server: RedisServer, interval: number | undefined): Promise<void> {
  const label = interval === undefined ? "flush every 1 s (default)" : `flush every ${interval / 1000} s`;
  await loadBackend({ backend: "memory" });
  const memReg = new Registry();
  const memCounter = new Counter({ name: "hot_total", help: "h", labelNames: LABEL_NAMES, registry: memReg });
  const memHist = new Histogram({
    name: "hot_seconds",
    help: "h",
    labelNames: LABEL_NAMES,
    registry: memReg,
  });
  const prefix = `bench-hot-${interval ?? "default"}`;
  const config = {
    port: server.port,
    keyPrefix: prefix,
    ...(interval === undefined ? {} : { flushIntervalMs: interval }),
  };
  await loadBackend({ backend: RedisBackend, config });
  const redisReg = new Registry();
  const redisCounter = new Counter({
    name: "hot_total",
    help: "h",
    labelNames: LABEL_NAMES,
    registry: redisReg,
  });
  const redisHist = new Histogram({
    name: "hot_seconds",
    help: "h",
    labelNames: LABEL_NAMES,
    registry: redisReg,
  });
  await flush(); // the series' creation, and the script loaded into Redis

  const GET_200 = { method: "GET", status: "200" };
  const time = interval === undefined ? timeSidesYielding : (s: Side[], o: TimingOptions) => timeSides(s, o);
  const before = await flushes(prefix);

  const mc = memCounter.labels(GET_200);
  const rc = redisCounter.labels(GET_200);
  const incSides: Side[] = [
    {
      lib: "memory",
      label: "child.inc()",
      loop: (n) => {
        for (let i = 0; i < n; i++) mc.inc();
        return n;
      },
    },
    {
      lib: "redis",
      label: "child.inc()",
      loop: (n) => {
        for (let i = 0; i < n; i++) rc.inc();
        return n;
      },
    },
  ];
  // The first time only: while every delta in the process has been an integer. Then histogram
  // observations (fractional sums), the state of a real application: the engine's code for a
  // remote value's inc() has then seen doubles.
  let integer: PairResult | undefined;
  if (interval === 60_000) integer = timeSides(incSides, s.timing);
  const warmRedis = redisHist.labels({ method: "warm", status: "0" });
  const warmMem = memHist.labels({ method: "warm", status: "0" });
  for (let i = 0; i < 200_000; i++) {
    warmRedis.observe(OBSERVED[i & 63]);
    warmMem.observe(OBSERVED[i & 63]);
  }
  await flush();
  const inc: PairResult = await time(incSides, s.timing);

  const mh = memHist.labels(GET_200);
  const rh = redisHist.labels(GET_200);
  const observeSides: Side[] = [
    {
      lib: "memory",
      label: "child.observe(v)",
      loop: (n) => {
        for (let i = 0; i < n; i++) mh.observe(OBSERVED[i & 63]);
        return n;
      },
    },
    {
      lib: "redis",
      label: "child.observe(v)",
      loop: (n) => {
        for (let i = 0; i < n; i++) rh.observe(OBSERVED[i & 63]);
        return n;
      },
    },
  ];
  const observe: PairResult = await time(observeSides, s.timing);
  const during = (await flushes(prefix)) - before;

  const [incMem, incRedis] = inc.nsPerOp;
  atMost(
    `redis hot: child inc(), ${label}`,
    fmt(incRedis, "ns"),
    `${fmt(incMem, "ns")} memory`,
    incRedis / incMem,
    2,
  );
  if (integer !== undefined) {
    const [mem, redis] = integer.nsPerOp;
    rows.push({
      case: "  child inc() before any fractional delta in the process",
      theus: fmt(redis, "ns"),
      baseline: `${fmt(mem, "ns")} memory`,
      ratio: redis / mem,
      target: "-",
      status: "-",
    });
  }
  const [obsMem, obsRedis] = observe.nsPerOp;
  const observeName = `redis hot: histogram observe(), 11 buckets, ${label}`;
  atMost(observeName, fmt(obsRedis, "ns"), `${fmt(obsMem, "ns")} memory`, obsRedis / obsMem, 2);
  if (interval === undefined) {
    notes.push(`default interval: ${during} background flush(es) ran between the timed batches`);
  }

  // Both backends recorded every update: the values read back from Redis equal memory's.
  const incOps = inc.totalOps + (integer?.totalOps ?? 0);
  check("hot: memory inc value", mc.get(), incOps);
  check("hot: redis inc value (read from Redis)", await rc.get(), incOps);
  const histOf = async (reg: Registry) =>
    familyOf(await reg.collect(), "hot_seconds")!.series.find((s) =>
      s.labels.method === "GET"
    ) as HistogramSeries;
  const memSeries = await histOf(memReg);
  const redisSeries = await histOf(redisReg);
  check("hot: memory observe count", memSeries.count, observe.totalOps);
  check("hot: redis observe count", redisSeries.count, observe.totalOps);
  check("hot: redis buckets", redisSeries.buckets, memSeries.buckets);
  check("hot: redis sum", redisSeries.sum, memSeries.sum);
}

async function redisThroughput(s: Settings, server: RedisServer, client: IoRedis): Promise<void> {
  // theus: 64 cached children updated for a fixed time, the event loop turning every ~10 ms so
  // the default 1 s background flush runs; the final flush is part of the time.
  await loadBackend({ backend: RedisBackend, config: { port: server.port, keyPrefix: "bench-tp" } });
  const reg = new Registry();
  const counter = new Counter({ name: "tp_total", help: "h", labelNames: LABEL_NAMES, registry: reg });
  const children = Array.from({ length: 64 }, (_, i) => counter.labels({ method: M100[i], status: "200" }));
  await flush();
  const loop = (n: number) => {
    for (let i = 0; i < n; i++) children[i & 63].inc();
    return n;
  };
  // Chunks of about 10 ms of updates; the calibration's updates are flushed before timing.
  let chunk = 1 << 14;
  let calibration = 0;
  for (let ms = 0; ms < 10 && chunk < 1 << 26;) {
    const start = performance.now();
    calibration += loop(chunk);
    ms = performance.now() - start;
    if (ms < 10) chunk *= 2;
  }
  await flush();
  const before = await flushes("bench-tp");
  let ops = 0;
  const start = performance.now();
  while (performance.now() - start < s.throughputMs) {
    ops += loop(chunk);
    await sleep(0);
  }
  await flush();
  const theusMs = performance.now() - start;
  const periodic = (await flushes("bench-tp")) - before - 1;

  // The naive way: await one command per update.
  const key = "bench:naive";
  const fields = children.map((_, i) => `M${i}`);
  let naive = 0;
  const naiveStart = performance.now();
  while (performance.now() - naiveStart < s.baselineMs) {
    await client.hincrbyfloat(key, fields[naive++ & 63], 1);
  }
  const naiveMs = performance.now() - naiveStart;

  const theusRate = (ops / theusMs) * 1000;
  const naiveRate = (naive / naiveMs) * 1000;
  atLeast(
    "redis updates/s: inc() + flushes vs await HINCRBYFLOAT",
    rate(theusRate),
    rate(naiveRate),
    theusRate / naiveRate,
    100,
  );
  notes.push(
    `throughput: theus ${ops} updates in ${
      fmt(theusMs, "ms")
    } (${periodic} periodic flush(es) + the final one), ` +
      `baseline ${naive} awaited commands in ${fmt(naiveMs, "ms")}`,
  );
  const family = familyOf(await reg.collect(), "tp_total");
  check("throughput: theus total in Redis", valueSum(family), calibration + ops);
  check("throughput: baseline total in Redis", await hashSum(client, key), naive);
}

async function redisFlushAndCollect(s: Settings, server: RedisServer, client: IoRedis): Promise<void> {
  const prefix = "bench-flush";
  await loadBackend({
    backend: RedisBackend,
    config: { port: server.port, keyPrefix: prefix, flushIntervalMs: 60_000 },
  });
  const reg = new Registry();
  const counter = new Counter({ name: "flush_total", help: "h", labelNames: LABEL_NAMES, registry: reg });
  const children = Array.from({ length: SERIES }, (_, i) => counter.labels(labelsOf(i)));
  await flush(); // the series' creation

  const ms: number[] = [];
  const holds: number[] = [];
  const scriptMs: number[] = []; // the script's run time inside Redis
  let trips = -1;
  let detail = "";
  for (let round = 0; round < s.flushRounds; round++) {
    for (const child of children) child.inc();
    await server.cli("config", "resetstat");
    const run = await withTicker(() => flush());
    ms.push(run.ms);
    holds.push(run.maxGapMs);
    const stats = await commandStats(server);
    trips = Math.max(trips, scriptCalls(stats));
    detail = describeStats(stats);
    const usec = (await server.cli("info", "commandstats")).match(/^cmdstat_evalsha:calls=\d+,usec=(\d+)/m)
      ?.[1];
    scriptMs.push(Number(usec) / 1000);
  }
  // The baseline: the same changes as one ioredis pipeline, one HINCRBYFLOAT per series.
  const key = "bench:pipeline";
  const fields = children.map((_, i) => JSON.stringify(labelsOf(i)));
  const pipeMs: number[] = [];
  for (let round = 0; round < s.flushRounds; round++) {
    const start = performance.now();
    const pipeline = client.pipeline();
    for (const field of fields) pipeline.hincrbyfloat(key, field, 1);
    pipeline.expire(key, 3600);
    await pipeline.exec();
    pipeMs.push(performance.now() - start);
  }
  atLeast(
    "redis flush of 10k changed series (median)",
    fmt(median(ms), "ms"),
    `${fmt(median(pipeMs), "ms")} pipeline`,
    median(pipeMs) / median(ms),
  );
  countRow("  round trips (EVALSHA + EVAL calls)", trips, "10000 commands", 1, 1);
  infoRow(
    "  max event-loop hold during the flush",
    `${fmt(Math.max(...holds), "ms")} (p50 ${fmt(median(holds), "ms")})`,
  );
  notes.push(
    `flush 10k: Redis ran ${detail}; the script took ${fmt(median(scriptMs), "ms")} in Redis (median)`,
  );

  // Collection: registry.collect() and generateLatest() of the 10,000 series, nothing pending.
  // The baseline reads the metric's hashes, one per shard, in one pipeline of HGETALLs. theus
  // reads at most READ_BUDGET fields a call: the hashes that fit in the first call, then the
  // others (their sizes known), so at least two calls and at most one more.
  const hashKeys = Array.from({ length: SHARDS }, (_, shard) => metricKey(prefix, "flush_total", shard));
  const fewestCalls = Math.ceil(SERIES / READ_BUDGET);
  for (
    const [name, work] of [["registry.collect()", () => reg.collect()], [
      "generateLatest()",
      () => generateLatest(reg),
    ]] as const
  ) {
    const times: number[] = [];
    const gaps: number[] = [];
    let most = 0;
    let forbidden = 0;
    let result: unknown;
    for (let round = 0; round < s.collectRounds; round++) {
      await server.cli("config", "resetstat");
      const run = await withTicker(work as () => Promise<unknown>);
      const stats = await commandStats(server);
      times.push(run.ms);
      gaps.push(run.maxGapMs);
      result = run.result;
      most = Math.max(most, scriptCalls(stats));
      forbidden += (stats.get("keys") ?? 0) + (stats.get("scan") ?? 0);
    }
    const raw: number[] = [];
    for (let round = 0; round < s.collectRounds; round++) {
      const start = performance.now();
      const pipeline = client.pipeline();
      for (const key of hashKeys) pipeline.hgetall(key);
      await pipeline.exec();
      raw.push(performance.now() - start);
    }
    atLeast(
      `redis ${name} of 10k series (median)`,
      fmt(median(times), "ms"),
      `${fmt(median(raw), "ms")} raw HGETALLs`,
      median(raw) / median(times),
    );
    countRow(
      "  round trips (EVALSHA + EVAL calls)",
      most,
      `${SHARDS} HGETALLs`,
      fewestCalls,
      fewestCalls + 1,
    );
    check(`${name}: KEYS or SCAN calls`, forbidden, 0);
    infoRow("  max event-loop hold", `${fmt(Math.max(...gaps), "ms")} (p50 ${fmt(median(gaps), "ms")})`);
    if (name === "registry.collect()") {
      const family = familyOf(result as MetricFamily[], "flush_total");
      check("collect: series", family?.series.length, SERIES);
      check("collect: total", valueSum(family), SERIES * s.flushRounds);
    } else {
      check(
        "generateLatest: sample lines",
        (result as string).split("\n").filter((l) => l.startsWith("flush_total{")).length,
        SERIES,
      );
    }
  }
  check("pipeline baseline: total", await hashSum(client, key), SERIES * s.flushRounds);
}

/** Flushes attempted by the Redis store of a key prefix, from the library's own metrics. */
async function flushes(prefix: string): Promise<number> {
  const family = familyOf(await defaultRegistry.collect(), "theus_backend_flushes");
  return ((family?.series ?? []) as ValueSeries[])
    .filter((s) => s.labels.backend === "redis" && s.labels.key_prefix === prefix)
    .reduce((sum, s) => sum + s.value, 0);
}

/**
 * The Redis backend against the memory backend (hot path) and against one awaited command per
 * update (throughput), a flush and a collection of 10,000 series with their round trips.
 *
 * @param s The settings.
 * @param server The redis-server to use.
 */
export async function redisCases(s: Settings, server: RedisServer): Promise<void> {
  const client = new IoRedis({ port: server.port, host: "127.0.0.1" });
  try {
    await redisHotPath(s, server, 60_000);
    await redisHotPath(s, server, undefined);
    await redisThroughput(s, server, client);
    await redisFlushAndCollect(s, server, client);
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
    client.disconnect();
  }
}

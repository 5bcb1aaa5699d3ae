// The Redis backend on a real Redis Cluster of three masters (tests/_cluster.ts): the series of
// every metric spread over the masters by their shards' hash tags; writers on Deno, Bun and Node
// adding up exactly; a master paused mid-run (timed-out script calls whose scripts still run
// once it resumes) costing nothing and counting nothing twice while the other masters go on; a
// Cluster client passed in; bad cluster configs; and large collections, also while a master is
// paused. Every test starts a cluster of its own and stops it.
//
// The Node writers run from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir
// in THEUS_WRITER_DIST.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";
import { Cluster } from "ioredis";
import {
  BackendUnavailableError,
  Counter,
  defaultRegistry,
  Gauge,
  Histogram,
  loadBackend,
  type MetricFamily,
  metricsHandler,
  Registry,
  type ValueSeries,
} from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import {
  keySlot,
  labelsText,
  metricKey,
  parseField,
  shardOf,
  SHARDS,
} from "../../backends/_remote/layout.ts";
import { test } from "../_harness.ts";
import { type RedisCluster, startCluster } from "../_cluster.ts";
import {
  type ClusterTotals,
  type ClusterWriterReport,
  type ClusterWriterSpec,
  COUNTER,
  COUNTER_SETS,
  defineClusterMetrics,
  expectedTotals,
  GAUGE,
  HISTOGRAM,
  setName,
  sortedTotals,
  totalsOf,
} from "../_cluster_writer.ts";
import { childCommand, ROOT } from "../_root.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Below the 2 s pauses, so that calls to a paused master time out during the pause. */
const COMMAND_TIMEOUT_MS = 500;

/** Starts a cluster, runs `body`, and always restores the memory backend and stops the cluster. */
async function withCluster(body: (cluster: RedisCluster) => Promise<void>): Promise<void> {
  const cluster = await startCluster();
  try {
    await body(cluster);
  } finally {
    // A master a failed test left paused would hold up the close's flush.
    for (const node of cluster.nodes) cluster.resume(node.port);
    try {
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
    } finally {
      await cluster.stop();
    }
  }
}

/** Reads a hash straight from the master that serves its slot: field -> value. */
async function rawHash(cluster: RedisCluster, key: string): Promise<Map<string, string>> {
  const port = cluster.portOfSlot(keySlot(key));
  const text = await cluster.cli(port, "--raw", "HGETALL", key);
  if (/^(MOVED|ASK|ERR|WRONGTYPE|CLUSTERDOWN)/.test(text)) {
    throw new Error(`HGETALL ${key} on ${port}: ${text}`);
  }
  const lines = text === "" ? [] : text.split("\n");
  assert.equal(lines.length % 2, 0, `HGETALL ${key}: an odd number of lines`);
  const out = new Map<string, string>();
  for (let i = 0; i < lines.length; i += 2) out.set(lines[i], lines[i + 1]);
  return out;
}

/** The label `k` of a stored labels text: `["k","s3"]`. */
function kOf(labels: string): string {
  const flat = JSON.parse(labels) as string[];
  assert.deepEqual(flat.length, 2, `labels ${labels}`);
  assert.equal(flat[0], "k");
  return flat[1];
}

/**
 * The workload's totals read straight from the shard hashes on each master, with the layout's
 * fields (`<labels>|<value>|<instance>`), independently of the library's reader.
 */
async function rawTotals(cluster: RedisCluster, keyPrefix: string): Promise<ClusterTotals> {
  const totals: ClusterTotals = { counter: {}, histogram: {}, gauge: {} };
  const buckets = new Map<string, Map<number, number>>();
  for (let shard = 0; shard < SHARDS; shard++) {
    for (const [field, value] of await rawHash(cluster, metricKey(keyPrefix, COUNTER, shard))) {
      const parts = parseField(field)!;
      assert.equal(parts.value, "", `counter field ${field}`);
      totals.counter[kOf(parts.labels)] = Number(value);
    }
    for (const [field, value] of await rawHash(cluster, metricKey(keyPrefix, HISTOGRAM, shard))) {
      const parts = parseField(field)!;
      const k = kOf(parts.labels);
      const h = totals.histogram[k] ??= { buckets: [], sum: 0, count: 0 };
      if (parts.value === "sum") h.sum = Number(value);
      else {
        // A bucket's own count, not cumulative; its name is its bound ("+Inf" for the last).
        let counts = buckets.get(k);
        if (counts === undefined) buckets.set(k, counts = new Map());
        counts.set(Number(parts.value), Number(value));
      }
    }
    for (const [field, value] of await rawHash(cluster, metricKey(keyPrefix, GAUGE, shard))) {
      const parts = parseField(field)!;
      // Mode "sum": one field per instance, added up.
      assert.notEqual(parts.instance, "", `gauge field ${field}`);
      const k = kOf(parts.labels);
      totals.gauge[k] = (totals.gauge[k] ?? 0) + Number(value);
    }
  }
  for (const [k, counts] of buckets) {
    const h = totals.histogram[k];
    let count = 0;
    for (const [, n] of [...counts].sort((a, b) => a[0] - b[0])) h.buckets.push(count += n);
    h.count = count;
  }
  return totals;
}

/** Reads the workload back through a registry of its own on the redis backend. */
async function readBack(cluster: RedisCluster, keyPrefix: string): Promise<MetricFamily[]> {
  await loadBackend({
    backend: "redis",
    config: { cluster: [...cluster.addresses], keyPrefix, flushIntervalMs: 0 },
  });
  try {
    const registry = new Registry();
    defineClusterMetrics(registry);
    return await registry.collect();
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Writer processes.

interface FleetOptions {
  keyPrefix: string;
  rounds: number;
  roundMs: number;
  flushEachRound: boolean;
  /** Runs once every writer got "go", while they record. */
  during?: () => Promise<void>;
}

interface RunningWriter {
  readonly id: string;
  readonly ready: Promise<void>;
  readonly done: Promise<ClusterWriterReport>;
  go(): void;
  kill(): void;
}

function startWriter(spec: ClusterWriterSpec, runtime: "deno" | "bun" | "node"): RunningWriter {
  const [cmd, args] = childCommand(runtime, "tests/_cluster_writer.ts");
  const child: ChildProcess = spawn(cmd, args, {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", THEUS_CLUSTER_WRITER: JSON.stringify(spec) },
  });
  let stdout = "";
  let stderr = "";
  let markReady: () => void = () => {};
  let failReady: (error: Error) => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    if (stdout.includes('"event":"ready"')) markReady();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const describe = (how: unknown) =>
    `writer ${spec.id} (${runtime}) exited with ${how}\n--- stdout\n${stdout.slice(-4000)}\n` +
    `--- stderr\n${stderr.slice(-4000)}`;
  const done = new Promise<ClusterWriterReport>((resolve, reject) => {
    child.once("error", (error) => reject(new Error(`writer ${spec.id} (${runtime}): ${error.message}`)));
    child.once("close", (code, signal) => {
      const error = new Error(describe(signal ?? code));
      failReady(error);
      if (code !== 0) return reject(error);
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()!) as ClusterWriterReport);
      } catch {
        reject(new Error(`no report: ${describe(code)}`));
      }
    });
  });
  done.catch(() => {}); // observed by the caller
  ready.catch(() => {});
  return {
    id: spec.id,
    ready,
    done,
    go: () => child.stdin!.write("go\n"),
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** Six writers, two on each runtime, all on the cluster; their reports in the order started. */
async function runFleet(cluster: RedisCluster, options: FleetOptions): Promise<ClusterWriterReport[]> {
  const writers: RunningWriter[] = [];
  try {
    let index = 0;
    for (const runtime of ["deno", "bun", "node"] as const) {
      for (let n = 1; n <= 2; n++) {
        const spec: ClusterWriterSpec = {
          id: `${runtime}-${n}`,
          index: index++,
          cluster: [...cluster.addresses],
          keyPrefix: options.keyPrefix,
          rounds: options.rounds,
          roundMs: options.roundMs,
          flushEachRound: options.flushEachRound,
          flushIntervalMs: 50,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
        };
        writers.push(startWriter(spec, runtime));
      }
    }
    await Promise.all(writers.map((w) => w.ready));
    for (const writer of writers) writer.go();
    if (options.during !== undefined) await options.during();
    return await Promise.all(writers.map((w) => w.done));
  } finally {
    for (const writer of writers) writer.kill();
  }
}

function describeFleet(name: string, reports: readonly ClusterWriterReport[]): string {
  const each = reports.map((r) => `${r.id}:${r.failures}/${r.flushes} drain ${r.drainMs} ms`).join(", ");
  return `${name}: failed/flushes ${each}`;
}

/** The sum of the counter's values in these shards, read straight from their masters. */
async function counterSum(
  cluster: RedisCluster,
  keyPrefix: string,
  shards: readonly number[],
): Promise<number> {
  let sum = 0;
  for (const shard of shards) {
    for (const value of (await rawHash(cluster, metricKey(keyPrefix, COUNTER, shard))).values()) {
      sum += Number(value);
    }
  }
  return sum;
}

/** The shards whose hash tag a master serves, by the master's port. */
function shardsByMaster(cluster: RedisCluster, keyPrefix: string): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let shard = 0; shard < SHARDS; shard++) {
    const port = cluster.portOfSlot(keySlot(metricKey(keyPrefix, COUNTER, shard)));
    out.set(port, [...(out.get(port) ?? []), shard]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

test(
  "redis cluster: the series of every metric are spread over the masters, each key in its slot",
  async () => {
    await withCluster(async (cluster) => {
      const keyPrefix = "spread";
      await loadBackend({
        backend: "redis",
        config: {
          cluster: cluster.nodes.map(({ host, port }) => ({ host, port })),
          keyPrefix,
          flushIntervalMs: 0,
        },
      });
      const registry = new Registry();
      const a = new Counter({ name: "spread_a_total", help: "A", labelNames: ["i"], registry });
      const b = new Counter({ name: "spread_b_total", help: "B", labelNames: ["i", "j"], registry });
      const c = new Histogram({
        name: "spread_c_seconds",
        help: "C",
        labelNames: ["i"],
        buckets: [0.5, 1, 2],
        registry,
      });
      const d = new Gauge({ name: "spread_d", help: "D", labelNames: ["i"], registry });
      // 2,000 label sets in all.
      const sets: [string, Record<string, string>[]][] = [
        ["spread_a_total", []],
        ["spread_b_total", []],
        ["spread_c_seconds", []],
        ["spread_d", []],
      ];
      for (let i = 0; i < 800; i++) {
        a.labels({ i: String(i) }).inc(i + 1);
        sets[0][1].push({ i: String(i) });
      }
      for (let i = 0; i < 600; i++) {
        const labels = { i: String(i % 30), j: String(Math.floor(i / 30)) };
        b.labels(labels).inc(2);
        sets[1][1].push(labels);
      }
      for (let i = 0; i < 300; i++) {
        c.labels({ i: String(i) }).observe(i % 3);
        sets[2][1].push({ i: String(i) });
        d.labels({ i: String(i) }).set(i * 0.5);
        sets[3][1].push({ i: String(i) });
      }
      await RedisBackend.flush();

      // The keys the layout puts the series in: one per metric and shard that holds any series.
      const expected = new Set<string>();
      for (const [name, labelSets] of sets) {
        for (const labels of labelSets) {
          expected.add(metricKey(keyPrefix, name, shardOf(name, labelsText(labels))));
        }
      }
      assert.equal(expected.size, 4 * SHARDS, "every metric has series in every shard");

      const masters = await cluster.masters();
      assert.equal(masters.length, 3);
      const perMaster = await cluster.keysPerMaster(`{${keyPrefix}:*}:m:*`);
      const found = [...perMaster.values()].flat();
      assert.deepEqual([...found].sort(), [...expected].sort());
      const total = found.length;
      const shares: string[] = [];
      for (const master of masters) {
        const keys = perMaster.get(master.port) ?? [];
        shares.push(`${master.port}: ${keys.length}`);
        assert.ok(keys.length >= 0.2 * total, `master ${master.port} holds ${keys.length} of ${total} keys`);
        for (const key of keys) {
          const slot = Number(await cluster.cli(master.port, "CLUSTER", "KEYSLOT", key));
          assert.equal(slot, keySlot(key), `CLUSTER KEYSLOT ${key}`);
          assert.ok(
            master.slots.some(([first, last]) => slot >= first && slot <= last),
            `${key} on ${master.port}`,
          );
        }
      }
      console.log(`spread: ${total} metric keys, per master ${shares.join(", ")}`);

      // And the values read back through the library, every series.
      const families = await registry.collect();
      const values = (name: string) =>
        (families.find((f) => f.name === name)!.series as readonly ValueSeries[]).map((s) => s.value);
      const sum = (xs: readonly number[]) => xs.reduce((x, y) => x + y, 0);
      assert.equal(values("spread_a").length, 800);
      assert.equal(sum(values("spread_a")), (800 * 801) / 2);
      assert.equal(values("spread_b").length, 600);
      assert.equal(sum(values("spread_b")), 1200);
      assert.equal(values("spread_d").length, 300);
      assert.equal(sum(values("spread_d")), (299 * 300) / 4);
      const histogram = families.find((f) => f.name === "spread_c_seconds")!;
      assert.equal(histogram.type, "histogram");
      assert.equal(histogram.series.length, 300);
    });
  },
  { timeout: 60_000 },
);

test("redis cluster: six writers on Deno, Bun and Node add up exactly", async () => {
  await withCluster(async (cluster) => {
    const keyPrefix = "fleet";
    const rounds = 40;
    // Every shard holds some of the counter's label sets.
    const shards = new Set<number>();
    for (let j = 0; j < COUNTER_SETS; j++) shards.add(shardOf(COUNTER, labelsText({ k: setName(j) })));
    assert.equal(shards.size, SHARDS);
    const reports = await runFleet(cluster, { keyPrefix, rounds, roundMs: 30, flushEachRound: true });
    console.log(describeFleet("fleet", reports));
    assert.deepEqual(reports.map((r) => r.runtime).sort(), ["bun", "bun", "deno", "deno", "node", "node"]);
    for (const report of reports) assert.equal(report.roundTimes.length, rounds, report.id);
    const expected = sortedTotals(expectedTotals(reports.map((r) => r.index), rounds));
    assert.deepEqual(sortedTotals(totalsOf(await readBack(cluster, keyPrefix))), expected);
    assert.deepEqual(sortedTotals(await rawTotals(cluster, keyPrefix)), expected);
  });
}, { timeout: 120_000 });

test(
  "redis cluster: a master paused for 2 s loses and doubles nothing, and the other masters go on",
  async () => {
    await withCluster(async (cluster) => {
      const keyPrefix = "paused";
      const rounds = 120;
      const byMaster = shardsByMaster(cluster, keyPrefix);
      // The master of shard 0: its calls are among the first of every flush.
      const paused = [...byMaster].find(([, shards]) => shards.includes(0))![0];
      const others = [...byMaster].filter(([port]) => port !== paused).flatMap(([, shards]) => shards);
      let pausedAt = 0;
      let resumedAt = 0;
      let before = 0;
      let after = 0;
      const reports = await runFleet(cluster, {
        keyPrefix,
        rounds,
        roundMs: 50,
        flushEachRound: false,
        async during() {
          await sleep(1500);
          cluster.pause(paused);
          pausedAt = Date.now();
          try {
            // Past the first flush after the pause, whose calls to the paused master time out
            // (500 ms): the healthy masters must go on being written after that too.
            await sleep(Math.max(0, pausedAt + 700 - Date.now()));
            before = await counterSum(cluster, keyPrefix, others);
            await sleep(Math.max(0, pausedAt + 1800 - Date.now()));
            after = await counterSum(cluster, keyPrefix, others);
            await sleep(Math.max(0, pausedAt + 2000 - Date.now()));
          } finally {
            cluster.resume(paused);
            resumedAt = Date.now();
          }
        },
      });
      console.log(
        `${describeFleet("paused", reports)}; master ${paused} (shards ${byMaster.get(paused)}) paused ` +
          `${resumedAt - pausedAt} ms; counter on the other shards ${before} -> ${after} meanwhile`,
      );
      assert.ok(resumedAt - pausedAt >= 2000, `paused only ${resumedAt - pausedAt} ms`);
      // The shards on the other masters kept being written while one master did not answer.
      assert.ok(
        after > before,
        `the other masters' shards did not advance during the pause: ${before} -> ${after}`,
      );
      for (const report of reports) {
        // Each writer kept recording during the pause, and its flushes to that master failed.
        const during = report.roundTimes.filter((t) => t >= pausedAt && t <= resumedAt).length;
        assert.ok(during >= 20, `${report.id}: only ${during} rounds during the pause`);
        assert.equal(report.roundTimes.length, rounds, report.id);
        assert.ok(report.failures > 0, `${report.id}: no failed flush in its health metrics`);
      }
      const expected = sortedTotals(expectedTotals(reports.map((r) => r.index), rounds));
      assert.deepEqual(sortedTotals(totalsOf(await readBack(cluster, keyPrefix))), expected);
      assert.deepEqual(sortedTotals(await rawTotals(cluster, keyPrefix)), expected);
    });
  },
  { timeout: 120_000 },
);

test(
  "redis cluster: a Cluster client passed in counts exactly and stays open; bad cluster configs fail",
  async () => {
    await withCluster(async (cluster) => {
      const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })));
      try {
        const keyPrefix = "given";
        const config = { client, keyPrefix, flushIntervalMs: 0 };
        await loadBackend({ backend: "redis", config });
        const registry = new Registry();
        const metrics = defineClusterMetrics(registry);
        const rounds = 5;
        for (let round = 0; round < rounds; round++) {
          // The workload of writer 0, one round per flush.
          for (let j = 0; j < COUNTER_SETS; j++) {
            metrics.requests.labels({ k: setName(j) }).inc(1 + ((round + j) % 3));
          }
          await RedisBackend.flush();
        }
        const expected: Record<string, number> = {};
        for (let round = 0; round < rounds; round++) {
          for (let j = 0; j < COUNTER_SETS; j++) {
            expected[setName(j)] = (expected[setName(j)] ?? 0) + 1 + ((round + j) % 3);
          }
        }
        assert.deepEqual(totalsOf(await registry.collect()).counter, expected);
        assert.deepEqual((await rawTotals(cluster, keyPrefix)).counter, expected);
        assert.equal(await metrics.requests.labels({ k: setName(7) }).get(), expected[setName(7)]);

        await loadBackend({ backend: "memory" });
        await RedisBackend.close();
        assert.equal(client.status, "ready");
        await client.set("{given}:still-open", "yes");
        assert.equal(await client.get("{given}:still-open"), "yes");
      } finally {
        await client.quit();
      }

      const node = cluster.addresses[0];
      const bad: [Record<string, unknown>, RegExp][] = [
        [{ cluster: [] }, /cluster must be a non-empty array/],
        [{ cluster: ["nohost"] }, /a cluster node must be "host:port" or \{ host, port \}, got "nohost"/],
        [{ cluster: [{ host: "127.0.0.1" }] }, /a cluster node must be/],
        [{ cluster: "127.0.0.1:7000" }, /cluster must be a non-empty array/],
        [{ cluster: [node], host: "127.0.0.1" }, /cluster cannot be combined with host/],
        [{ cluster: [node], url: "redis://127.0.0.1" }, /cluster cannot be combined with url/],
        [{ cluster: [node], port: 6379 }, /cluster cannot be combined with port/],
      ];
      for (const [config, message] of bad) {
        await assert.rejects(
          loadBackend({ backend: "redis", config: { keyPrefix: "bad", ...config } }),
          (error: unknown) => {
            assert.ok(error instanceof TypeError, `${JSON.stringify(config)}: ${error}`);
            assert.match(error.message, /^Invalid redis backend config: /);
            assert.match(error.message, message);
            return true;
          },
          JSON.stringify(config),
        );
      }
    });
  },
  { timeout: 60_000 },
);

test(
  "redis cluster: 20,000 series (two rounds of batches, with a heartbeat) collect exactly; a paused master gives 503, then exact again",
  async () => {
    await withCluster(async (cluster) => {
      const keyPrefix = "big";
      const series = 20_000;
      await loadBackend({
        backend: "redis",
        config: {
          cluster: [...cluster.addresses],
          keyPrefix,
          flushIntervalMs: 0,
          commandTimeoutMs: COMMAND_TIMEOUT_MS,
        },
      });
      const registry = new Registry();
      const big = new Counter({ name: "big_total", help: "Big", labelNames: ["i"], registry });
      // A live per-instance gauge: the flush carries a heartbeat, in a call of its own (its key
      // has its own slot), next to the calls of both rounds.
      const up = new Gauge({ name: "big_up", help: "Up", mode: "livesum", registry });
      up.set(1);
      const expected = new Map<string, number>();
      for (let i = 0; i < series; i++) {
        big.labels({ i: String(i) }).inc(1 + (i % 5));
        expected.set(String(i), 1 + (i % 5));
      }
      await RedisBackend.flush();
      const health = await defaultRegistry.get("theus_backend")!.collect();
      const failures = health.find((f) => f.name === "theus_backend_flush_failures")!.series as ValueSeries[];
      assert.equal(
        failures.filter((s) => s.labels.key_prefix === keyPrefix).reduce((sum, s) => sum + s.value, 0),
        0,
        "failed flushes",
      );
      const live = (await registry.collect()).find((f) => f.name === "big_up")!.series as ValueSeries[];
      assert.deepEqual(live.map((s) => s.value), [1]);
      const check = async (what: string) => {
        // Collection reads every series from the cluster: this process only buffers changes.
        const family = (await registry.collect()).find((f) => f.name === "big")!;
        const got = new Map((family.series as readonly ValueSeries[]).map((s) => [s.labels.i, s.value]));
        assert.equal(got.size, series, `${what}: series collected`);
        for (const [i, value] of expected) {
          if (got.get(i) !== value) {
            assert.fail(`${what}: big_total{i="${i}"} is ${got.get(i)}, expected ${value}`);
          }
        }
      };
      // Every shard holds about a sixteenth of them.
      const perShard = new Array<number>(SHARDS).fill(0);
      for (let i = 0; i < series; i++) perShard[shardOf("big_total", labelsText({ i: String(i) }))]++;
      assert.ok(Math.min(...perShard) > series / SHARDS / 2, `shards: ${perShard}`);
      await check("after the flush");

      const byMaster = shardsByMaster(cluster, keyPrefix);
      const paused = [...byMaster].find(([, shards]) => shards.includes(0))![0];
      const handler = metricsHandler({ registry });
      const scrape = () => handler(new Request("http://localhost/metrics"));
      cluster.pause(paused);
      try {
        // Nothing to write: the read itself times out on the paused master.
        const read = await scrape();
        const readText = await read.text();
        assert.equal(read.status, 503, readText);
        assert.match(readText, /Cannot collect metrics: Cannot read metrics from redis cluster/);
        await assert.rejects(registry.collect(), BackendUnavailableError);
        // Changes made meanwhile: the flush before the read fails, and the scrape says so.
        for (let i = 0; i < 1000; i++) {
          big.labels({ i: String(i) }).inc(10);
          expected.set(String(i), expected.get(String(i))! + 10);
        }
        const write = await scrape();
        const writeText = await write.text();
        assert.equal(write.status, 503, writeText);
        assert.match(writeText, /Cannot collect metrics: Cannot write pending changes to redis cluster/);
      } finally {
        cluster.resume(paused);
      }
      await check("after the resume");
      const ok = await scrape();
      assert.equal(ok.status, 200);
      const text = await ok.text();
      assert.equal(text.split("\n").filter((line) => line.startsWith("big_total{")).length, series);
    });
  },
  { timeout: 120_000 },
);

// Runtime metrics (theus/runtime) of a fleet in one real redis-server: child processes on
// Deno, Node (from the build) and Bun each call collectDefaultMetrics() on the redis or upstash
// backend, and this process reads the fleet back through a registry of its own. Each live
// process shows once, labelled theus_instance, with its own values: checked against what Linux
// says of that process in /proc (resident memory, start time, CPU time), never a sum. A killed
// process leaves the scrape once its heartbeat expires; a stopped collection removes its series
// from Redis. The fleet's exposition passes promtool and the strict OpenMetrics parser.
//
// This file is also the child program: run with THEUS_RUNTIME_CHILD set (a JSON ChildSpec), it
// selects the backend, optionally burns CPU and holds memory, starts the runtime metrics, prints
// one JSON line {"event":"ready",...} and stays alive until its stdin closes; the line "stop" on
// stdin calls the handle's stop(), then prints {"event":"stopped"}. The Node child
// runs from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir in
// THEUS_WRITER_DIST.

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import {
  flush,
  generateLatest,
  loadBackend,
  type LoadBackendOptions,
  type MetricFamily,
  Registry,
} from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { UpstashBackend } from "../../backends/upstash.ts";
import { instancesKey, metricKey, SHARDS } from "../../backends/_remote/layout.ts";
import { collectDefaultMetrics } from "../../runtime/mod.ts";
import { test } from "../_harness.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import { childCommand, ROOT } from "../_root.ts";
import { waitUntil } from "../_servers.ts";
import { startUpstashBridge, type UpstashBridge } from "../_upstash_bridge.ts";
import { assertOpenMetrics, assertPromtool, type ParsedFamily } from "../_validate.ts";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const INSTANCE = "theus_instance";
const TTL_SECONDS = 2;
/** How long after its heartbeat's expiry a killed process may still show. */
const EXPIRY_MARGIN_MS = 1500;
/** The children start this far apart, so that their start times tell them apart. */
const START_GAP_MS = 1500;
/** How close a reported start time must be to the one /proc gives. */
const START_TOLERANCE_S = 0.5;
/** CPU seconds each child burns before it starts collecting, so that a sum would show. */
const BURN_MS = 400;
/** CPU seconds a reported counter may exceed /proc's reading by (clock-tick rounding). */
const CPU_MARGIN_S = 0.05;
/** Memory one child holds, so that the children's resident sizes differ clearly. */
const BALLAST_MB = 128;

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const RUNTIME = g.Deno ? "deno" : g.Bun ? "bun" : "node";

/** What a child does, passed in THEUS_RUNTIME_CHILD. */
interface ChildSpec {
  backend: "redis" | "upstash";
  config: Record<string, unknown>;
  burnMs: number;
  ballastMb: number;
}

/** The line a child prints once its runtime metrics run. */
interface Ready {
  event: "ready";
  pid: number;
  runtime: string;
  version: string;
  names: string[];
}

// ---------------------------------------------------------------------------------------------
// The child program.

function write(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

async function child(spec: ChildSpec): Promise<void> {
  const fail = (what: string, error: unknown) => {
    const text = error instanceof Error ? error.stack ?? error.message : String(error);
    process.stderr.write(`runtime child: ${what}: ${text}\n`);
    process.exit(1);
  };
  process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
  // Memory held (and touched, so it is resident) for the whole life of the process.
  const ballast = new Uint8Array(spec.ballastMb * 1024 * 1024).fill(1);
  const until = performance.now() + spec.burnMs;
  let spin = 0;
  while (performance.now() < until) spin++;
  await loadBackend({ backend: spec.backend, config: spec.config } as LoadBackendOptions);
  const runtime = collectDefaultMetrics({ updateIntervalMs: 200 });
  await flush();
  const version = RUNTIME === "deno"
    ? g.Deno.version.deno
    : RUNTIME === "bun"
    ? g.Bun.version
    : process.version;
  write({ event: "ready", pid: process.pid, runtime: RUNTIME, version, names: runtime.names, spin });
  // Kept alive by this timer (the library's own timers are unref'd) until stdin closes.
  const alive = setInterval(() => ballast[0]++, 1000);
  let buffered = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const command = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      // The removal goes out with the next background flush, as in any application.
      if (command === "stop") {
        runtime.stop();
        write({ event: "stopped" });
      }
    }
  });
  process.stdin.on("end", () => {
    clearInterval(alive);
    process.exit(0);
  });
}

// ---------------------------------------------------------------------------------------------
// What Linux says about a process.

let clock: { ticks: number; bootTime: number } | undefined;
function clockOf(): { ticks: number; bootTime: number } {
  return clock ??= {
    ticks: Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100,
    bootTime: Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1]),
  };
}

/**
 * Now, on the clock of the start times /proc gives (the boot time, in whole seconds, plus the time
 * since boot): the wall clock may differ from it by a second or more.
 */
function procNow(): number {
  return clockOf().bootTime + Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]);
}

interface ProcReading {
  /** Resident set size, bytes (VmRSS). */
  rss: number;
  /** When it started, Unix seconds. */
  startTime: number;
  /** User and system CPU time, seconds. */
  cpu: number;
}

function proc(pid: number | "self"): ProcReading {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]) * 1024;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // After the command name, which may hold spaces: state is field 3, utime 14, stime 15, starttime 22.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const { ticks, bootTime } = clockOf();
  const cpu = (Number(fields[11]) + Number(fields[12])) / ticks;
  const startTime = bootTime + Number(fields[19]) / ticks;
  assert.ok(rss > 0 && Number.isFinite(cpu) && startTime > 1e9, `cannot read /proc/${pid}`);
  return { rss, startTime, cpu };
}

// ---------------------------------------------------------------------------------------------
// Driving children.

type ChildRuntime = "deno" | "bun" | "node";

interface RunningChild {
  readonly id: string;
  readonly runtime: ChildRuntime;
  readonly ready: Ready;
  /** Sends a command line. */
  send(command: string): void;
  /** Resolves with the first JSON line whose event is `event`. */
  waitFor(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** SIGKILL, by pid; resolves once it has exited. */
  kill(): Promise<void>;
  /** Closes its stdin (it exits) and makes sure it is gone. */
  close(): Promise<void>;
  output(): string;
}

function command(runtime: ChildRuntime): [string, string[]] {
  return childCommand(runtime, "tests/once/runtime_fleet_test.ts");
}

async function startChild(id: string, runtime: ChildRuntime, spec: ChildSpec): Promise<RunningChild> {
  const [cmd, args] = command(runtime);
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined) env[key] = value;
  delete env.THEUS_BACKEND;
  delete env.THEUS_BACKEND_CONFIG;
  Object.assign(env, { NO_COLOR: "1", THEUS_RUNTIME_CHILD: JSON.stringify(spec) });
  const spawned: ChildProcess = spawn(cmd, args, { cwd: ROOT, env, stdio: ["pipe", "pipe", "pipe"] });
  let output = "";
  const lines: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let pending = "";
  let exited = false;
  spawned.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, newline).trim();
      pending = pending.slice(newline + 1);
      if (line.startsWith("{")) {
        try {
          lines.push(JSON.parse(line));
        } catch {
          // not one of ours
        }
      }
    }
    for (const listener of listeners) listener();
  });
  spawned.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
  const gone = new Promise<void>((resolve) =>
    spawned.once("exit", () => {
      exited = true;
      for (const listener of listeners) listener();
      resolve();
    })
  );
  spawned.stdin!.on("error", () => {});
  const describe = () => `child ${id} (${runtime})`;
  const waitFor = (event: string, timeoutMs = 30_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const line = lines.find((l) => l.event === event);
        if (line !== undefined) return done(() => resolve(line));
        if (exited) done(() => reject(new Error(`${describe()} exited before "${event}":\n${output}`)));
      };
      const timer = setTimeout(
        () =>
          done(() => reject(new Error(`${describe()}: no "${event}" within ${timeoutMs} ms:\n${output}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        settle();
      };
      listeners.add(check);
      check();
    });
  // By pid: see tests/_redis.ts on Deno's ChildProcess.kill().
  const kill = async () => {
    if (exited) return;
    try {
      process.kill(spawned.pid!, "SIGKILL");
    } catch {
      // already gone
    }
    await gone;
  };
  let ready: Ready;
  try {
    ready = await waitFor("ready", 30_000) as unknown as Ready;
  } catch (error) {
    await kill();
    throw error;
  }
  return {
    id,
    runtime,
    ready,
    send: (line) => void spawned.stdin!.write(`${line}\n`),
    waitFor,
    kill,
    async close() {
      spawned.stdin!.end();
      const timer = setTimeout(() => void kill(), 5000);
      await gone;
      clearTimeout(timer);
    },
    output: () => output,
  };
}

/** Starts the children one after another, `START_GAP_MS` apart and after this process. */
async function startChildren(
  jobs: readonly [string, ChildRuntime, ChildSpec][],
): Promise<RunningChild[]> {
  const children: RunningChild[] = [];
  try {
    for (const [id, runtime, spec] of jobs) {
      // This process reads the fleet with runtime metrics of its own: it counts too.
      const last = children.at(-1)?.ready.pid ?? "self";
      await sleep(Math.max(0, (proc(last).startTime - procNow()) * 1000 + START_GAP_MS));
      children.push(await startChild(id, runtime, spec));
    }
    return children;
  } catch (error) {
    for (const child of children) await child.kill();
    throw error;
  }
}

/** Prints what the children wrote besides their JSON reports, for a failure's diagnosis. */
function showOutput(children: readonly RunningChild[]): void {
  for (const c of children) {
    const output = c.output().trim().split("\n").filter((l) => !l.startsWith("{")).join("\n");
    if (output !== "") console.log(`child ${c.id} output:\n${output}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading the fleet.

/** A registry on the backend with the runtime metrics of this process, which reads the fleet. */
interface FleetReader {
  readonly registry: Registry;
  readonly names: readonly string[];
  close(): Promise<void>;
}

async function openReader(
  backend: typeof RedisBackend | typeof UpstashBackend,
  config: Record<string, unknown>,
): Promise<FleetReader> {
  await loadBackend({ backend, config: { ...config, instanceId: "reader" } });
  const registry = new Registry();
  const runtime = collectDefaultMetrics({ registry, updateIntervalMs: 200 });
  return {
    registry,
    names: runtime.names,
    async close() {
      runtime.stop();
      await flush();
      await backend.close();
      await loadBackend({ backend: "memory" });
    },
  };
}

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name || f.name === name.replace(/_total$/, ""));
  assert.ok(found !== undefined, `no family ${name} in ${families.map((f) => f.name).join(", ")}`);
  return found;
}

/** instance -> value of a family without labels of its own. */
function byInstance(families: readonly MetricFamily[], name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const series of family(families, name).series) {
    const instance = series.labels[INSTANCE];
    assert.ok(instance !== undefined, `${name}: a series without ${INSTANCE}: ${JSON.stringify(series)}`);
    assert.ok(!out.has(instance), `${name}: instance ${instance} shows twice`);
    assert.ok("value" in series, `${name}: not a counter or gauge`);
    out.set(instance, series.value);
  }
  return out;
}

const sorted = (values: Iterable<string>) => [...values].sort();

/** Collects until `name` shows exactly `instances`; returns that collection. */
function collectShowing(
  reader: FleetReader,
  name: string,
  instances: readonly string[],
  timeoutMs = 15_000,
): Promise<MetricFamily[]> {
  return waitUntil(
    `${name} to show instances ${instances.join(", ")}`,
    async () => {
      const families = await reader.registry.collect();
      const seen = sorted(byInstance(families, name).keys());
      if (seen.join() !== sorted(instances).join()) throw new Error(`instances ${seen.join(", ")}`);
      return families;
    },
    { timeoutMs, intervalMs: 100 },
  );
}

/**
 * Asserts that every process shows once per runtime metric, with its own resident memory, start
 * time and CPU time: each checked against /proc for that process, read just before and after.
 */
async function assertOwnValues(reader: FleetReader, pids: ReadonlyMap<string, number | "self">) {
  const ids = sorted(pids.keys());
  const before = new Map([...pids].map(([id, pid]) => [id, proc(pid)]));
  // Long enough for several updates (every 200 ms) and flushes (every 100 ms) of every child.
  await sleep(800);
  const families = await reader.registry.collect();
  const after = new Map([...pids].map(([id, pid]) => [id, proc(pid)]));

  // Every runtime metric this reader defines holds series of these instances only, and the
  // process-wide ones every runtime measures hold one per instance.
  for (const name of reader.names) {
    for (const series of family(families, name).series) {
      assert.ok(ids.includes(series.labels[INSTANCE]), `${name}: ${JSON.stringify(series.labels)}`);
    }
  }
  const rss = byInstance(families, "process_resident_memory_bytes");
  const start = byInstance(families, "process_start_time_seconds");
  const cpu = byInstance(families, "process_cpu_seconds_total");
  for (const values of [rss, start, cpu, byInstance(families, "nodejs_heap_size_used_bytes")]) {
    assert.deepEqual(sorted(values.keys()), ids);
  }

  const report: string[] = [];
  for (const id of ids) {
    const [was, now] = [before.get(id)!, after.get(id)!];
    // Within 10 % of what /proc said around the update (a collection in this process may
    // allocate, or free, tens of megabytes meanwhile).
    const memory = rss.get(id)!;
    assert.ok(
      memory >= 0.9 * Math.min(was.rss, now.rss) && memory <= 1.1 * Math.max(was.rss, now.rss),
      `${id}: process_resident_memory_bytes ${memory}, /proc says VmRSS ${was.rss} before and ${now.rss} after`,
    );
    assert.ok(
      Math.abs(start.get(id)! - now.startTime) <= START_TOLERANCE_S,
      `${id}: process_start_time_seconds ${start.get(id)}, /proc says ${now.startTime}`,
    );
    // A counter of this process's own CPU time, never the fleet's sum: at most what /proc says
    // now, at least what it said before the last updates.
    const seconds = cpu.get(id)!;
    assert.ok(
      seconds <= now.cpu + CPU_MARGIN_S && seconds >= was.cpu - 0.1,
      `${id}: process_cpu_seconds_total ${seconds}, /proc says ${was.cpu} s before and ${now.cpu} s after`,
    );
    report.push(
      `${id} rss ${(memory / 2 ** 20).toFixed(1)}/${(now.rss / 2 ** 20).toFixed(1)} MiB, ` +
        `cpu ${seconds.toFixed(2)}/${now.cpu.toFixed(2)} s, start ${start.get(id)!.toFixed(2)}/${
          now.startTime.toFixed(2)
        }`,
    );
  }
  // The checks tell processes apart: any two differ by more than the tolerances, and each
  // process's CPU time is more than the margin a sum would have to hide in.
  for (const a of ids) {
    assert.ok(after.get(a)!.cpu > 2 * CPU_MARGIN_S, `${a} used only ${after.get(a)!.cpu} s of CPU`);
    for (const b of ids) {
      if (a >= b) continue;
      const [x, y] = [after.get(a)!, after.get(b)!];
      assert.ok(
        Math.abs(x.startTime - y.startTime) > 2 * START_TOLERANCE_S,
        `${a} and ${b} started together`,
      );
    }
  }
  console.log(`runtime fleet (reported/proc): ${report.join("; ")}`);
  return families;
}

/** The processes whose values differ clearly in memory too: at least one pair 20 % apart. */
function assertMemoryDiffers(pids: readonly number[]): void {
  const sizes = pids.map((pid) => proc(pid).rss);
  assert.ok(Math.max(...sizes) > 1.2 * Math.min(...sizes), `resident sizes too close: ${sizes.join(", ")}`);
}

/** Kills `victim`; the next scrapes show it until its heartbeat expires, then never again. */
async function assertExpires(reader: FleetReader, victim: RunningChild, survivors: readonly string[]) {
  const name = "process_resident_memory_bytes";
  await victim.kill();
  const killed = performance.now();
  // Its last heartbeat is at most a flush or two old: it is live for more than a second yet.
  const right = byInstance(await reader.registry.collect(), name);
  assert.deepEqual(sorted(right.keys()), sorted([...survivors, victim.id]), "right after the kill");
  let gone: number | undefined;
  while (gone === undefined) {
    await sleep(100);
    const elapsed = performance.now() - killed;
    const seen = sorted(byInstance(await reader.registry.collect(), name).keys());
    for (const id of survivors) {
      assert.ok(seen.includes(id), `${id} left the scrape ${elapsed} ms after the kill`);
    }
    if (!seen.includes(victim.id)) gone = elapsed;
    else {
      assert.ok(
        elapsed <= TTL_SECONDS * 1000 + EXPIRY_MARGIN_MS,
        `${victim.id} still shows ${
          Math.round(elapsed)
        } ms after it was killed (instanceTtlSeconds ${TTL_SECONDS})`,
      );
    }
  }
  console.log(
    `runtime fleet: ${victim.id} (${victim.runtime}) left the scrape ${Math.round(gone)} ms after SIGKILL`,
  );
}

// Every field of every metric hash matching the patterns, as "metric field" lines, in one round trip.
const FIELDS_SCRIPT = `local out = {}
for _, pattern in ipairs(ARGV) do
  for _, key in ipairs(redis.call("KEYS", pattern)) do
    local name = string.sub(key, select(2, string.find(key, "}:m:", 1, true)) + 1)
    for _, f in ipairs(redis.call("HKEYS", key)) do out[#out + 1] = name .. " " .. f end
  end
end
return out`;

/** Every field of every metric under `keyPrefix`, over the hashes of its 16 shards, by metric name. */
async function redisFields(redis: RedisServer, keyPrefix: string): Promise<Map<string, string[]>> {
  const patterns = Array.from({ length: SHARDS }, (_, shard) => metricKey(keyPrefix, "*", shard));
  const lines = (await redis.cli("EVAL", FIELDS_SCRIPT, "0", ...patterns)).split("\n");
  const out = new Map<string, string[]>();
  for (const line of lines.filter(Boolean)) {
    const space = line.indexOf(" ");
    const name = line.slice(0, space);
    out.set(name, [...(out.get(name) ?? []), line.slice(space + 1)]);
  }
  return out;
}

/** The distinct sample label sets of one parsed family, checked unique. */
function assertUniqueSamples(families: readonly ParsedFamily[]): void {
  for (const f of families) {
    const seen = new Set<string>();
    for (const [name, labels] of f.samples) {
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
      assert.ok(!seen.has(key), `${f.name}: sample ${key} twice`);
      seen.add(key);
    }
  }
}

function instancesIn(families: readonly ParsedFamily[], name: string): string[] {
  const found = families.find((f) => f.name === name);
  assert.ok(found !== undefined, `the exposition has no ${name}`);
  return sorted(new Set(found.samples.map(([, labels]) => labels[INSTANCE])));
}

// ---------------------------------------------------------------------------------------------
// The tests.

const spec = (
  backend: ChildSpec["backend"],
  config: Record<string, unknown>,
  ballastMb = 0,
): ChildSpec => ({ backend, config, burnMs: BURN_MS, ballastMb });

/** The metrics every child must register (Linux, any runtime), checked against /proc. */
const CHECKED = ["process_resident_memory_bytes", "process_start_time_seconds", "process_cpu_seconds_total"];

/** Instance id -> pid of the children, and this process as "reader". */
function pidsOf(children: readonly RunningChild[]): Map<string, number | "self"> {
  return new Map<string, number | "self">([
    ...children.map((c): [string, number] => [c.id, c.ready.pid]),
    ["reader", "self"],
  ]);
}

async function stopAll(children: readonly RunningChild[]): Promise<void> {
  for (const child of children) {
    await child.close().catch(() => {});
  }
}

if (process.env.THEUS_RUNTIME_CHILD !== undefined) {
  await child(JSON.parse(process.env.THEUS_RUNTIME_CHILD) as ChildSpec).catch((error) => {
    process.stderr.write(`runtime child: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  });
} else {
  test(
    "runtime metrics of a Deno and a Node process in one Redis: each its own, until its heartbeat expires",
    async () => {
      const redis = await startRedis();
      const keyPrefix = "runtimefleet";
      const config = { port: redis.port, keyPrefix, instanceTtlSeconds: TTL_SECONDS, flushIntervalMs: 100 };
      let children: RunningChild[] = [];
      let reader: FleetReader | undefined;
      try {
        children = await startChildren([
          ["a", "deno", spec("redis", { ...config, instanceId: "a" })],
          ["b", "node", spec("redis", { ...config, instanceId: "b" }, BALLAST_MB)],
        ]);
        const [a, b] = children;
        assert.deepEqual([a.ready.runtime, b.ready.runtime], ["deno", "node"]);
        for (const c of children) {
          const missing = CHECKED.filter((name) => !c.ready.names.includes(name));
          assert.deepEqual(missing, [], `${c.id} (${c.runtime}) registered ${c.ready.names.join(", ")}`);
        }
        assertMemoryDiffers([a.ready.pid, b.ready.pid]);
        reader = await openReader(RedisBackend, config);
        await collectShowing(reader, "process_resident_memory_bytes", ["a", "b", "reader"]);
        const families = await assertOwnValues(reader, pidsOf(children));

        // The version of each process's own runtime, labelled with its instance. This reader
        // (Deno) also registers the families only other runtimes measure, without writing them:
        // it shows the Node process's nodejs_version_info, and no Bun version at all.
        const versions = family(families, "deno_version_info").series;
        assert.deepEqual(
          versions.map((s) => [s.labels[INSTANCE], s.labels.version]).sort(),
          [["a", a.ready.version], ["reader", g.Deno.version.deno]].sort(),
        );
        assert.deepEqual(
          family(families, "nodejs_version_info").series.map((s) => [s.labels[INSTANCE], s.labels.version]),
          [["b", b.ready.version]],
        );
        assert.deepEqual(family(families, "bun_version_info").series, []);
        // Nor does it write zeros for what Deno does not measure: only Node's handles count.
        assert.deepEqual(
          family(families, "nodejs_active_handles_total").series.map((s) => s.labels[INSTANCE]),
          ["b"],
        );
        assert.ok(reader.names.includes("nodejs_version_info") && reader.names.includes("bun_version_info"));

        // The fleet's exposition, in both formats, is valid, with each instance once per series.
        const text = await generateLatest(reader.registry, { format: "prometheus" });
        await assertPromtool(text, {
          // prom-client's names for these gauges end in _total; dashboards depend on them.
          allowLints: [/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/],
        });
        const parsed = await assertOpenMetrics(
          await generateLatest(reader.registry, { format: "openmetrics" }),
        );
        assertUniqueSamples(parsed);
        for (const name of CHECKED) {
          assert.deepEqual(instancesIn(parsed, name.replace(/_total$/, "")), ["a", "b", "reader"], name);
        }
        assert.match(text, /^process_resident_memory_bytes\{theus_instance="b"\} \d+$/m);

        // A killed process leaves the scrape once its heartbeat expires; the others stay.
        await assertExpires(reader, b, ["a", "reader"]);
        await assertOwnValues(reader, pidsOf([a]));

        // stop() removes the process's own series from Redis with its next flush, while the
        // process (and its heartbeat) lives on; the killed process's series stay, out of the scrape.
        const mine = (f: string) => f.endsWith("|a");
        assert.ok([...(await redisFields(redis, keyPrefix)).values()].flat().some(mine));
        a.send("stop");
        await a.waitFor("stopped", 10_000);
        const stopped = performance.now();
        let left: string[] = [];
        await waitUntil("the fields of a to leave Redis after its stop()", async () => {
          left = [...(await redisFields(redis, keyPrefix))].flatMap(([name, list]) =>
            list.filter(mine).map((f) => `${name} ${f}`)
          );
          return left.length === 0 ? true : undefined;
        }, { timeoutMs: 3000, intervalMs: 50 }).catch((error) => {
          throw new Error(`${error.message}; left: ${left.slice(0, 5).join(", ")}`, { cause: error });
        });
        console.log(
          `runtime fleet: a's fields left Redis ${Math.round(performance.now() - stopped)} ms after stop()`,
        );
        // Its heartbeat is still live: the removal, not an expiry, took it out of the scrape.
        const beat = Number(await redis.cli("HGET", instancesKey(keyPrefix), "a"));
        assert.ok(beat > Date.now(), `a's heartbeat ${beat} has expired`);
        const after = await reader.registry.collect();
        assert.deepEqual(sorted(byInstance(after, "process_resident_memory_bytes").keys()), ["reader"]);
        assert.ok(
          (await redisFields(redis, keyPrefix)).get("process_resident_memory_bytes")
            ?.some((f) => f.endsWith("|b")),
          "the killed process's fields are still in Redis: only the collection leaves them out",
        );
      } finally {
        await reader?.close();
        showOutput(children);
        await stopAll(children);
        await redis.stop();
      }
    },
    { timeout: 60_000 },
  );

  test(
    "runtime metrics of a Bun and a Node process through Upstash: each its own, until its heartbeat expires",
    async () => {
      const redis = await startRedis();
      let bridge: UpstashBridge | undefined;
      let children: RunningChild[] = [];
      let reader: FleetReader | undefined;
      try {
        bridge = await startUpstashBridge({ redisPort: redis.port });
        const config = {
          url: bridge.url,
          token: bridge.token,
          keyPrefix: "runtimeupstash",
          instanceTtlSeconds: TTL_SECONDS,
          flushIntervalMs: 100,
        };
        children = await startChildren([
          ["a", "bun", spec("upstash", { ...config, instanceId: "a" }, BALLAST_MB)],
          ["b", "node", spec("upstash", { ...config, instanceId: "b" })],
        ]);
        const [a, b] = children;
        assert.deepEqual([a.ready.runtime, b.ready.runtime], ["bun", "node"]);
        assertMemoryDiffers([a.ready.pid, b.ready.pid]);
        reader = await openReader(UpstashBackend, config);
        await collectShowing(reader, "process_resident_memory_bytes", ["a", "b", "reader"]);
        await assertOwnValues(reader, pidsOf(children));
        await assertExpires(reader, a, ["b", "reader"]);
        console.log(`runtime fleet (upstash): ${bridge.counts.requests} requests to the bridge`);
      } finally {
        await reader?.close();
        showOutput(children);
        await stopAll(children);
        await bridge?.close();
        await redis.stop();
      }
    },
    { timeout: 60_000 },
  );
}

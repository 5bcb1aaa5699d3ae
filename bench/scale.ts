/**
 * The Redis backend at fleet scale: one Counter with two labels (`route`, `code`) holding 10,000,
 * 100,000 and 1,000,000 series, every series incremented once, against a redis-server the
 * benchmark starts on a free loopback port (`--save "" --appendonly no`, FLUSHALL before each
 * size). Runs on Deno, Bun and Node:
 *
 *   ./node_modules/.bin/deno run -A --v8-flags=--expose-gc,--max-old-space-size=4096 bench/scale.ts [--quick] [--sizes 10000,100000]
 *   ./node_modules/.bin/bun bench/scale.ts [--quick] [--sizes …]
 *   node --expose-gc --max-old-space-size=4096 <outDir>/bench/scale.js [--quick] [--sizes …]   (after tsc)
 *
 * `node bench/run.mjs --only scale` runs it on every runtime (`--runtime deno` for one), with the
 * larger heap above; `node bench/compare.mjs --base <ref> --only scale` compares two trees (a base
 * without this file gets the head's copy: it uses the public API only). The group is not part of
 * a plain `node bench/run.mjs` (nor of compare.mjs without `--only`): with 1M series, and with a
 * version of the library whose flushes time out at that size, it takes minutes per runtime.
 * `--quick` leaves 1M out; `--sizes` picks sizes (a direct run only). `--realtime` (a direct run
 * only, Linux, as root or with CAP_SYS_NICE) runs redis-server and the probe at SCHED_FIFO priority
 * 20 (`chrt -a -f -p 20`), so that neither waits for a CPU behind this process's threads: on a small
 * machine, the nearest thing to a Redis with a CPU of its own. It cannot help where the machine's
 * virtual CPUs themselves stall; the "waiting for a CPU" rows say how much remains. `--isolate`
 * (the same conditions, and two CPUs or more) goes further: redis-server alone on the last CPU at
 * SCHED_FIFO priority 20, this process and the probe on the others (`taskset`), the probe's event
 * loop at nice -10. Redis then has a CPU of its own, as on a machine of its own, but for the time
 * the kernel keeps for the CPU's other threads (up to 50 ms a second: the likely cause of the
 * 25-32 ms waits seen in a flush of new series, which keeps Redis busy 85-90 % of the time). This
 * process has one CPU fewer, and shares it with the probe, so its event-loop holds are a smaller
 * machine's.
 *
 * Per size (each operation after a forced GC where the runtime offers one, and a pause of 1 s for
 * the engine to finish sweeping after it):
 * - the flush: `await flush()` after the increments (no background flush: `flushIntervalMs: 0`),
 *   called again after a failed one, with a pause of 1 s (the default flush interval) between,
 *   until one succeeds (the backend's health metrics: no new failure, no pending series), or 5
 *   calls, or 60 s. Reported: the time to land (from the first call to the one that succeeded,
 *   pauses included) or "did not land", the calls, and the series missing in Redis afterwards
 *   (fields and sum of the metric's hashes, read with one Lua script once Redis is idle: values
 *   of a call that timed out on the client side may still land).
 * - the collection: `registry.collect()` (no rendering) and `generateLatest(registry)` (what a
 *   scrape does), 3 rounds at 10k (median), 1 above; a failure (BackendUnavailableError, or any
 *   other error) is reported as "failed", never retried.
 * - for each: the longest wait of a PING sent about every 1 ms by a second Redis connection in
 *   a process of its own (bench/_scale_probe.ts, on the same runtime): how long Redis kept other
 *   clients waiting, a BUSY error reply not ending the wait; measured until Redis answers again
 *   after the operation (a script that outlived its call's timeout included). A lower bound on a
 *   busy machine (the probe, too, waits for a CPU), so under it, as Redis saw them: the longest
 *   script call (SLOWLOG, from 100 µs), the script calls and Redis' time in them (INFO
 *   commandstats, after CONFIG RESETSTAT); their spread is in the notes. Pipelined calls of one
 *   connection run back to back, so the PING wait can exceed the longest call. And the longest
 *   event-loop hold in this process: the longest gap between the ticks of a 1 ms `setInterval`,
 *   less the median gap of that timer when idle (about 1 ms on Node and Bun, 2 ms on Deno); on
 *   Linux, with the part of it this thread waited for a CPU (run-queue time from
 *   /proc/thread-self/schedstat, read at every tick): time the runtime's other threads, Redis or
 *   the probe held every CPU, not work of the event loop. Likewise under the longest PING wait,
 *   on Linux: how much of it Redis' main thread and the probe were runnable but not running (the
 *   probe reads both schedstats as it sends each PING and as its PONG comes).
 * - and under those: what the operation asked of the machine. The CPU time of this process (all
 *   its threads; on Linux, the event loop's thread on its own) and of Redis, as a share of what the
 *   machine's CPUs had over the operation: near 100 %, threads wait for a CPU however short the
 *   library's slices. And this process's minor page faults (memory it touched for the first time,
 *   or again after the runtime gave it back), with its time in the kernel: where a fault is dear
 *   (a virtual machine without hardware-assisted paging), the collector's pauses grow with them.
 * - the heap per series of this process before the flush: the engine's heap in use after the
 *   series were made, less before, each after a forced GC (without one, a rough figure).
 * - before the first size, a warm-up of 3,000 series on a prefix of its own: Redis gets the
 *   scripts (FLUSHALL keeps them), the engine compiles the code, the runtime loads its Request and
 *   Response.
 * - a reference, without Redis: `generateLatest()` and a `metricsHandler()` body (read chunk by
 *   chunk) of the same series on the memory backend, and prom-client's `registry.metrics()` of
 *   the same counter series (prom-client has no shared store: a scrape of one process's memory,
 *   not comparable with a fleet's Redis). And the floor under `registry.collect()`: the longest
 *   hold of a plain loop, no library code, pushing as many `{ labels, value }` objects into one
 *   array in 5 ms slices, with the memory backend's series alive. And the floor under the PING
 *   waits: the probe's longest wait for the idle Redis while this process reads those
 *   `metricsHandler()` bodies (no script runs; what is left is the machine's).
 *
 * A flush that does not land and a collection that fails are rows with the status MISSED, not
 * errors: the exit code is non-zero only when the benchmark itself breaks, or when the library
 * reports success with wrong figures (a confirmed flush whose totals are not in Redis, a
 * collection with series missing).
 *
 * @module
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import process from "node:process";
import { readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { fileURLToPath } from "node:url";
import { Redis as IoRedis } from "ioredis";
import client from "prom-client";
import {
  BackendUnavailableError,
  Counter,
  flush,
  generateLatest,
  loadBackend,
  type MetricFamily,
  metricsHandler,
  Registry,
  type ValueSeries,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { ARGS, argValue, detectRuntime, fmt, median, type Runtime, sink, table } from "./_harness.ts";
import { exitProcess, failures, familyOf, notes, printReport, type Row, rows } from "./_report.ts";
import { type RedisServer, startRedis } from "../tests/_redis.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const quick = ARGS.includes("--quick");
const runtime: Runtime = detectRuntime();

const sizesArg = ARGS.find((arg) => arg.startsWith("--sizes="))?.slice(8) ?? argValue("--sizes");
const SIZES: number[] = sizesArg !== undefined
  ? sizesArg.split(",").map(Number)
  : quick
  ? [10_000, 100_000]
  : [10_000, 100_000, 1_000_000];
if (SIZES.some((n) => !Number.isInteger(n) || n < 1)) {
  failures.push(`--sizes expects positive integers, got "${sizesArg}"`);
  console.error(`scale: ${failures[0]}`);
  exitProcess();
}

/** `--realtime`: redis-server and the probe at SCHED_FIFO. */
const REALTIME = ARGS.includes("--realtime");
/** The SCHED_FIFO priority of `--realtime` and `--isolate`. */
const FIFO_PRIORITY = "20";
/** The machine's CPUs (those this process may use). */
const CPUS = availableParallelism();
/** `--isolate`: redis-server alone on the last CPU. */
const ISOLATE = ARGS.includes("--isolate");
if (ISOLATE && REALTIME) {
  failures.push("--isolate and --realtime are two settings of the same processes: give one");
  console.error(`scale: ${failures[0]}`);
  exitProcess();
}

/** The flush is given up after this many `flush()` calls, or this long. */
const MAX_FLUSH_CALLS = 5;
const MAX_FLUSH_MS = 60_000;
/** Between a failed `flush()` and the next: the default background flush interval. */
const RETRY_PAUSE_MS = 1000;
/**
 * The pause after the forced GC before each operation: the engine sweeps the old generation that
 * collection left concurrently, and a young-generation collection that comes before it is done
 * waits for it (50 ms on Node at 1M series); the operation is not charged with the benchmark's
 * own GC.
 */
const SETTLE_MS = 1000;

/** A forced GC where the runtime offers one, then SETTLE_MS for the engine's sweep after it. */
async function collectGarbage(): Promise<void> {
  runtime.gc?.();
  await sleep(SETTLE_MS);
}
/** The longest wait for Redis to answer again after an operation (a script still running). */
const IDLE_WAIT_MS = 120_000;

const METRIC = "fleet_requests_total";
const LABEL_NAMES = ["route", "code"];
/** 100 codes per route: 10,000 routes for 1M series. */
const labelsOf = (i: number) => ({ route: `/api/r${Math.floor(i / 100)}`, code: String(200 + (i % 100)) });
const sizeLabel = (n: number) =>
  n >= 1e6 && n % 1e6 === 0 ? `${n / 1e6}M` : n >= 1e3 && n % 1e3 === 0 ? `${n / 1e3}k` : String(n);
/** Collection rounds: the median of 3 at 10k and below, one above. */
const roundsFor = (n: number) => (n <= 10_000 ? 3 : 1);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));
const short = (text: string, max = 90) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);
const rss = () => `${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`;

// ---------------------------------------------------------------------------------------------
// redis-server, the probe and this process's event loop

/** Signals go by pid: Deno's ChildProcess.kill() takes one signal only (see tests/_redis.ts). */
function kill(child: ChildProcess, signal: "SIGKILL" | "SIGTERM"): void {
  try {
    if (child.pid !== undefined) process.kill(child.pid, signal);
  } catch {
    // already gone
  }
}

/** What the probe saw in a window. */
interface PingReport {
  maxMs: number;
  /** Of the longest wait, the time Redis' main thread was runnable but not running; null where unknown. */
  redisWaitedMs: number | null;
  /** Of the longest wait, the time the probe was runnable but not running; null where unknown. */
  probeWaitedMs: number | null;
  pings: number;
  errors: number;
  error?: string;
}

/** bench/_scale_probe.ts in a process of its own, on this runtime. */
class Probe {
  #child: ChildProcess;
  #lines: string[] = [];
  #waiting: ((line: string | undefined) => void)[] = [];
  #output = "";
  #gone = false;

  private constructor(child: ChildProcess) {
    this.#child = child;
    let buffered = "";
    child.stdout!.setEncoding("utf8");
    child.stdout!.on("data", (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 1);
        const waiter = this.#waiting.shift();
        if (waiter !== undefined) waiter(line);
        else this.#lines.push(line);
      }
    });
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => (this.#output += chunk));
    child.on("close", () => {
      this.#gone = true;
      for (const waiter of this.#waiting.splice(0)) waiter(undefined);
    });
  }

  static async start(port: number, redisPid?: number): Promise<Probe> {
    const ext = import.meta.url.endsWith(".ts") ? "ts" : "js";
    const file = fileURLToPath(new URL(`./_scale_probe.${ext}`, import.meta.url));
    const args = redisPid === undefined ? [String(port)] : [String(port), String(redisPid)];
    const [command, argv] = g.Deno !== undefined
      ? [g.Deno.execPath(), ["run", "-A", file, ...args]]
      : [process.execPath, [file, ...args]];
    const probe = new Probe(spawn(command, argv, { stdio: ["pipe", "pipe", "pipe"] }));
    const line = await probe.#next(30_000);
    if (line !== "ready") throw new Error(`the probe did not start: ${line ?? ""} ${probe.#output}`);
    return probe;
  }

  #next(timeoutMs = 10_000): Promise<string | undefined> {
    const line = this.#lines.shift();
    if (line !== undefined || this.#gone) return Promise.resolve(line);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the probe did not answer: ${this.#output}`)),
        timeoutMs,
      );
      this.#waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  }

  async #ask(command: string): Promise<string> {
    this.#child.stdin!.write(`${command}\n`);
    const line = await this.#next();
    if (line === undefined) throw new Error(`the probe exited: ${this.#output}`);
    return line;
  }

  /** Starts a window. */
  async mark(): Promise<void> {
    const line = await this.#ask("mark");
    if (line !== "marked") throw new Error(`the probe answered "${line}" to mark`);
  }

  /** The window so far. */
  async report(): Promise<PingReport> {
    return JSON.parse(await this.#ask("report")) as PingReport;
  }

  /** Its process id. */
  get pid(): number | undefined {
    return this.#child.pid;
  }

  stop(): void {
    this.#child.stdin!.end();
    kill(this.#child, "SIGTERM");
  }
}

/** The longest gap between the ticks of a 1 ms timer, and how long of it this thread waited for a CPU. */
interface Hold {
  ms: number;
  /** Time runnable but not running (Linux' schedstat), in ms; NaN where the kernel does not say. */
  waitedMs: number;
}

// This thread's time on a CPU (field 0) or waiting on a run queue (field 1) so far, in ms, from
// Linux' schedstat; NaN elsewhere.
function schedstat(field: 0 | 1): number {
  try {
    return Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[field]) / 1e6;
  } catch {
    return NaN;
  }
}
const runQueueWait = (): number => schedstat(1);

/**
 * Starts a 1 ms timer; the returned function stops it and gives the longest gap between ticks,
 * with the time this thread spent waiting for a CPU in that gap (read at every tick).
 */
function watchLoop(): () => Hold {
  let last = performance.now();
  let lastWait = runQueueWait();
  let longest: Hold = { ms: 0, waitedMs: NaN };
  const timer = setInterval(() => {
    const now = performance.now();
    const wait = runQueueWait();
    if (now - last > longest.ms) longest = { ms: now - last, waitedMs: wait - lastWait };
    last = now;
    lastWait = wait;
  }, 1);
  return () => {
    clearInterval(timer);
    const now = performance.now();
    const wait = runQueueWait();
    return now - last > longest.ms ? { ms: now - last, waitedMs: wait - lastWait } : longest;
  };
}

/** The idle gap of the 1 ms timer (its median over 300 ms): what a tick costs with nothing held. */
async function timerGranularity(): Promise<number> {
  const gaps: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    last = now;
  }, 1);
  await sleep(300);
  clearInterval(timer);
  return median(gaps.slice(5));
}

/** Runs `chrt`, `taskset` or `renice` for `option`; throws, naming what is missing, where it cannot be done. */
function schedule(option: string, command: "chrt" | "taskset" | "renice", args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    execFile(command, args, (error, _stdout, stderr) =>
      error
        ? reject(
          new Error(
            `${option}: ${command} ${args.join(" ")} failed (Linux only, as root or with CAP_SYS_NICE): ${
              stderr.trim() || error.message
            }`,
          ),
        )
        : resolve())
  );
}

/** The process ids of redis-server and the probe; throws if one is unknown. */
function knownPids(option: string, pids: (number | undefined)[]): string[] {
  return pids.map((pid) => {
    if (pid === undefined || !Number.isInteger(pid)) throw new Error(`${option}: a process id is unknown`);
    return String(pid);
  });
}

/** `--realtime`: every thread of redis-server and the probe at SCHED_FIFO. */
async function runRealtime(redisPid: number | undefined, probePid: number | undefined): Promise<void> {
  for (const pid of knownPids("--realtime", [redisPid, probePid])) {
    await schedule("--realtime", "chrt", ["-a", "-f", "-p", FIFO_PRIORITY, pid]);
  }
  console.log(`redis-server and the probe at SCHED_FIFO priority ${FIFO_PRIORITY} (--realtime)`);
}

/**
 * `--isolate`: redis-server alone on the last CPU, every thread at SCHED_FIFO priority 20 (at a
 * normal priority, the kernel's own threads on that CPU kept it waiting up to 30 ms); this process
 * and the probe on the others, the probe's event-loop thread at nice -10, so that its PINGs go out
 * on time. The probe not at a real-time priority: a runtime's event loop can spin there (seen with
 * Node's and Bun's), leaving this process only what the kernel's real-time share leaves it (50 ms
 * a second).
 */
async function isolate(redisPid: number | undefined, probePid: number | undefined): Promise<void> {
  if (CPUS < 2) throw new Error(`--isolate needs two CPUs or more; this machine has ${CPUS}`);
  const [redis, probe] = knownPids("--isolate", [redisPid, probePid]);
  const last = String(CPUS - 1);
  const others = CPUS === 2 ? "0" : `0-${CPUS - 2}`;
  await schedule("--isolate", "taskset", ["-a", "-p", "-c", last, redis]);
  await schedule("--isolate", "chrt", ["-a", "-f", "-p", FIFO_PRIORITY, redis]);
  for (const pid of [String(process.pid), probe]) {
    await schedule("--isolate", "taskset", ["-a", "-p", "-c", others, pid]);
  }
  await schedule("--isolate", "renice", ["-n", "-10", "-p", probe]);
  console.log(
    `redis-server alone on CPU ${last} at SCHED_FIFO priority ${FIFO_PRIORITY}; this process and the probe on CPU ${others}, ` +
      `the probe's event loop at nice -10 (--isolate)`,
  );
}

// ---------------------------------------------------------------------------------------------
// Measurement

let admin!: IoRedis;
let probe!: Probe;
let tickMs = 1;

/** Waits until Redis answers a PING (a script may still run); the time waited, or -1 past the limit. */
async function redisIdle(): Promise<number> {
  const start = performance.now();
  for (;;) {
    try {
      await admin.ping();
      return performance.now() - start;
    } catch (error) {
      if (!/BUSY|timed out/i.test(message(error))) throw error;
    }
    if (performance.now() - start > IDLE_WAIT_MS) return -1;
    await sleep(100);
  }
}

/** What Redis itself saw of an operation's scripts (EVALSHA and EVAL). */
interface Scripts {
  /** Script calls Redis ran. */
  calls: number;
  /** Script calls Redis refused (BUSY, while another script ran too long). */
  rejected: number;
  /** Redis' time in them, ms. */
  totalMs: number;
  /** The longest one, ms (the slow log, from SLOWLOG_US up); 0 when none took that long. */
  longestMs: number;
  /** The durations of those in the slow log, ms. */
  durations: number[];
}

/** Script calls from this long are in the slow log, µs. */
const SLOWLOG_US = 100;

async function resetScripts(): Promise<void> {
  await admin.call("CONFIG", "RESETSTAT");
  await admin.call("SLOWLOG", "RESET");
}

async function readScripts(): Promise<Scripts> {
  const stats = await admin.info("commandstats");
  const out: Scripts = { calls: 0, rejected: 0, totalMs: 0, longestMs: 0, durations: [] };
  for (const m of stats.matchAll(/^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+),.*rejected_calls=(\d+)/gm)) {
    out.calls += Number(m[2]);
    out.totalMs += Number(m[3]) / 1000;
    out.rejected += Number(m[4]);
  }
  const log = (await admin.call("SLOWLOG", "GET", "100000")) as [number, number, number, string[]][];
  for (const [, , micros, argv] of log) {
    if (/^eval(sha)?$/i.test(String(argv[0]))) out.durations.push(micros / 1000);
  }
  for (const ms of out.durations) out.longestMs = Math.max(out.longestMs, ms);
  return out;
}

/** The spread of the script calls' durations in Redis, for a note. */
function spreadOf(durations: readonly number[]): string {
  if (durations.length === 0) return `no script call took ${SLOWLOG_US} µs or more`;
  const sorted = [...durations].sort((a, b) => a - b);
  const at = (q: number) => fmt(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))], "ms");
  return `script calls in Redis: p50 ${at(0.5)}, p90 ${at(0.9)}, max ${
    at(1)
  } (${sorted.length} from ${SLOWLOG_US} µs)`;
}

/** One operation: its time, the longest PING wait and event-loop hold, its result or error. */
interface Measured<T> {
  ms: number;
  ping: PingReport;
  holdMs: number;
  /** Of the longest hold, the time this thread waited for a CPU (NaN where the kernel does not say). */
  holdWaitMs: number;
  scripts: Scripts;
  /** How long Redis still did not answer once the operation was over. */
  busyAfterMs: number;
  /** Redis' CPU time (user and system) over the operation. */
  cpuMs: number;
  /** This process's CPU time over the operation: every thread's, and the event loop's thread's. */
  machine: Machine;
  result?: T;
  error?: unknown;
}

/** What this process asked of the machine over an operation. */
interface Machine {
  /** CPU time of all its threads, user and system, in ms. */
  processMs: number;
  /** Of it, in the kernel (system calls, page faults). */
  systemMs: number;
  /** Of it, the event loop's thread (NaN where the kernel does not say). */
  mainMs: number;
  /** Minor page faults: memory the process touched for the first time, or again after giving it back. */
  faults: number;
}

/** This process's CPU time and page faults so far (all of its threads). */
function processUsage(): Machine {
  const usage = process.resourceUsage();
  return {
    processMs: (usage.userCPUTime + usage.systemCPUTime) / 1000,
    systemMs: usage.systemCPUTime / 1000,
    mainMs: schedstat(0),
    faults: usage.minorPageFault,
  };
}

/** Redis' CPU time so far, user and system, in ms. */
async function redisCpu(): Promise<number> {
  const info = await admin.info("cpu");
  const read = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (read("used_cpu_user") + read("used_cpu_sys")) * 1000;
}

/** Redis' memory in use, in bytes. */
async function redisMemory(): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await admin.info("memory"))?.[1] ?? 0);
}

async function measure<T>(work: () => Promise<T>): Promise<Measured<T>> {
  await collectGarbage();
  await resetScripts();
  const cpuBefore = await redisCpu();
  await probe.mark();
  const stop = watchLoop();
  const usageBefore = processUsage();
  const start = performance.now();
  let result: T | undefined;
  let error: unknown;
  try {
    result = await work();
  } catch (e) {
    error = e ?? new Error("undefined thrown");
  }
  const ms = performance.now() - start;
  const usage = processUsage();
  const machine: Machine = {
    processMs: usage.processMs - usageBefore.processMs,
    systemMs: usage.systemMs - usageBefore.systemMs,
    mainMs: usage.mainMs - usageBefore.mainMs,
    faults: usage.faults - usageBefore.faults,
  };
  const hold = stop();
  const holdMs = Math.max(0, hold.ms - tickMs);
  const holdWaitMs = hold.waitedMs;
  const busyAfterMs = await redisIdle();
  const ping = await probe.report();
  const scripts = await readScripts();
  const cpuMs = await redisCpu() - cpuBefore;
  return { ms, ping, holdMs, holdWaitMs, scripts, busyAfterMs, cpuMs, machine, result, error };
}

/** This store's health metrics: series pending, flushes failed. */
async function health(prefix: string): Promise<{ pending: number; failures: number }> {
  const families = await RedisBackend.health.collect();
  const total = (name: string) =>
    ((families.find((f) => f.name === name)?.series ?? []) as ValueSeries[])
      .filter((s) => s.labels.key_prefix === prefix)
      .reduce((sum, s) => sum + s.value, 0);
  return { pending: total("theus_backend_pending_series"), failures: total("theus_backend_flush_failures") };
}

// The fields and the sum of the metric's hashes, whatever the layout: `{prefix}:m:<name>` (one
// hash) or `{prefix:<n>}:m:<name>` (one per shard).
const COUNT_SCRIPT = `
local n, sum = 0, 0
for _, pattern in ipairs(ARGV) do
  for _, key in ipairs(redis.call('KEYS', pattern)) do
    if redis.call('TYPE', key).ok == 'hash' then
      local values = redis.call('HVALS', key)
      n = n + #values
      for i = 1, #values do sum = sum + (tonumber(values[i]) or 0) end
    end
  end
end
return { n, tostring(sum) }
`;

async function inRedis(prefix: string): Promise<{ fields: number; sum: number }> {
  await redisIdle();
  const [fields, sum] = (await admin.eval(
    COUNT_SCRIPT,
    0,
    `{${prefix}}:m:${METRIC}`,
    `{${prefix}:*}:m:${METRIC}`,
  )) as [number, string];
  return { fields: Number(fields), sum: Number(sum) };
}

/** Sample lines of the metric in an exposition. */
function sampleLines(text: string): number {
  const needle = `\n${METRIC}{`;
  let count = 0;
  for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) count++;
  return count;
}

// ---------------------------------------------------------------------------------------------
// Rows

/** The human table: one line per size and operation. */
const overview: string[][] = [[
  "series",
  "operation",
  "time",
  "PING wait",
  "loop hold",
  "scripts",
  "longest",
  "in Redis",
  "calls",
  "result",
]];

/**
 * The rows of an operation's Redis figures, and its overview cells. Indented: under the PING
 * wait row, what explains it (bench/run.mjs leaves them out of its summary).
 */
function scriptRows(scripts: Scripts): string[] {
  row("  longest script call in Redis", fmt(scripts.longestMs, "ms"));
  row("  script calls", String(scripts.calls), {
    baseline: scripts.rejected > 0 ? `${scripts.rejected} refused (BUSY)` : "-",
  });
  row("  Redis time in scripts", fmt(scripts.totalMs, "ms"));
  return [
    String(scripts.calls) + (scripts.rejected > 0 ? ` (+${scripts.rejected} BUSY)` : ""),
    fmt(scripts.longestMs, "ms"),
    fmt(scripts.totalMs, "ms"),
  ];
}

function row(name: string, theus: string, extra: Partial<Row> = {}): void {
  rows.push({ case: name, theus, baseline: "-", ratio: NaN, target: "-", status: "-", ...extra });
}

// Under a hold row: how much of that hold this thread was runnable but not running (another
// thread or process on every CPU), where the kernel says.
function waitRow(name: string, waitedMs: number): void {
  if (Number.isFinite(waitedMs)) {
    row(`${name} longest event-loop hold: of it, waiting for a CPU`, fmt(waitedMs, "ms"));
  }
}

// The longest PING wait, and under it how much of it Redis and the probe were runnable but not
// running, where the kernel says: a wait Redis spent on a run queue is the machine's, not work
// of the scripts.
function pingRows(name: string, ping: PingReport): void {
  row(`${name} longest PING wait`, fmt(ping.maxMs, "ms"), { baseline: pingText(ping) });
  if (ping.redisWaitedMs !== null) {
    row(`${name} longest PING wait: of it, Redis waiting for a CPU`, fmt(ping.redisWaitedMs, "ms"));
  }
  if (ping.probeWaitedMs !== null) {
    row(`${name} longest PING wait: of it, the probe waiting for a CPU`, fmt(ping.probeWaitedMs, "ms"));
  }
}

// Under a hold row: the CPU time this process and Redis used over the operation, as a share of
// what the machine's CPUs had in that time (a share near 100 % leaves threads waiting for a CPU
// however short the library's slices), and this process's page faults.
function machineRows(name: string, run: Measured<unknown>): void {
  const { processMs, systemMs, mainMs, faults } = run.machine;
  const seconds = (ms: number) => fmt(ms / 1000, "s");
  const main = Number.isFinite(mainMs) ? `, the event loop's thread ${seconds(mainMs)}` : "";
  row(
    `${name} CPU in use, of the machine's`,
    `${Math.round((processMs + run.cpuMs) / (run.ms * CPUS) * 100)} %`,
    {
      baseline: `this process ${seconds(processMs)}${main}, Redis ${seconds(run.cpuMs)}, in ${
        seconds(run.ms)
      } on ${CPUS} CPUs`,
    },
  );
  row(`${name} page faults in this process`, String(faults), {
    baseline: `its time in the kernel ${seconds(systemMs)}`,
  });
}

const pingText = (p: PingReport) =>
  p.errors > 0 ? `${p.errors} error replies (${short(p.error ?? "", 60)})` : "-";

/** A failure as the time column shows it. */
function failedText(error: unknown, ms: number): string {
  const kind = error instanceof BackendUnavailableError
    ? "BackendUnavailableError"
    : error instanceof Error
    ? error.name
    : "error";
  return `failed after ${fmt(ms, "ms")} (${kind})`;
}

// ---------------------------------------------------------------------------------------------
// Cases

async function redisCase(n: number, last: boolean): Promise<void> {
  const size = sizeLabel(n);
  const prefix = `scale-${size}`;
  await redisIdle();
  await admin.flushall();
  const memoryBefore = await redisMemory();
  const config = { port: server.port, keyPrefix: prefix, flushIntervalMs: 0 };
  await loadBackend({ backend: RedisBackend, config });
  const registry = new Registry();
  const counter = new Counter({ name: METRIC, help: "Requests", labelNames: LABEL_NAMES, registry });
  runtime.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const incStart = performance.now();
  for (let i = 0; i < n; i++) counter.labels(labelsOf(i)).inc();
  const incMs = performance.now() - incStart;
  runtime.gc?.();
  const heapPerSeries = (process.memoryUsage().heapUsed - heapBefore) / n;

  // The flush: until it lands, or given up.
  const calls: number[] = [];
  let confirmed = false;
  const flushed = await measure(async () => {
    const start = performance.now();
    while (calls.length < MAX_FLUSH_CALLS && performance.now() - start < MAX_FLUSH_MS) {
      if (calls.length > 0) await sleep(RETRY_PAUSE_MS);
      const before = (await health(prefix)).failures;
      const t = performance.now();
      await flush();
      calls.push(performance.now() - t);
      const after = await health(prefix);
      if (after.failures === before && after.pending === 0) {
        confirmed = true;
        return;
      }
    }
  });
  if (flushed.error !== undefined) throw flushed.error; // flush() never rejects
  const stored = await inRedis(prefix);
  const missing = Math.max(0, n - stored.fields);
  const bytesPerSeries = (await redisMemory() - memoryBefore) / Math.max(1, stored.fields);
  row(
    `flush ${size}: time to land`,
    confirmed
      ? fmt(flushed.ms, "ms")
      : `did not land (gave up after ${calls.length} flush() calls, ${fmt(flushed.ms / 1000, "s")})`,
    { target: "lands", status: confirmed ? "met" : "MISSED" },
  );
  row(`flush ${size}: flush() calls`, String(calls.length));
  pingRows(`flush ${size}:`, flushed.ping);
  const flushCells = scriptRows(flushed.scripts);
  row(`flush ${size}: longest event-loop hold`, fmt(flushed.holdMs, "ms"));
  waitRow(`flush ${size}:`, flushed.holdWaitMs);
  machineRows(`flush ${size}:`, flushed);
  row(`flush ${size}: series not in Redis`, String(missing), {
    baseline: `${stored.fields} fields, sum ${stored.sum}`,
  });
  notes.push(`${size}: flush: ${spreadOf(flushed.scripts.durations)}`);
  overview.push([
    size,
    "flush()",
    confirmed ? fmt(flushed.ms, "ms") : `gave up, ${fmt(flushed.ms / 1000, "s")}`,
    fmt(flushed.ping.maxMs, "ms") + (flushed.ping.errors > 0 ? ` (${flushed.ping.errors} errors)` : ""),
    fmt(flushed.holdMs, "ms"),
    ...flushCells,
    String(calls.length),
    `${confirmed ? "landed" : "NOT CONFIRMED"}; in Redis: ${stored.fields} of ${n}, sum ${stored.sum}`,
  ]);
  notes.push(
    `${size}: ${n} labels().inc() of new series in ${fmt(incMs, "ms")}; flush() calls took ${
      calls.map((ms) => fmt(ms, "ms")).join(", ")
    }${
      flushed.busyAfterMs > 1 ? `; Redis answered again ${fmt(flushed.busyAfterMs, "ms")} after the last` : ""
    }`,
  );
  if (confirmed && (stored.fields !== n || stored.sum !== n)) {
    failures.push(`flush ${size}: confirmed, but Redis holds ${stored.fields} fields, sum ${stored.sum}`);
  } else if (!confirmed && stored.fields > 0) {
    notes.push(
      `${size}: the flush was not confirmed, yet Redis holds ${stored.fields} fields, sum ${stored.sum} ` +
        `(a script that outlived its call's timeout)`,
    );
  }
  if (stored.sum > n) {
    notes.push(`${size}: Redis holds a sum of ${stored.sum} for ${n} increments: counted twice`);
  }

  // The collection, without and with rendering, and as a scrape reads it.
  const handler = metricsHandler({ registry, compress: false });
  let firstByteMs = 0;
  const operations: {
    name: string;
    label: string;
    work: () => Promise<unknown>;
    verify: (result: unknown) => string;
  }[] = [
    {
      name: `collect ${size}: registry.collect()`,
      label: "registry.collect()",
      work: () => registry.collect(),
      verify: (result: unknown) => {
        const family = familyOf(result as MetricFamily[], METRIC);
        const series = (family?.series ?? []) as ValueSeries[];
        const sum = series.reduce((total, s) => total + s.value, 0);
        if (series.length !== n || sum !== n) {
          failures.push(`${size}: registry.collect() returned ${series.length} series, sum ${sum}`);
        }
        return `${series.length} series`;
      },
    },
    {
      name: `scrape ${size}: generateLatest()`,
      label: "generateLatest()",
      work: () => generateLatest(registry),
      verify: (result: unknown) => {
        const lines = sampleLines(result as string);
        if (lines !== n) failures.push(`${size}: generateLatest() wrote ${lines} sample lines`);
        return `${lines} lines, ${((result as string).length / 2 ** 20).toFixed(1)} MiB`;
      },
    },
    {
      name: `scrape ${size}: metricsHandler() body`,
      label: "metricsHandler()",
      work: async () => {
        const start = performance.now();
        const response = await handler(new Request("http://bench/metrics"));
        firstByteMs = performance.now() - start;
        return await readBody(response);
      },
      verify: (result: unknown) => {
        const { samples, bytes } = result as { samples: number; bytes: number };
        if (samples !== n) failures.push(`${size}: metricsHandler() wrote ${samples} sample lines`);
        return `${samples} lines, ${(bytes / 2 ** 20).toFixed(1)} MiB; answered after ${
          fmt(firstByteMs, "ms")
        }`;
      },
    },
  ];
  const cpuOf: Record<string, number> = {};
  for (const { name, label, work, verify } of operations) {
    const runs: Measured<unknown>[] = [];
    let outcome = "";
    for (let round = 0; round < roundsFor(n); round++) {
      const run = await measure<unknown>(work);
      outcome = run.error === undefined ? verify(run.result) : short(message(run.error));
      run.result = undefined;
      runs.push(run);
      if (run.error !== undefined) break;
    }
    const failed = runs.find((run) => run.error !== undefined);
    const ping = runs.reduce(
      (worst, run) => (run.ping.maxMs >= worst.maxMs ? run.ping : worst),
      runs[0].ping,
    );
    const held = runs.reduce((worst, run) => (run.holdMs >= worst.holdMs ? run : worst), runs[0]);
    const hold = held.holdMs;
    const time = failed !== undefined
      ? failedText(failed.error, failed.ms)
      : fmt(median(runs.map((r) => r.ms)), "ms");
    row(name, time, { target: "succeeds", status: failed === undefined ? "met" : "MISSED" });
    pingRows(name, ping);
    // Over the rounds: the most calls, the median time in Redis, the longest call.
    const cells = scriptRows({
      calls: Math.max(...runs.map((run) => run.scripts.calls)),
      rejected: runs.reduce((sum, run) => sum + run.scripts.rejected, 0),
      totalMs: median(runs.map((run) => run.scripts.totalMs)),
      longestMs: Math.max(...runs.map((run) => run.scripts.longestMs)),
      durations: runs.flatMap((run) => run.scripts.durations),
    });
    row(`${name} longest event-loop hold`, fmt(hold, "ms"));
    waitRow(name, held.holdWaitMs);
    machineRows(name, held);
    notes.push(`${size}: ${label}: ${spreadOf(runs.flatMap((run) => run.scripts.durations))}`);
    overview.push([
      size,
      label,
      failed !== undefined ? `failed, ${fmt(failed.ms, "ms")}` : time,
      fmt(ping.maxMs, "ms") + (ping.errors > 0 ? ` (${ping.errors} errors)` : ""),
      fmt(hold, "ms"),
      ...cells,
      runs.length > 1 ? `${runs.length} rounds` : "",
      outcome,
    ]);
    if (failed !== undefined) notes.push(`${size}: ${label} failed: ${message(failed.error)}`);
    cpuOf[label] = median(runs.map((run) => run.cpuMs));
  }

  // The same series changed again: what a fleet's steady flushes cost Redis.
  for (let i = 0; i < n; i++) counter.labels(labelsOf(i)).inc();
  const again = await measure(async () => {
    for (let call = 0; call < MAX_FLUSH_CALLS && (await health(prefix)).pending > 0; call++) await flush();
  });
  const landed = (await health(prefix)).pending === 0;
  row(`flush ${size} again: time to land`, landed ? fmt(again.ms, "ms") : "did not land", {
    target: "lands",
    status: landed ? "met" : "MISSED",
  });
  pingRows(`flush ${size} again:`, again.ping);
  row(`flush ${size} again: longest event-loop hold`, fmt(again.holdMs, "ms"));
  waitRow(`flush ${size} again:`, again.holdWaitMs);
  machineRows(`flush ${size} again:`, again);
  overview.push([
    size,
    "flush() again",
    landed ? fmt(again.ms, "ms") : "did not land",
    fmt(again.ping.maxMs, "ms"),
    fmt(again.holdMs, "ms"),
    ...scriptRows(again.scripts),
    "",
    "the same series, changed again",
  ]);
  // Capacity: Redis CPU per change and per value read, and memory per series.
  const rate = (count: number, ms: number) => ms > 0 ? `${Math.round(count / ms * 1000)}/s` : "n/a";
  row(`capacity ${size}: new series written per Redis CPU second`, rate(n, flushed.cpuMs));
  row(`capacity ${size}: changes per Redis CPU second`, rate(n, again.cpuMs));
  row(`capacity ${size}: values read per Redis CPU second`, rate(n, cpuOf["registry.collect()"] ?? 0));
  row(`capacity ${size}: Redis memory per series`, fmt(bytesPerSeries, "B"));
  row(`capacity ${size}: heap per series in this process, before the flush`, fmt(heapPerSeries, "B"));

  // What is left: closed, but for a last size whose changes never landed (closing flushes once more).
  const left = (await health(prefix)).pending;
  if (left === 0 || !last) await RedisBackend.close();
  if (left > 0) {
    notes.push(`${size}: ${left} series still pending at the end${last ? " (the store was left open)" : ""}`);
  }
  notes.push(`${size}: RSS ${rss()} after the case`);
  await loadBackend({ backend: "memory" });
}

/**
 * A flush and collections of a few series on a prefix of their own, so that Redis has the
 * scripts (FLUSHALL keeps them) and the engine has compiled the code before the first size.
 */
async function warmUp(): Promise<void> {
  await loadBackend({
    backend: RedisBackend,
    config: { port: server.port, keyPrefix: "scale-warm-up", flushIntervalMs: 0 },
  });
  const registry = new Registry();
  const counter = new Counter({ name: METRIC, help: "Requests", labelNames: LABEL_NAMES, registry });
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 3000; i++) counter.labels(labelsOf(i)).inc();
    await flush();
    await registry.collect();
    await generateLatest(registry);
    // The runtime's Request and Response (on Node, loaded on first use: tens of milliseconds).
    await (await metricsHandler({ registry, compress: false })(new Request("http://localhost/metrics")))
      .text();
  }
  await RedisBackend.close();
  await loadBackend({ backend: "memory" });
}

/**
 * Reads a scrape's body as a scraper does, chunk by chunk, never as one string of the whole body:
 * its sample lines and characters.
 */
async function readBody(response: Response): Promise<{ samples: number; bytes: number }> {
  if (response.status !== 200) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let samples = 0;
  let bytes = 0;
  let rest = "\n"; // the end of the previous chunk, after its last line break
  for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
    bytes += chunk.value.length;
    const text = rest + chunk.value;
    const end = text.lastIndexOf("\n");
    samples += sampleLines(text.slice(0, end + 1));
    rest = text.slice(end);
  }
  return { samples, bytes };
}

type Immediate = (callback: () => void) => unknown;
const immediate = (globalThis as { setImmediate?: Immediate }).setImmediate;
const nextTurn = (): Promise<void> =>
  new Promise((resolve) => immediate !== undefined ? immediate(resolve) : setTimeout(resolve, 0));

/**
 * The floor under `registry.collect()`: n objects shaped like the series it returns, with two
 * shared label strings, pushed into one array by a plain loop that gives the event loop a turn
 * every 5 ms, as the library's loops do. No library code: its longest hold is what this runtime
 * and machine charge for keeping that many new objects and growing that array (the collector
 * copying them, the array's last growth, memory the process touches for the first time).
 */
async function bareArray(n: number): Promise<{ labels: Record<string, string>; value: number }[]> {
  const out: { labels: Record<string, string>; value: number }[] = [];
  let started = performance.now();
  for (let i = 0; i < n; i++) {
    out.push({ labels: { route: "/api/r1", code: "200" }, value: i });
    if ((i & 1023) === 1023 && performance.now() - started >= 5) {
      await nextTurn();
      started = performance.now();
    }
  }
  return out;
}

/** The same series without Redis: theus' memory backend, and prom-client. */
async function referenceCase(n: number): Promise<void> {
  const size = sizeLabel(n);
  const rounds = roundsFor(n);
  // `lines` counts the sample lines of what `work` gave, once the clock and the timer are stopped.
  // The probe keeps sending PINGs to the idle Redis meanwhile: its longest wait is the machine's.
  const timed = async <T>(work: () => Promise<T>, lines: (result: T) => number) => {
    const ms: number[] = [];
    let hold = 0;
    let written = 0;
    let ping: PingReport | undefined;
    for (let round = 0; round < rounds; round++) {
      await collectGarbage();
      await probe.mark();
      const stop = watchLoop();
      const start = performance.now();
      const result = await work();
      ms.push(performance.now() - start);
      hold = Math.max(hold, stop().ms - tickMs);
      const report = await probe.report();
      if (ping === undefined || report.maxMs > ping.maxMs) ping = report;
      written = lines(result);
    }
    return { ms: median(ms), hold: Math.max(0, hold), lines: written, ping: ping! };
  };

  await loadBackend({ backend: "memory" });
  const registry = new Registry();
  const counter = new Counter({ name: METRIC, help: "Requests", labelNames: LABEL_NAMES, registry });
  for (let i = 0; i < n; i++) counter.labels(labelsOf(i)).inc();
  const ours = await timed(() => generateLatest(registry), sampleLines);
  const handler = metricsHandler({ registry, compress: false });
  const streamed = await timed(
    async () => await readBody(await handler(new Request("http://bench/metrics"))),
    (body) => body.samples,
  );
  // With the same series alive, as in the Redis cases.
  const bare = await timed(() => bareArray(n), (array) => array.length);
  registry.unregister(counter); // its series can go before prom-client's are made

  const promRegistry = new client.Registry();
  const promCounter = new client.Counter({
    name: METRIC,
    help: "Requests",
    labelNames: LABEL_NAMES,
    registers: [promRegistry],
  });
  for (let i = 0; i < n; i++) promCounter.labels(labelsOf(i)).inc();
  const theirs = await timed(() => promRegistry.metrics(), sampleLines);

  if (ours.lines !== n) failures.push(`${size}: memory backend generateLatest() wrote ${ours.lines} lines`);
  if (streamed.lines !== n) {
    failures.push(`${size}: memory backend metricsHandler() wrote ${streamed.lines} lines`);
  }
  if (theirs.lines !== n) failures.push(`${size}: prom-client metrics() wrote ${theirs.lines} lines`);
  if (bare.lines !== n) failures.push(`${size}: the bare array has ${bare.lines} entries`);
  rows.push({
    case: `reference ${size}: generateLatest(), memory backend (no Redis)`,
    theus: fmt(ours.ms, "ms"),
    baseline: `${fmt(theirs.ms, "ms")} prom-client registry.metrics()`,
    ratio: theirs.ms / ours.ms,
    target: "-",
    status: "-",
  });
  rows.push({
    case: `reference ${size}: longest event-loop hold, memory backend (no Redis)`,
    theus: fmt(ours.hold, "ms"),
    baseline: `${fmt(theirs.hold, "ms")} prom-client`,
    ratio: theirs.hold / ours.hold,
    target: "-",
    status: "-",
  });
  row(`reference ${size}: metricsHandler() body, memory backend (no Redis)`, fmt(streamed.ms, "ms"));
  row(
    `reference ${size}: metricsHandler() body: longest event-loop hold, memory backend (no Redis)`,
    fmt(streamed.hold, "ms"),
  );
  // The floor under the PING waits of the Redis cases: Redis runs nothing of ours.
  pingRows(`reference ${size}: idle Redis, while this process scrapes its memory backend:`, streamed.ping);
  row(
    `reference ${size}: a bare array of ${size} { labels, value } objects, built in 5 ms slices: longest event-loop hold`,
    fmt(bare.hold, "ms"),
  );
  for (
    const [label, result, note] of [
      ["memory backend generateLatest()", ours, "reference, Redis idle"],
      ["memory backend metricsHandler() body", streamed, "reference, Redis idle"],
      [`bare array of ${size} objects`, bare, "floor of registry.collect(): no library code"],
      ["prom-client registry.metrics()", theirs, "reference, one process's memory"],
    ] as const
  ) {
    overview.push([
      size,
      label,
      fmt(result.ms, "ms"),
      fmt(result.ping.maxMs, "ms"),
      fmt(result.hold, "ms"),
      "",
      "",
      "",
      "",
      note,
    ]);
  }
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
console.log(
  `theus redis backend at fleet scale — ${runtime.version}${quick ? " — quick" : ""}; sizes ${
    SIZES.map(sizeLabel).join(", ")
  }`,
);
tickMs = await timerGranularity();
console.log(`1 ms timer: ${fmt(tickMs, "ms")} between ticks when idle (subtracted from the holds)`);
const server: RedisServer = await startRedis();
try {
  admin = new IoRedis({ port: server.port, host: "127.0.0.1", commandTimeout: IDLE_WAIT_MS });
  const info = await admin.info("server");
  console.log(`redis-server ${info.match(/^redis_version:(.*)$/m)?.[1]?.trim()} on 127.0.0.1:${server.port}`);
  // Script calls from SLOWLOG_US up are logged with their duration; the probe's PINGs are not.
  await admin.call("CONFIG", "SET", "slowlog-log-slower-than", String(SLOWLOG_US));
  await admin.call("CONFIG", "SET", "slowlog-max-len", "100000");
  const redisPid = Number(info.match(/^process_id:(\d+)/m)?.[1]);
  probe = await Probe.start(server.port, Number.isInteger(redisPid) ? redisPid : undefined);
  if (REALTIME) await runRealtime(redisPid, probe.pid);
  if (ISOLATE) await isolate(redisPid, probe.pid);
  for (const n of SIZES) await referenceCase(n);
  await warmUp();
  for (const [i, n] of SIZES.entries()) {
    console.log(`${sizeLabel(n)} series…`);
    await redisCase(n, i === SIZES.length - 1);
  }
} catch (error) {
  failures.push(
    `the benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
  );
} finally {
  probe?.stop();
  admin?.disconnect();
  await server.stop();
}

console.log("");
console.log(table(overview));
console.log("");
printReport({
  runtime,
  kind: "scale",
  quick,
  ratios: `PING wait: the longest a second connection waited for Redis; loop hold: the longest this ` +
    `process's event loop was held, less the timer's idle gap (${fmt(tickMs, "ms")}); reference ratios ` +
    `= prom-client / theus memory backend`,
  elapsedMs: performance.now() - started,
  sane: "every confirmed flush left its totals in Redis, every collection that succeeded had every series",
  sink,
});
exitProcess();

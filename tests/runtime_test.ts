// collectDefaultMetrics() against the real process: prom-client 15's names and types, and values
// checked against what Linux itself says in /proc, on Deno, Bun and Node.

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { AlreadyRegisteredError, Counter, generateLatest, type MetricFamily, Registry } from "../mod.ts";
import { collectDefaultMetrics, DEFAULT_METRICS } from "../runtime/mod.ts";
import { runtime, test } from "./_harness.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";

// prom-client 15's default metrics and their types, as its lib/metrics/*.js spell them.
const PROM_CLIENT: Record<string, string> = {
  process_cpu_user_seconds_total: "counter",
  process_cpu_system_seconds_total: "counter",
  process_cpu_seconds_total: "counter",
  process_start_time_seconds: "gauge",
  process_resident_memory_bytes: "gauge",
  process_virtual_memory_bytes: "gauge",
  process_heap_bytes: "gauge",
  process_open_fds: "gauge",
  process_max_fds: "gauge",
  nodejs_eventloop_lag_seconds: "gauge",
  nodejs_eventloop_lag_min_seconds: "gauge",
  nodejs_eventloop_lag_max_seconds: "gauge",
  nodejs_eventloop_lag_mean_seconds: "gauge",
  nodejs_eventloop_lag_stddev_seconds: "gauge",
  nodejs_eventloop_lag_p50_seconds: "gauge",
  nodejs_eventloop_lag_p90_seconds: "gauge",
  nodejs_eventloop_lag_p99_seconds: "gauge",
  nodejs_active_resources: "gauge",
  nodejs_active_resources_total: "gauge",
  nodejs_active_handles: "gauge",
  nodejs_active_handles_total: "gauge",
  nodejs_active_requests: "gauge",
  nodejs_active_requests_total: "gauge",
  nodejs_heap_size_total_bytes: "gauge",
  nodejs_heap_size_used_bytes: "gauge",
  nodejs_external_memory_bytes: "gauge",
  nodejs_heap_space_size_total_bytes: "gauge",
  nodejs_heap_space_size_used_bytes: "gauge",
  nodejs_heap_space_size_available_bytes: "gauge",
  nodejs_version_info: "gauge",
  nodejs_gc_duration_seconds: "histogram",
};

// What each runtime does not measure (README, "Runtime metrics"), and what theus adds.
const NOT_MEASURED: Record<string, readonly string[]> = {
  node: [],
  deno: [
    "nodejs_active_handles",
    "nodejs_active_handles_total",
    "nodejs_active_requests",
    "nodejs_active_requests_total",
    "nodejs_version_info",
    "nodejs_gc_duration_seconds",
  ],
  bun: [
    "nodejs_heap_size_total_bytes",
    "nodejs_active_resources",
    "nodejs_active_resources_total",
    "nodejs_active_handles",
    "nodejs_active_handles_total",
    "nodejs_active_requests",
    "nodejs_active_requests_total",
    "nodejs_heap_space_size_total_bytes",
    "nodejs_heap_space_size_used_bytes",
    "nodejs_heap_space_size_available_bytes",
    "nodejs_version_info",
    "nodejs_gc_duration_seconds",
  ],
};
const ADDED: Record<string, readonly string[]> = {
  node: ["nodejs_eventloop_utilization_ratio"],
  deno: ["deno_version_info"],
  bun: ["bun_version_info"],
};

const exposed = (name: string, type: string) => type === "counter" ? name.replace(/_total$/, "") : name;

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name || f.name === name.replace(/_total$/, ""));
  assert.ok(found, `no family ${name} in ${families.map((f) => f.name).join(", ")}`);
  return found;
}

interface AnySeries {
  labels: Record<string, string>;
  value: number;
  count: number;
}

function seriesOf(families: readonly MetricFamily[], name: string): AnySeries[] {
  return family(families, name).series as unknown as AnySeries[];
}

function value(families: readonly MetricFamily[], name: string): number {
  const series = family(families, name).series[0] as { value: number } | undefined;
  assert.ok(series, `${name} has no series`);
  return series.value;
}

function procStatus(field: string): number {
  const line = readFileSync("/proc/self/status", "utf8").split("\n").find((l) => l.startsWith(`${field}:`));
  return Number(/(\d+) kB/.exec(line!)![1]) * 1024;
}

// /proc/self/stat: utime, stime and starttime, in clock ticks (100 per second on Linux).
function procStat(): { cpuSeconds: number; startSeconds: number } {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const bootTime = Number(/^btime (\d+)/m.exec(readFileSync("/proc/stat", "utf8"))![1]);
  return {
    cpuSeconds: (Number(fields[11]) + Number(fields[12])) / 100,
    startSeconds: bootTime + Number(fields[19]) / 100,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

test(`collectDefaultMetrics() on ${runtime} has prom-client's names and types, less what ${runtime} does not measure`, async () => {
  const registry = new Registry();
  using runtimeMetrics = collectDefaultMetrics({ registry });
  const expected = Object.entries(PROM_CLIENT).filter(([name]) => !NOT_MEASURED[runtime].includes(name));
  const families = await registry.collect();
  for (const [name, type] of expected) {
    assert.equal(family(families, name).type, type, name);
  }
  assert.deepEqual(
    [...runtimeMetrics.names].sort(),
    [...expected.map(([name]) => name), ...ADDED[runtime]].sort(),
  );
  // The text format spells each as prom-client does, `_total` included.
  const text = await generateLatest(registry);
  for (const [name, type] of expected) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, "m"));
  for (const [name, type] of Object.entries(PROM_CLIENT)) {
    if (NOT_MEASURED[runtime].includes(name)) {
      assert.ok(!families.some((f) => f.name === exposed(name, type)));
    }
  }
});

if (runtime === "deno") {
  test("on deno without any permission, the runtime metrics neither prompt nor throw, and leave out /proc", async () => {
    const fixture = new URL("./fixtures/runtime_noperm.ts", import.meta.url).pathname;
    // Deno.Command, not node:child_process: Deno runs itself with -A through the latter.
    // deno-lint-ignore no-explicit-any
    const deno = (globalThis as any).Deno;
    const output = await new deno.Command(deno.execPath(), {
      args: ["run", "--no-prompt", fixture],
      env: { NO_COLOR: "1" },
      clearEnv: true,
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    const [code, stdout, stderr] = [output.code as number, decode(output.stdout), decode(output.stderr)];
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /prompt|requires|NotCapable/i);
    const { names, collected } = JSON.parse(stdout) as { names: string[]; collected: number };
    assert.equal(collected, names.length);
    for (
      const name of [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
      ]
    ) {
      assert.ok(names.includes(name), `${name} in ${names.join()}`);
    }
    for (const name of ["process_open_fds", "process_max_fds", "process_virtual_memory_bytes"]) {
      assert.ok(!names.includes(name), `${name} needs /proc`);
    }
  });
}

if (runtime === "node") {
  test("the names theus expects of prom-client are the ones prom-client 15 registers", async () => {
    const client = await import("prom-client");
    const registry = new client.Registry();
    client.collectDefaultMetrics({ register: registry });
    const metrics = await registry.getMetricsAsJSON();
    const types = Object.fromEntries(metrics.map((m) => [m.name, String(m.type)]));
    assert.deepEqual(types, PROM_CLIENT);
    registry.clear();
  });
}

test(`on ${runtime}, CPU, memory, start time and file descriptors agree with /proc`, async () => {
  const registry = new Registry();
  using _runtime = collectDefaultMetrics({ registry });
  const before = await registry.collect();
  const proc = procStat();
  const cpu = value(before, "process_cpu_seconds_total");
  assert.ok(Math.abs(cpu - proc.cpuSeconds) < 0.25, `CPU ${cpu} s, /proc says ${proc.cpuSeconds} s`);
  assert.ok(
    Math.abs(
      value(before, "process_cpu_user_seconds_total") + value(before, "process_cpu_system_seconds_total") -
        cpu,
    ) < 1e-9,
  );
  // RSS moves while a test runs: VmRSS is read just before and just after a collection.
  const vmBefore = procStatus("VmRSS");
  const memory = await registry.collect();
  const vmAfter = procStatus("VmRSS");
  const rss = value(memory, "process_resident_memory_bytes");
  assert.ok(
    rss >= Math.min(vmBefore, vmAfter) * 0.9 && rss <= Math.max(vmBefore, vmAfter) * 1.1,
    `RSS ${rss}, VmRSS ${vmBefore} before and ${vmAfter} after`,
  );
  assert.equal(value(before, "process_virtual_memory_bytes") > rss, true);
  assert.ok(value(before, "process_heap_bytes") > 0);
  const start = value(before, "process_start_time_seconds");
  assert.ok(Math.abs(start - proc.startSeconds) < 1, `start ${start}, /proc says ${proc.startSeconds}`);
  const fds = value(before, "process_open_fds");
  const open = readdirSync("/proc/self/fd").length;
  assert.ok(Math.abs(fds - open) <= 5, `${fds} open fds, /proc/self/fd lists ${open}`);
  const limit = Number(/^Max open files\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))![1]);
  assert.equal(value(before, "process_max_fds"), limit);

  // 0.5 s of busy loop, by the kernel's count: on a loaded machine wall time is not CPU time.
  const cpuStart = procStat().cpuSeconds;
  const deadline = performance.now() + 5000;
  while (procStat().cpuSeconds - cpuStart < 0.5 && performance.now() < deadline) busy(10);
  const after = await registry.collect();
  const grown = value(after, "process_cpu_seconds_total") - cpu;
  assert.ok(grown >= 0.4, `CPU grew by ${grown} s over 0.5 s of busy loop`);
  assert.ok(value(after, "process_cpu_user_seconds_total") > value(before, "process_cpu_user_seconds_total"));
});

test(`on ${runtime}, a 200 ms block shows in the event-loop lag: p99 and max at least 0.1 s`, async () => {
  const registry = new Registry();
  using _runtime = collectDefaultMetrics({ registry, include: ["eventloop"] });
  await sleep(100);
  await registry.collect(); // the statistics start afresh
  busy(200);
  await sleep(40);
  const families = await registry.collect();
  assert.ok(value(families, "nodejs_eventloop_lag_p99_seconds") >= 0.1);
  assert.ok(value(families, "nodejs_eventloop_lag_max_seconds") >= 0.19);
  assert.ok(value(families, "nodejs_eventloop_lag_min_seconds") < 0.1);
  // Quiet again: the next window has no such delay.
  await sleep(150);
  const quiet = await registry.collect();
  assert.ok(value(quiet, "nodejs_eventloop_lag_max_seconds") < 0.1);
  assert.ok(
    value(quiet, "nodejs_eventloop_lag_p50_seconds") <= value(quiet, "nodejs_eventloop_lag_p99_seconds"),
  );
});

test(`on ${runtime}, the heap figures are the runtime's own`, async () => {
  const registry = new Registry();
  using _runtime = collectDefaultMetrics({ registry, include: ["heap", "heapspaces"] });
  const families = await registry.collect();
  const used = value(families, "nodejs_heap_size_used_bytes");
  // Bun has no heap total to compare with (see runtime/_host.ts).
  const total = runtime === "bun" ? Infinity : value(families, "nodejs_heap_size_total_bytes");
  assert.ok(used > 100_000 && used <= total, `heap used ${used} of ${total}`);
  assert.ok(value(families, "nodejs_external_memory_bytes") >= 0);
  if (runtime !== "bun") {
    const spaces = family(families, "nodejs_heap_space_size_used_bytes").series as {
      labels: Record<string, string>;
      value: number;
    }[];
    const names = spaces.map((s) => s.labels.space);
    assert.ok(names.includes("old") && names.includes("new"), names.join());
    const v8 = await import("node:v8");
    const old = v8.getHeapSpaceStatistics().find((s) => s.space_name === "old_space")!;
    const reported = spaces.find((s) => s.labels.space === "old")!.value;
    assert.ok(Math.abs(reported - old.space_used_size) < old.space_used_size * 0.5);
  }
});

if (runtime === "node") {
  test("on node, the GC histogram counts a forced collection, by kind", async () => {
    const v8 = await import("node:v8");
    const vm = await import("node:vm");
    v8.setFlagsFromString("--expose-gc");
    const gc = vm.runInNewContext("gc") as () => void;
    const registry = new Registry();
    using _runtime = collectDefaultMetrics({
      registry,
      include: ["gc"],
      gcDurationBuckets: [0.0001, 0.01, 1],
    });
    const count = async () =>
      seriesOf(await registry.collect(), "nodejs_gc_duration_seconds")
        .reduce((sum, s) => sum + s.count, 0);
    const before = await count();
    gc();
    await sleep(50);
    const after = await count();
    assert.ok(after > before, `GC count ${before} -> ${after}`);
    const kinds = seriesOf(await registry.collect(), "nodejs_gc_duration_seconds").map((s) => s.labels.kind);
    assert.ok(kinds.includes("major"), kinds.join());
    assert.ok(
      kinds.every((kind) => ["minor", "major", "incremental", "weakcb"].includes(kind)),
      kinds.join(),
    );
  });

  test("on node, event-loop utilization is near 1 while busy and near 0 while idle", async () => {
    const registry = new Registry();
    using _runtime = collectDefaultMetrics({ registry, include: ["nodejs_eventloop_utilization_ratio"] });
    await registry.collect();
    busy(300);
    const busyRatio = value(await registry.collect(), "nodejs_eventloop_utilization_ratio");
    assert.ok(busyRatio > 0.8, `busy: ${busyRatio}`);
    await sleep(300);
    const idleRatio = value(await registry.collect(), "nodejs_eventloop_utilization_ratio");
    assert.ok(idleRatio < 0.3, `idle: ${idleRatio}`);
  });

  test("on node, active handles are counted by type and follow what the process holds", async () => {
    const net = await import("node:net");
    const registry = new Registry();
    using _runtime = collectDefaultMetrics({ registry, include: ["handles", "resources"] });
    const server = net.createServer().listen(0);
    await new Promise((resolve) => server.once("listening", resolve));
    const handles = seriesOf(await registry.collect(), "nodejs_active_handles");
    assert.equal(handles.find((s) => s.labels.type === "Server")?.value, 1);
    const resources = seriesOf(await registry.collect(), "nodejs_active_resources");
    assert.ok(resources.some((s) => s.labels.type === "TCPServerWrap"));
    await new Promise((resolve) => server.close(resolve));
    await sleep(20);
    const gone = seriesOf(await registry.collect(), "nodejs_active_handles");
    assert.ok(!gone.some((s) => s.labels.type === "Server"), "a closed server's handle type is removed");
  });
}

test(`on ${runtime}, the runtime version is a version info gauge`, async () => {
  const registry = new Registry();
  using _runtime = collectDefaultMetrics({ registry, include: ["version"] });
  const [info] = await registry.collect();
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  // Node's as prom-client writes it: process.version, "v" included.
  const version = runtime === "deno"
    ? g.Deno.version.deno
    : runtime === "bun"
    ? g.Bun.version
    : g.process.version;
  assert.equal(info.name, `${runtime === "node" ? "nodejs" : runtime}_version_info`);
  const [major, minor, patch] = version.replace(/^v/, "").split(".");
  assert.deepEqual(info.series, [{ labels: { version, major, minor, patch }, value: 1 }]);
});

test("include and exclude take names and groups; prefix and labels apply to every series", async () => {
  const registry = new Registry();
  using handle = collectDefaultMetrics({
    registry,
    include: ["cpu", "process_resident_memory_bytes", "eventloop"],
    exclude: ["process_cpu_user_seconds_total", "nodejs_eventloop_utilization_ratio"],
    prefix: "app_",
    labels: { service: "api" },
  });
  const expected = [
    "app_process_cpu_system_seconds_total",
    "app_process_cpu_seconds_total",
    "app_process_resident_memory_bytes",
    "app_nodejs_eventloop_lag_seconds",
    ...["min", "max", "mean", "stddev", "p50", "p90", "p99"].map((s) =>
      `app_nodejs_eventloop_lag_${s}_seconds`
    ),
  ];
  assert.deepEqual([...handle.names].sort(), expected.sort());
  await sleep(30);
  const families = await registry.collect();
  assert.deepEqual(
    families.map((f) => f.type === "counter" ? `${f.name}_total` : f.name).sort(),
    expected.sort(),
  );
  for (const f of families) {
    assert.ok(f.series.length > 0, f.name);
    for (const s of f.series) assert.equal(s.labels.service, "api", f.name);
  }
  assert.deepEqual(DEFAULT_METRICS.cpu, [
    "process_cpu_user_seconds_total",
    "process_cpu_system_seconds_total",
    "process_cpu_seconds_total",
  ]);
});

test("stop() unregisters the metrics and ends the monitors; using does the same", async () => {
  const registry = new Registry();
  const handle = collectDefaultMetrics({ registry });
  assert.ok((await registry.collect()).length > 10);
  handle.stop();
  handle.stop();
  assert.deepEqual(await registry.collect(), []);
  {
    using _again = collectDefaultMetrics({ registry });
    assert.ok((await registry.collect()).length > 10);
  }
  assert.deepEqual(await registry.collect(), []);
  // The registry's other metrics stay.
  new Counter({ name: "jobs_total", help: "Jobs", registry }).inc();
  collectDefaultMetrics({ registry, include: ["start"] }).stop();
  assert.deepEqual((await registry.collect()).map((f) => f.name), ["jobs"]);
});

test("collecting twice into one registry throws AlreadyRegisteredError and registers nothing more", async () => {
  const registry = new Registry();
  using _first = collectDefaultMetrics({ registry, include: ["cpu", "memory"] });
  const before = (await registry.collect()).map((f) => f.name);
  assert.throws(() => collectDefaultMetrics({ registry }), AlreadyRegisteredError);
  assert.deepEqual((await registry.collect()).map((f) => f.name), before);
});

test("bad options are a TypeError that names the mistake", () => {
  const registry = new Registry();
  const bad: [unknown, RegExp][] = [
    [{ registry, register: registry }, /Unknown option "register".*"registry"/],
    [{ registry, include: ["cpu", "process_cpu"] }, /Invalid include entry "process_cpu"/],
    [{ registry, exclude: "gc" }, /Invalid exclude .*expected an array/],
    [{ registry, prefix: "1app_" }, /Invalid prefix/],
    [{ registry, labels: { "bad-name": "x" } }, /label name/i],
    [{ registry, labels: { theus_instance: "x" } }, /theus_instance/],
    [{ registry, labels: { service: 1 } }, /service/],
    [{ registry, eventLoopMonitoringPrecision: 0 }, /eventLoopMonitoringPrecision/],
    [{ registry, gcDurationBuckets: [2, 1], include: ["gc"] }, /bucket/i],
    [{ registry, updateIntervalMs: 10 }, /updateIntervalMs/],
    [{ registry, include: ["space"] }, /Invalid include entry "space"/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => collectDefaultMetrics(options as never), (e: Error) => {
      // Buckets are a RangeError, as for any histogram.
      assert.ok(e instanceof TypeError || e instanceof RangeError, `${JSON.stringify(options)}: ${e}`);
      assert.match(e.message, message);
      return true;
    });
  }
  // Labels that clash with a metric's own label names are refused at once, too.
  assert.throws(() => collectDefaultMetrics({ registry, labels: { space: "x" } }), /space/);
  assert.deepEqual(registry.get("process_cpu_seconds_total"), undefined);
});

test(`on ${runtime}, the runtime metrics are valid for promtool and the OpenMetrics parser`, async () => {
  const registry = new Registry();
  using _runtime = collectDefaultMetrics({ registry, labels: { app: "t" } });
  await sleep(30);
  await assertPromtool(await generateLatest(registry), {
    // prom-client's names for these gauges end in _total; dashboards depend on them.
    allowLints: [/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/],
  });
  await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
});

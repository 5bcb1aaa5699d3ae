/**
 * theus against prom-client, side by side in one process: hot-path updates, exposition of a
 * large registry (time and event-loop hold), and heap per series. Runs on Deno, Bun and Node:
 *
 *   ./node_modules/.bin/deno run -A --v8-flags=--expose-gc bench/bench.ts [--quick]
 *   ./node_modules/.bin/bun bench/bench.ts [--quick]
 *   node --expose-gc <outDir>/bench/bench.js [--quick]    (after tsc; `npm run bench` does it all)
 *
 * Ratios are prom-client ÷ theus: above 1, theus is faster (or smaller). A missed target is
 * reported as MISSED; the exit code is non-zero only when a sanity check fails, that is when the
 * two libraries did not record the same values.
 *
 * @module
 */

import client from "prom-client";
import { Counter, generateLatest, Histogram, type HistogramSeries, Registry } from "../mod.ts";
import {
  ARGS,
  detectRuntime,
  fmt,
  median,
  onlyGroups,
  type PairResult,
  type Runtime,
  settle,
  type Side,
  table,
  timeSides,
  type TimingOptions,
  withTicker,
} from "./_harness.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const quick = ARGS.includes("--quick");
// `--only hot,exposition,memory`: run some groups of cases only.
const only = new Set(onlyGroups(["hot", "exposition", "memory"]));
const runtime: Runtime = detectRuntime();

const TIMING: TimingOptions = quick
  ? { roundMs: 15, rounds: 5, warmupRounds: 1 }
  : { roundMs: 40, rounds: 11, warmupRounds: 3 };
const EXPOSITION_ROUNDS = quick ? 3 : 9;
const EXPOSITION_WARMUP = quick ? 1 : 2;
const EXPOSITION_SERIES = 10_000;
const MEMORY_SERIES = quick ? 20_000 : 100_000;
const MAX_GAP_MS = 20;

const LABEL_NAMES = ["method", "status"];
const METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"];
const STATUSES = ["200", "201", "204", "301", "400", "404", "500", "503"];
// 64 observations spread over every default bucket, +Inf included (0.001 to about 11.6).
const OBSERVED = Array.from({ length: 64 }, (_, i) => 0.001 * 1.16 ** i);
// Label values for the large registries, created once and shared by both libraries.
const M100 = Array.from({ length: 100 }, (_, i) => `M${i}`);
const S1000 = Array.from({ length: 1000 }, (_, i) => `S${String(i).padStart(3, "0")}`);

/** One line of the report. */
interface Row {
  case: string;
  theus: string;
  prom: string;
  ratio: number;
  target: string;
  status: "met" | "MISSED" | "-";
}

const rows: Row[] = [];
const failures: string[] = [];

function check(what: string, actual: unknown, expected: unknown): void {
  const same = typeof expected === "number" && typeof actual === "number"
    ? actual === expected || Math.abs(actual - expected) <= 1e-9 * Math.abs(expected)
    : JSON.stringify(actual) === JSON.stringify(expected);
  if (!same) failures.push(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

function ratioRow(name: string, theus: string, prom: string, ratio: number, target?: number): void {
  const status = target === undefined ? "-" : ratio >= target ? "met" : "MISSED";
  rows.push({ case: name, theus, prom, ratio, target: target === undefined ? "-" : `>= ${target}x`, status });
}

// Every prom-client side of a case is reported; the target applies to the fastest of them.
function report(name: string, sides: readonly Side[], result: PairResult, target?: number): void {
  const theus = result.nsPerOp[sides.findIndex((side) => side.lib === "theus")];
  const proms = sides.map((side, i) => ({ side, ns: result.nsPerOp[i] })).filter(({ side }) =>
    side.lib === "prom-client"
  );
  const best = Math.min(...proms.map((p) => p.ns));
  for (const { side, ns } of proms) {
    const label = proms.length > 1 ? `${name} [prom: ${side.label}]` : name;
    ratioRow(label, fmt(theus, "ns"), fmt(ns, "ns"), ns / theus, ns === best ? target : undefined);
  }
}

async function promValue(metric: client.Counter<string>, labels: Record<string, string>): Promise<number> {
  const { values } = await metric.get();
  const found = values.find((v) => Object.keys(labels).every((k) => v.labels[k] === labels[k]));
  return found?.value ?? NaN;
}

// ---------------------------------------------------------------------------------------------
// Hot paths

async function hotPaths(): Promise<void> {
  const reg = new Registry();
  const prom = new client.Registry();
  const theusCounter = (name: string) =>
    new Counter({ name, help: "h", labelNames: LABEL_NAMES, registry: reg });
  const promCounter = (name: string) =>
    new client.Counter({ name, help: "h", labelNames: LABEL_NAMES, registers: [prom] });
  const GET_200 = { method: "GET", status: "200" };

  // Cached child inc().
  {
    const t = theusCounter("cached_total");
    const p1 = promCounter("cached_pos_total");
    const p2 = promCounter("cached_obj_total");
    const child = t.labels({ method: "GET", status: "200" });
    const bound1 = p1.labels("GET", "200");
    const bound2 = p2.labels({ method: "GET", status: "200" });
    const sides: Side[] = [
      {
        lib: "theus",
        label: "child.inc()",
        loop: (n) => {
          for (let i = 0; i < n; i++) child.inc();
          return n;
        },
      },
      {
        lib: "prom-client",
        label: 'labels("GET","200")',
        loop: (n) => {
          for (let i = 0; i < n; i++) bound1.inc();
          return n;
        },
      },
      {
        lib: "prom-client",
        label: "labels({...})",
        loop: (n) => {
          for (let i = 0; i < n; i++) bound2.inc();
          return n;
        },
      },
    ];
    const result = timeSides(sides, TIMING);
    report("cached child inc()", sides, result, 3);
    check("cached inc: theus value", child.get(), result.totalOps);
    check("cached inc: prom-client positional value", await promValue(p1, GET_200), result.totalOps);
    check("cached inc: prom-client object value", await promValue(p2, GET_200), result.totalOps);
  }

  // labels({...}) looked up on every call, over 64 label sets.
  {
    const t = theusCounter("lookup_total");
    const p1 = promCounter("lookup_inc_total");
    const p2 = promCounter("lookup_labels_total");
    const sides: Side[] = [
      {
        lib: "theus",
        label: "labels({..}).inc()",
        loop: (n) => {
          for (let i = 0; i < n; i++) {
            t.labels({ method: METHODS[i & 7], status: STATUSES[(i >> 3) & 7] })
              .inc();
          }
          return n;
        },
      },
      {
        lib: "prom-client",
        label: "inc({..})",
        loop: (n) => {
          for (let i = 0; i < n; i++) p1.inc({ method: METHODS[i & 7], status: STATUSES[(i >> 3) & 7] });
          return n;
        },
      },
      {
        lib: "prom-client",
        label: "labels({..}).inc()",
        loop: (n) => {
          for (let i = 0; i < n; i++) {
            p2.labels({ method: METHODS[i & 7], status: STATUSES[(i >> 3) & 7] })
              .inc();
          }
          return n;
        },
      },
    ];
    const result = timeSides(sides, TIMING);
    report("labels({2 labels}).inc() lookup", sides, result, 1.5);
    const sample = { method: "DELETE", status: "404" };
    const expected = result.totalOps / 64;
    check("lookup: theus value", t.labels(sample).get(), expected);
    check("lookup: prom-client inc({..}) value", await promValue(p1, sample), expected);
    check("lookup: prom-client labels({..}) value", await promValue(p2, sample), expected);
  }

  // Histogram observe() on a cached child, default buckets.
  {
    const t = new Histogram({ name: "cached_seconds", help: "h", labelNames: LABEL_NAMES, registry: reg });
    const p1 = new client.Histogram({
      name: "cached_pos_seconds",
      help: "h",
      labelNames: LABEL_NAMES,
      registers: [prom],
    });
    const p2 = new client.Histogram({
      name: "cached_obj_seconds",
      help: "h",
      labelNames: LABEL_NAMES,
      registers: [prom],
    });
    const child = t.labels({ method: "GET", status: "200" });
    const bound1 = p1.labels("GET", "200");
    const bound2 = p2.labels({ method: "GET", status: "200" });
    const sides: Side[] = [
      {
        lib: "theus",
        label: "child.observe(v)",
        loop: (n) => {
          for (let i = 0; i < n; i++) child.observe(OBSERVED[i & 63]);
          return n;
        },
      },
      {
        lib: "prom-client",
        label: 'labels("GET","200")',
        loop: (n) => {
          for (let i = 0; i < n; i++) bound1.observe(OBSERVED[i & 63]);
          return n;
        },
      },
      {
        lib: "prom-client",
        label: "labels({...})",
        loop: (n) => {
          for (let i = 0; i < n; i++) bound2.observe(OBSERVED[i & 63]);
          return n;
        },
      },
    ];
    const result = timeSides(sides, TIMING);
    report("histogram child observe()", sides, result, 2);
    const families = await reg.collect();
    const series = families.find((f) => f.name === "cached_seconds")!.series[0] as HistogramSeries;
    for (const [name, metric] of [["positional", p1], ["object", p2]] as const) {
      const { values } = await metric.get();
      const of = (sample: string) =>
        values.filter((v) =>
          v.metricName === `cached_${name === "positional" ? "pos" : "obj"}_seconds_${sample}`
        );
      check(`observe: ${name} count`, of("count")[0].value, series.count);
      check(`observe: ${name} sum`, of("sum")[0].value, series.sum);
      check(`observe: ${name} buckets`, of("bucket").map((v) => v.value), series.buckets);
    }
    check("observe: theus count", series.count, result.totalOps);
  }

  // Unlabelled inc().
  {
    const t = new Counter({ name: "plain_total", help: "h", registry: reg });
    const p = new client.Counter({ name: "plain_total", help: "h", registers: [prom] });
    const sides: Side[] = [
      {
        lib: "theus",
        label: "inc()",
        loop: (n) => {
          for (let i = 0; i < n; i++) t.inc();
          return n;
        },
      },
      {
        lib: "prom-client",
        label: "inc()",
        loop: (n) => {
          for (let i = 0; i < n; i++) p.inc();
          return n;
        },
      },
    ];
    const result = timeSides(sides, TIMING);
    report("unlabelled inc()", sides, result);
    check("unlabelled: theus value", t.get(), result.totalOps);
    check("unlabelled: prom-client value", (await p.get()).values[0].value, result.totalOps);
  }
}

// ---------------------------------------------------------------------------------------------
// Exposition of 10k counter + 10k histogram series

// The value of every sample line, keyed by name and sorted labels (le as a number), so that the
// two libraries' texts compare whatever their label order and bound formatting.
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    const head = line.slice(0, space);
    const brace = head.indexOf("{");
    const name = brace < 0 ? head : head.slice(0, brace);
    const labels = brace < 0 ? [] : head.slice(brace + 1, -1).split(",").map((pair) => {
      const [k, v] = pair.split("=");
      return k === "le" ? `le=${Number(JSON.parse(v.replace("+Inf", "Infinity")))}` : pair;
    });
    out.set(`${name}{${labels.sort().join(",")}}`, line.slice(space + 1));
  }
  return out;
}

interface Target {
  name: string;
  generate: () => Promise<string>;
  runs: { ms: number; gap: number }[];
  output: string;
}

async function exposition(): Promise<void> {
  const reg = new Registry();
  const tc = new Counter({
    name: "bench_requests_total",
    help: "Requests",
    labelNames: LABEL_NAMES,
    registry: reg,
  });
  const th = new Histogram({
    name: "bench_request_seconds",
    help: "Latency",
    labelNames: LABEL_NAMES,
    registry: reg,
  });
  const promOmRegistry = new client.Registry<client.OpenMetricsContentType>();
  promOmRegistry.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
  const promRegistries: client.Registry<client.RegistryContentType>[] = [
    new client.Registry(),
    promOmRegistry,
  ];
  const pcs = promRegistries.map((r) =>
    new client.Counter({
      name: "bench_requests_total",
      help: "Requests",
      labelNames: LABEL_NAMES,
      registers: [r],
    })
  );
  const phs = promRegistries.map((r) =>
    new client.Histogram({
      name: "bench_request_seconds",
      help: "Latency",
      labelNames: LABEL_NAMES,
      registers: [r],
    })
  );
  for (let i = 0; i < EXPOSITION_SERIES; i++) {
    const labels = { method: M100[i % 100], status: S1000[Math.floor(i / 100)] };
    const by = (i % 7) + 1;
    const observed = [OBSERVED[i & 63], OBSERVED[(i * 7) & 63], OBSERVED[(i * 13) & 63]];
    const tchild = th.labels(labels);
    tc.labels(labels).inc(by);
    for (const v of observed) tchild.observe(v);
    for (const pc of pcs) pc.inc(labels, by);
    for (const ph of phs) for (const v of observed) ph.observe(labels, v);
  }

  const targets: Target[] = [
    { name: "theus text", generate: () => generateLatest(reg), runs: [], output: "" },
    {
      name: "theus openmetrics",
      generate: () => generateLatest(reg, { format: "openmetrics" }),
      runs: [],
      output: "",
    },
    { name: "prom text", generate: () => promRegistries[0].metrics(), runs: [], output: "" },
    { name: "prom openmetrics", generate: () => promRegistries[1].metrics(), runs: [], output: "" },
  ];
  for (let round = 0; round < EXPOSITION_WARMUP + EXPOSITION_ROUNDS; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of order) {
      runtime.gc?.(); // each library pays for its own garbage, not for the previous run's
      const run = await withTicker(target.generate);
      target.output = run.result;
      if (round >= EXPOSITION_WARMUP) target.runs.push({ ms: run.ms, gap: run.maxGapMs });
    }
  }
  const [theusText, theusOm, promText, promOm] = targets;
  const ms = (t: Target) => median(t.runs.map((r) => r.ms));
  const gap = (t: Target) => Math.max(...t.runs.map((r) => r.gap));
  ratioRow(
    "exposition 20k series, text",
    fmt(ms(theusText), "ms"),
    fmt(ms(promText), "ms"),
    ms(promText) / ms(theusText),
    2,
  );
  ratioRow(
    "exposition 20k series, openmetrics",
    fmt(ms(theusOm), "ms"),
    fmt(ms(promOm), "ms"),
    ms(promOm) / ms(theusOm),
    2,
  );
  for (const [label, t, p] of [["text", theusText, promText], ["openmetrics", theusOm, promOm]] as const) {
    const held = gap(t);
    rows.push({
      case: `exposition ${label}: max event-loop hold`,
      theus: `${fmt(held, "ms")} (p50 ${fmt(median(t.runs.map((r) => r.gap)), "ms")})`,
      prom: fmt(gap(p), "ms"),
      ratio: gap(p) / held,
      target: `< ${MAX_GAP_MS} ms`,
      status: held < MAX_GAP_MS ? "met" : "MISSED",
    });
  }

  // Where theus' hold comes from: collect() reads every series before rendering starts.
  const collectMs: number[] = [];
  for (let i = 0; i < EXPOSITION_ROUNDS; i++) {
    const start = performance.now();
    await reg.collect();
    collectMs.push(performance.now() - start);
  }
  rows.push({
    case: "  of which theus registry.collect()",
    theus: fmt(median(collectMs), "ms"),
    prom: "-",
    ratio: NaN,
    target: "-",
    status: "-",
  });

  // Both texts must hold the same samples with the same values.
  const ours = samples(theusText.output);
  const theirs = samples(promText.output);
  check("exposition: sample lines", ours.size, EXPOSITION_SERIES * 15);
  check("exposition: prom-client sample lines", theirs.size, ours.size);
  let mismatches = 0;
  for (const [key, value] of ours) {
    if (theirs.get(key) !== value && mismatches++ < 3) check(`exposition: ${key}`, value, theirs.get(key));
  }
  check("exposition: openmetrics ends with # EOF", theusOm.output.endsWith("# EOF\n"), true);
  check(
    "exposition: openmetrics samples",
    samples(theusOm.output.replace("# EOF\n", "")).size,
    EXPOSITION_SERIES * 15,
  );
  check(
    "exposition: prom-client openmetrics samples",
    samples(promOm.output.replace("# EOF\n", "")).size,
    EXPOSITION_SERIES * 15,
  );
}

// ---------------------------------------------------------------------------------------------
// Heap per labelled series

// Heap growth per series while the registry is built, and the heap released when it is dropped.
// The two agree unless unrelated garbage was freed (or a conservative GC kept the registry)
// during the measurement; such runs are discarded.
function heapPerSeries(build: (n: number) => object): { grew: number; released: number } {
  settle(runtime);
  const before = runtime.heapUsed();
  let kept: object | undefined = build(MEMORY_SERIES);
  settle(runtime);
  const after = runtime.heapUsed();
  if (typeof kept !== "object") throw new Error("unreachable"); // live while the heap is read
  kept = undefined;
  settle(runtime);
  const dropped = runtime.heapUsed();
  return { grew: (after - before) / MEMORY_SERIES, released: (after - dropped) / MEMORY_SERIES };
}

// The smallest consistent figure of a few runs; NaN when no run was consistent.
function bytesPerSeries(build: (n: number) => object): number {
  const good: number[] = [];
  for (let run = 0; run < 6 && good.length < 2; run++) {
    const { grew, released } = heapPerSeries(build);
    if (grew > 0 && Math.abs(grew - released) <= 0.1 * grew) good.push(grew);
  }
  return good.length > 0 ? Math.min(...good) : NaN;
}

function labelsOf(i: number): { method: string; status: string } {
  return { method: M100[i % 100], status: S1000[Math.floor(i / 100) % 1000] };
}

function memory(): void {
  const kinds = ["counter", "histogram"] as const;
  if (runtime.gc === undefined) {
    for (const kind of kinds) {
      rows.push({
        case: `heap per ${kind} series`,
        theus: "n/a",
        prom: "n/a",
        ratio: NaN,
        target: "no gc: run with --expose-gc",
        status: "-",
      });
    }
    return;
  }
  const builders = {
    counter: {
      theus: (n: number) => {
        const registry = new Registry();
        const c = new Counter({ name: "mem_total", help: "h", labelNames: LABEL_NAMES, registry });
        for (let i = 0; i < n; i++) c.labels(labelsOf(i)).inc();
        return registry;
      },
      prom: (n: number) => {
        const registry = new client.Registry();
        const c = new client.Counter({
          name: "mem_total",
          help: "h",
          labelNames: LABEL_NAMES,
          registers: [registry],
        });
        for (let i = 0; i < n; i++) c.inc(labelsOf(i));
        return registry;
      },
    },
    histogram: {
      theus: (n: number) => {
        const registry = new Registry();
        const h = new Histogram({ name: "mem_seconds", help: "h", labelNames: LABEL_NAMES, registry });
        for (let i = 0; i < n; i++) h.labels(labelsOf(i)).observe(0.3);
        return registry;
      },
      prom: (n: number) => {
        const registry = new client.Registry();
        const h = new client.Histogram({
          name: "mem_seconds",
          help: "h",
          labelNames: LABEL_NAMES,
          registers: [registry],
        });
        for (let i = 0; i < n; i++) h.observe(labelsOf(i), 0.3);
        return registry;
      },
    },
  };
  for (const kind of kinds) {
    const theus = bytesPerSeries(builders[kind].theus);
    const prom = bytesPerSeries(builders[kind].prom);
    if (Number.isNaN(theus) || Number.isNaN(prom)) {
      failures.push(`heap per ${kind} series: no consistent measurement`);
    }
    ratioRow(
      `heap per ${kind} series (N=${MEMORY_SERIES})`,
      fmt(theus, "B"),
      fmt(prom, "B"),
      prom / theus,
      kind === "counter" ? 1 : undefined,
    );
  }
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
console.log(`theus vs prom-client — ${runtime.version}${quick ? " — quick" : ""}`);
// Memory first, while the heap holds nothing but the benchmark itself.
if (only.has("memory")) memory();
if (only.has("hot")) await hotPaths();
if (only.has("exposition")) await exposition();

const header = ["case", "theus", "prom-client", "ratio", "target", "status"];
const body = rows.map((
  r,
) => [
  r.case,
  r.theus,
  r.prom,
  Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}x` : "n/a",
  r.target,
  r.status,
]);
console.log(table([header, ...body]));
console.log(
  `ratio = prom-client / theus (> 1: theus faster or smaller); ${
    ((performance.now() - started) / 1000).toFixed(1)
  } s`,
);
if (failures.length > 0) {
  console.log(`SANITY CHECK FAILED (${failures.length}):\n  ${failures.join("\n  ")}`);
  if (g.process !== undefined) g.process.exitCode = 1;
} else {
  console.log("sanity: both libraries recorded the same values");
}
console.log(
  `BENCH_JSON ${JSON.stringify({ runtime: runtime.name, version: runtime.version, quick, rows, failures })}`,
);
if (failures.length > 0 && g.Deno !== undefined) g.Deno.exit(1);

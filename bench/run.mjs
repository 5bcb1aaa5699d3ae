// `npm run bench`: builds the Node variant of bench/bench.ts, bench/remote.ts, bench/shared.ts,
// bench/runtime.ts, bench/http.ts, bench/quantiles.ts and bench/scale.ts, runs them on Node, Bun
// and Deno in turn (per runtime: the prom-client comparison, then the remote backends against a
// redis-server the benchmark starts, then the shared memory backend against the memory backend,
// then the runtime metrics, then the HTTP request metrics, then summary quantiles and native
// histograms; and, only when asked for, the Redis backend at fleet scale), prints each table,
// then one summary line per case and runtime.
//
//   node bench/run.mjs [--runtime node|bun|deno]...
//                      [--only hot,exposition,memory,remote,shared,runtime,http,quantiles,scale]
//                      [--quick]
//
// `--only` groups: hot, exposition, memory (bench.ts, theus vs prom-client); remote, or redis
// and upstash separately (remote.ts); shared (shared.ts, shareMemory() vs the memory backend,
// worker threads included); runtime (runtime.ts, collectDefaultMetrics(): a scrape vs
// prom-client's, and a hello-world server's throughput with and without the monitors); http
// (http.ts, the cost per request of instrument() and of theus' Hono middleware, against
// @hono/prometheus, in one process without a network); quantiles (quantiles.ts, observe() of a
// summary with quantiles and of a native histogram against a classic histogram and prom-client's
// Summary, heap per series, and bytes per flush and Redis memory per series against a
// redis-server it starts); scale (scale.ts, the Redis backend with 10k, 100k and 1M series of one
// counter: flush and collection time, the longest PING wait of another Redis connection, the
// longest event-loop hold, whether the flush landed; prom-client and the memory backend as a
// reference). `scale` runs only when named (`--only scale`), never in a run of everything: its
// 1M series take minutes per runtime (and its node and deno processes get a 4 GB heap); with
// `--quick` it leaves 1M out. Missed targets are reported, never fatal:
// the exit code is non-zero only when a runtime fails to run a benchmark or a sanity check fails.
// How each runtime is built and run is in bench/_runner.mjs, shared with bench/compare.mjs (base vs head).

import {
  buildNode,
  commandsFor,
  ensureDependencies,
  environment,
  list,
  load,
  parseArgs,
  runBench,
  selectGroups,
  selectRuntimes,
} from "./_runner.mjs";

const { values, flags } = parseArgs(process.argv.slice(2), {
  options: ["runtime", "only"],
  flags: ["quick"],
  expected: "--runtime <name>, --only <groups> or --quick",
});
const quick = flags.has("quick");
const runtimes = selectRuntimes(list(values.runtime));
const groups = selectGroups(list(values.only));
const {
  benchGroups,
  remoteGroups,
  sharedGroups,
  runtimeGroups,
  httpGroups,
  quantilesGroups,
  scaleGroups,
} = groups;

ensureDependencies();

const { machine, runtimes: versions } = environment();
console.log(`theus bench, ${new Date().toISOString()}${quick ? ", quick" : ""}`);
console.log(machine);
console.log(versions);

if (runtimes.includes("node")) {
  console.log("\nbuilding the Node variant: tsc -p bench/tsconfig.json (into .tmp/bench-dist)");
  buildNode();
}

const commands = Object.fromEntries(runtimes.map((name) => [name, commandsFor(name, { quick, groups })]));
const results = [];
const remoteResults = [];
const sharedResults = [];
const runtimeResults = [];
const httpResults = [];
const quantilesResults = [];
const scaleResults = [];
for (const name of runtimes) {
  if (benchGroups.length > 0) results.push(await runBench(name, ...commands[name].bench));
  if (remoteGroups.length > 0) {
    remoteResults.push(await runBench(`${name} remote`, ...commands[name].remote));
  }
  if (sharedGroups.length > 0) {
    sharedResults.push(await runBench(`${name} shared`, ...commands[name].shared));
  }
  if (runtimeGroups.length > 0) {
    runtimeResults.push(await runBench(`${name} runtime`, ...commands[name].runtime));
  }
  if (httpGroups.length > 0) httpResults.push(await runBench(`${name} http`, ...commands[name].http));
  if (quantilesGroups.length > 0) {
    quantilesResults.push(await runBench(`${name} quantiles`, ...commands[name].quantiles));
  }
  if (scaleGroups.length > 0) scaleResults.push(await runBench(`${name} scale`, ...commands[name].scale));
}

const lines = [];
let broken = false;
// A runtime's rows, or a line saying why there are none.
function rowsOf({ name, code, report }, header) {
  if (report !== undefined && code === 0) return report.rows;
  broken = true;
  const why = report === undefined ? "did not finish" : "sanity check failed";
  lines.push([name, why, ...header.slice(2, -1).map(() => ""), `exit ${code}`]);
  return report?.rows ?? [];
}
function print(header) {
  const widths = header.map((_, col) => Math.max(...[header, ...lines].map((line) => line[col].length)));
  for (const line of [header, ...lines]) {
    console.log(line.map((cell, col) => cell.padEnd(widths[col])).join("  ").trimEnd());
  }
  lines.length = 0;
}
const ratioText = (ratio) => Number.isFinite(ratio) ? `${ratio.toFixed(ratio >= 100 ? 0 : 2)}x` : "-";

if (results.length > 0) {
  console.log("\n=== summary (ratio = prom-client / theus; > 1: theus faster or smaller)\n");
  const header = ["runtime", "case", "theus", "prom-client", "ratio", "target", "status"];
  for (const result of results) {
    for (const row of rowsOf(result, header)) {
      if (!Number.isFinite(row.ratio) && row.prom === "-") continue; // a breakdown, not a comparison
      if (row.target === "-" && row.case.includes("[prom:")) continue; // the slower prom-client variant
      const label = row.case.replace(/ \[prom: .*\]$/, "");
      lines.push([result.name, label, row.theus, row.prom, ratioText(row.ratio), row.target, row.status]);
    }
  }
  print(header);
}
// A summary of the runs of one benchmark whose rows compare theus with a baseline.
function printBaselineSummary(title, runs, suffix) {
  if (runs.length === 0) return;
  console.log(`\n=== ${title}\n`);
  const header = ["runtime", "case", "theus", "baseline", "ratio", "target", "status"];
  for (const result of runs) {
    for (const row of rowsOf(result, header)) {
      if (row.target === "-" && row.case.startsWith("  ")) continue; // a breakdown
      const name = result.name.replace(suffix, "");
      lines.push([name, row.case, row.theus, row.baseline, ratioText(row.ratio), row.target, row.status]);
    }
  }
  print(header);
}
printBaselineSummary(
  "remote backends (ratio: redis hot = redis / memory, lower is better; " +
    "others = times faster than the baseline, higher is better)",
  remoteResults,
  " remote",
);
printBaselineSummary(
  "shared memory backend (ratio = shared / memory, or 5 threads / 1 thread; lower is better)",
  sharedResults,
  " shared",
);
printBaselineSummary(
  "runtime metrics (ratio: scrapes = theus / prom-client, lower is better; server = monitors on / " +
    "off, requests/s higher is better, CPU time lower is better)",
  runtimeResults,
  " runtime",
);
printBaselineSummary(
  "HTTP request metrics (ns per request, in one process; ratio: theus overhead / @hono/prometheus " +
    "overhead, lower is better)",
  httpResults,
  " http",
);
printBaselineSummary(
  'summary quantiles and native histograms (ratio: "÷ classic" rows = theus variant / theus classic ' +
    'histogram, lower is better; "vs prom-client" rows = prom-client / theus, higher is better)',
  quantilesResults,
  " quantiles",
);
printBaselineSummary(
  "the Redis backend at fleet scale (times and waits: lower is better; PING wait = another Redis " +
    'connection\'s longest wait; "reference" rows: no Redis, ratio = prom-client / theus memory backend)',
  scaleResults,
  " scale",
);
const everything = [
  ...results,
  ...remoteResults,
  ...sharedResults,
  ...runtimeResults,
  ...httpResults,
  ...quantilesResults,
  ...scaleResults,
];
const missed =
  everything.flatMap((r) => r.report?.rows.filter((row) => row.status === "MISSED") ?? []).length;
console.log(`\nload average at the end: ${load()} (timings mean little on a busy machine)`);
console.log(
  `${missed} missed target(s) across ${runtimes.length} runtime(s)${broken ? "; FAILURES above" : ""}`,
);
process.exitCode = broken ? 1 : 0;

// `npm run bench`: builds the Node variant of bench/bench.ts and bench/remote.ts, runs them on
// Node, Bun and Deno in turn (per runtime: the prom-client comparison, then the remote
// backends against a redis-server the benchmark starts), prints each table, then one summary
// line per case and runtime.
//
//   node bench/run.mjs [--runtime node|bun|deno]... [--only hot,exposition,memory,remote] [--quick]
//
// `--only` groups: hot, exposition, memory (bench.ts, theus vs prom-client); remote, or redis
// and upstash separately (remote.ts). Missed targets are reported, never fatal: the exit code is
// non-zero only when a runtime fails to run a benchmark or a sanity check fails.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const bin = (name) => join(root, "node_modules", ".bin", name);
const OUT_DIR = join(root, ".tmp", "bench-dist");

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const ALL = ["node", "bun", "deno"];
const BENCH_GROUPS = ["memory", "hot", "exposition"];
const REMOTE_GROUPS = ["remote", "redis", "upstash"];
const chosen = [];
const groups = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--runtime") chosen.push(...(args[++i] ?? "").split(","));
  else if (args[i].startsWith("--runtime=")) chosen.push(...args[i].slice(10).split(","));
  else if (args[i] === "--only") groups.push(...(args[++i] ?? "").split(","));
  else if (args[i].startsWith("--only=")) groups.push(...args[i].slice(7).split(","));
  else if (args[i] !== "--quick") {
    fail(`Unknown argument "${args[i]}": expected --runtime <name>, --only <groups> or --quick`);
  }
}
const runtimes = chosen.length > 0 ? chosen : ALL;
for (const name of runtimes) {
  if (!ALL.includes(name)) fail(`Unknown runtime "${name}": expected one of ${ALL.join(", ")}`);
}
for (const group of groups) {
  if (![...BENCH_GROUPS, ...REMOTE_GROUPS].includes(group)) {
    fail(`Unknown group "${group}": expected some of ${[...BENCH_GROUPS, ...REMOTE_GROUPS].join(", ")}`);
  }
}
const all = groups.length === 0;
const benchGroups = all ? BENCH_GROUPS : BENCH_GROUPS.filter((g) => groups.includes(g));
const remoteGroups = all ? ["remote"] : REMOTE_GROUPS.filter((g) => groups.includes(g));

function fail(message) {
  console.error(`bench: ${message}`);
  process.exit(2);
}

function run(command, argv) {
  const result = spawnSync(command, argv, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    fail(`${[command, ...argv].join(" ")} exited with ${result.status ?? result.signal}`);
  }
}

function version(command, argv) {
  const result = spawnSync(command, argv, { cwd: root, encoding: "utf8" });
  return result.status === 0 ? result.stdout.split("\n")[0].trim() : "unavailable";
}

// Runs one runtime, echoing its output (without the machine-readable line) as it comes.
function bench(name, command, argv) {
  return new Promise((resolve) => {
    console.log(`\n=== ${name}: ${[command, ...argv].map((a) => a.replace(root + "/", "")).join(" ")}\n`);
    const child = spawn(command, argv, { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
    let buffered = "";
    let json;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.startsWith("BENCH_JSON ")) json = JSON.parse(line.slice(11));
        else console.log(line);
      }
    });
    child.on("close", (code, signal) => resolve({ name, code: code ?? signal, report: json }));
  });
}

if (!existsSync(bin("tsc")) || !existsSync(join(root, "node_modules", "prom-client"))) run("npm", ["ci"]);

const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpus()[0]?.model;
const promVersion =
  JSON.parse(readFileSync(join(root, "node_modules", "prom-client", "package.json"), "utf8")).version;
console.log(`theus bench, ${new Date().toISOString()}${quick ? ", quick" : ""}`);
const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");
console.log(`machine: ${cpus().length} CPUs, ${cpu}; load average ${load()}`);
console.log(
  `runtimes: node ${process.version}, bun ${version(bin("bun"), ["--version"])}, ` +
    `${version(bin("deno"), ["--version"])}; prom-client ${promVersion}`,
);

if (runtimes.includes("node")) {
  console.log("\nbuilding the Node variant: tsc -p bench/tsconfig.json (into .tmp/bench-dist)");
  run(process.execPath, [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    join(root, "bench", "tsconfig.json"),
  ]);
}

const q = quick ? ["--quick"] : [];
const benchExtra = [...q, ...(all ? [] : ["--only", benchGroups.join(",")])];
const remoteExtra = [...q, ...(all ? [] : ["--only", remoteGroups.join(",")])];
const commands = {
  node: [process.execPath, ["--expose-gc", join(OUT_DIR, "bench", "bench.js"), ...benchExtra]],
  bun: [bin("bun"), ["bench/bench.ts", ...benchExtra]],
  deno: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/bench.ts", ...benchExtra]],
};
const remoteCommands = {
  node: [process.execPath, [join(OUT_DIR, "bench", "remote.js"), ...remoteExtra]],
  bun: [bin("bun"), ["bench/remote.ts", ...remoteExtra]],
  deno: [bin("deno"), ["run", "-A", "bench/remote.ts", ...remoteExtra]],
};
const results = [];
const remoteResults = [];
for (const name of runtimes) {
  if (benchGroups.length > 0) results.push(await bench(name, ...commands[name]));
  if (remoteGroups.length > 0) remoteResults.push(await bench(`${name} remote`, ...remoteCommands[name]));
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
if (remoteResults.length > 0) {
  console.log(
    "\n=== remote backends (ratio: redis hot = redis / memory, lower is better; " +
      "others = times faster than the baseline, higher is better)\n",
  );
  const header = ["runtime", "case", "theus", "baseline", "ratio", "target", "status"];
  for (const result of remoteResults) {
    for (const row of rowsOf(result, header)) {
      if (row.target === "-" && row.case.startsWith("  ")) continue; // a breakdown
      lines.push([
        result.name.replace(" remote", ""),
        row.case,
        row.theus,
        row.baseline,
        ratioText(row.ratio),
        row.target,
        row.status,
      ]);
    }
  }
  print(header);
}
const everything = [...results, ...remoteResults];
const missed =
  everything.flatMap((r) => r.report?.rows.filter((row) => row.status === "MISSED") ?? []).length;
console.log(`\nload average at the end: ${load()} (timings mean little on a busy machine)`);
console.log(
  `${missed} missed target(s) across ${runtimes.length} runtime(s)${broken ? "; FAILURES above" : ""}`,
);
process.exitCode = broken ? 1 : 0;

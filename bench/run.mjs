// `npm run bench`: builds the Node variant of bench/bench.ts, runs it on Node, Bun and Deno in
// turn, prints each runtime's table, then one summary line per case and runtime.
//
//   node bench/run.mjs [--runtime node|bun|deno]... [--only hot,exposition,memory] [--quick]
//
// Missed targets are reported, never fatal: the exit code is non-zero only when a runtime
// fails to run the benchmark or a sanity check fails.

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
const chosen = [];
const passed = []; // handed to bench.ts: --only hot,exposition,memory
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--runtime") chosen.push(...(args[++i] ?? "").split(","));
  else if (args[i].startsWith("--runtime=")) chosen.push(...args[i].slice(10).split(","));
  else if (args[i] === "--only") passed.push(args[i], args[++i] ?? "");
  else if (args[i].startsWith("--only=")) passed.push(args[i]);
  else if (args[i] !== "--quick") {
    fail(`Unknown argument "${args[i]}": expected --runtime <name>, --only <groups> or --quick`);
  }
}
const runtimes = chosen.length > 0 ? chosen : ALL;
for (const name of runtimes) {
  if (!ALL.includes(name)) fail(`Unknown runtime "${name}": expected one of ${ALL.join(", ")}`);
}

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

const extra = [...(quick ? ["--quick"] : []), ...passed];
const commands = {
  node: [process.execPath, ["--expose-gc", join(OUT_DIR, "bench", "bench.js"), ...extra]],
  bun: [bin("bun"), ["bench/bench.ts", ...extra]],
  deno: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/bench.ts", ...extra]],
};
const results = [];
for (const name of runtimes) results.push(await bench(name, ...commands[name]));

console.log("\n=== summary (ratio = prom-client / theus; > 1: theus faster or smaller)\n");
const lines = [["runtime", "case", "theus", "prom-client", "ratio", "target", "status"]];
let broken = false;
for (const { name, code, report } of results) {
  if (report === undefined || code !== 0) {
    broken = true;
    lines.push([
      name,
      report === undefined ? "did not finish" : "sanity check failed",
      "",
      "",
      "",
      "",
      `exit ${code}`,
    ]);
    if (report === undefined) continue;
  }
  for (const row of report.rows) {
    if (!Number.isFinite(row.ratio) && row.prom === "-") continue; // a breakdown, not a comparison
    if (row.target === "-" && row.case.includes("[prom:")) continue; // the slower prom-client variant
    const ratio = Number.isFinite(row.ratio) ? `${row.ratio.toFixed(2)}x` : "n/a";
    const label = row.case.replace(/ \[prom: .*\]$/, "");
    lines.push([name, label, row.theus, row.prom, ratio, row.target, row.status]);
  }
}
const widths = lines[0].map((_, col) => Math.max(...lines.map((line) => line[col].length)));
for (const line of lines) console.log(line.map((cell, col) => cell.padEnd(widths[col])).join("  ").trimEnd());
const missed = results.flatMap((r) => r.report?.rows.filter((row) => row.status === "MISSED") ?? []).length;
console.log(`\nload average at the end: ${load()} (timings mean little on a busy machine)`);
console.log(
  `${missed} missed target(s) across ${results.length} runtime(s)${broken ? "; FAILURES above" : ""}`,
);
process.exitCode = broken ? 1 : 0;

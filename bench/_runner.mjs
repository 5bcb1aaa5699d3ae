// What bench/run.mjs and bench/compare.mjs share: the argument parsing, the runtimes and groups,
// the Node build (tsc), the exact command that runs bench/bench.ts, bench/remote.ts,
// bench/shared.ts, bench/runtime.ts, bench/http.ts, bench/quantiles.ts and bench/scale.ts on each
// runtime from a given tree, and the runner that reads a benchmark's `BENCH_JSON` line.
//
// A tree is a directory holding the repository's files (the working tree, or a commit
// materialised by compare.mjs, with node_modules linked to the repository's own). The runtimes
// and tsc always come from the repository's node_modules.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";

export const root = dirname(dirname(fileURLToPath(import.meta.url)));
export const bin = (name) => join(root, "node_modules", ".bin", name);
/** Where `npm run bench` builds the Node variant (bench/tsconfig.json's own outDir). */
export const OUT_DIR = join(root, ".tmp", "bench-dist");

export const RUNTIMES = ["node", "bun", "deno"];
export const BENCH_GROUPS = ["memory", "hot", "exposition"];
export const REMOTE_GROUPS = ["remote", "redis", "upstash"];
/** bench/shared.ts: one group, run whole. */
export const SHARED_GROUPS = ["shared"];
/** bench/runtime.ts: one group, run whole. */
export const RUNTIME_GROUPS = ["runtime"];
/** bench/http.ts: one group, run whole. */
export const HTTP_GROUPS = ["http"];
/** bench/quantiles.ts: one group, run whole. */
export const QUANTILES_GROUPS = ["quantiles"];
/**
 * bench/scale.ts: one group, run whole, and only when asked for (`--only scale`): with 1M series
 * it takes minutes per runtime, more with a version whose flushes time out at that size.
 */
export const SCALE_GROUPS = ["scale"];
/** The heap bench/scale.ts needs for 1M series (node and deno; bun sizes its heap itself), MB. */
export const SCALE_HEAP_MB = 4096;

let tag = "bench";
/** The prefix of error messages: `bench: …`, `compare: …`. */
export function setTag(name) {
  tag = name;
}

/** Prints a usage error and exits with 2. */
export function fail(message) {
  console.error(`${tag}: ${message}`);
  process.exit(2);
}

/**
 * `--name value`, `--name=value` (every occurrence kept, in order) and bare `--flag`s; anything
 * else is an error that names what was expected.
 */
export function parseArgs(args, { options, flags, expected }) {
  const values = Object.fromEntries(options.map((name) => [name, []]));
  const set = new Set();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf("=");
    const name = arg.startsWith("--") ? arg.slice(2, eq < 0 ? undefined : eq) : undefined;
    if (options.includes(name)) values[name].push(eq < 0 ? args[++i] ?? "" : arg.slice(eq + 1));
    else if (flags.includes(name) && eq < 0) set.add(name);
    else fail(`Unknown argument "${arg}": expected ${expected}`);
  }
  return { values, flags: set };
}

/** Comma-separated lists, given once or more. */
export const list = (values) => values.flatMap((value) => value.split(","));

/** The runtimes asked for (all by default), checked. */
export function selectRuntimes(chosen) {
  const runtimes = chosen.length > 0 ? chosen : RUNTIMES;
  for (const name of runtimes) {
    if (!RUNTIMES.includes(name)) fail(`Unknown runtime "${name}": expected one of ${RUNTIMES.join(", ")}`);
  }
  return runtimes;
}

/**
 * The `--only` groups, checked: which bench.ts and which remote.ts groups run, and whether
 * shared.ts, runtime.ts, http.ts and quantiles.ts do (all by default), and scale.ts (only when
 * named).
 */
export function selectGroups(groups) {
  const known = [
    ...BENCH_GROUPS,
    ...REMOTE_GROUPS,
    ...SHARED_GROUPS,
    ...RUNTIME_GROUPS,
    ...HTTP_GROUPS,
    ...QUANTILES_GROUPS,
    ...SCALE_GROUPS,
  ];
  for (const group of groups) {
    if (!known.includes(group)) fail(`Unknown group "${group}": expected some of ${known.join(", ")}`);
  }
  const all = groups.length === 0;
  return {
    all,
    benchGroups: all ? BENCH_GROUPS : BENCH_GROUPS.filter((g) => groups.includes(g)),
    remoteGroups: all ? ["remote"] : REMOTE_GROUPS.filter((g) => groups.includes(g)),
    sharedGroups: all ? SHARED_GROUPS : SHARED_GROUPS.filter((g) => groups.includes(g)),
    runtimeGroups: all ? RUNTIME_GROUPS : RUNTIME_GROUPS.filter((g) => groups.includes(g)),
    httpGroups: all ? HTTP_GROUPS : HTTP_GROUPS.filter((g) => groups.includes(g)),
    quantilesGroups: all ? QUANTILES_GROUPS : QUANTILES_GROUPS.filter((g) => groups.includes(g)),
    // Not in a run of everything: named only.
    scaleGroups: SCALE_GROUPS.filter((g) => groups.includes(g)),
  };
}

/**
 * Runs a command to its end with the output shown; a failure is fatal (`check`, the default)
 * or returned.
 */
export function run(command, argv, { cwd = root, check = true, stdio = "inherit" } = {}) {
  const result = spawnSync(command, argv, { cwd, stdio, encoding: "utf8" });
  if (check && result.status !== 0) {
    fail(`${[command, ...argv].join(" ")} exited with ${result.status ?? result.signal}`);
  }
  return result;
}

export function version(command, argv) {
  const result = spawnSync(command, argv, { cwd: root, encoding: "utf8" });
  return result.status === 0 ? result.stdout.split("\n")[0].trim() : "unavailable";
}

/** Installs the dependencies when tsc or prom-client is missing. */
export function ensureDependencies() {
  if (!existsSync(bin("tsc")) || !existsSync(join(root, "node_modules", "prom-client"))) run("npm", ["ci"]);
}

export const load = () => loadavg().map((l) => l.toFixed(2)).join(" ");

/** The `machine:` and `runtimes:` lines of a report's header. */
export function environment() {
  const cpu = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m)?.[1] ??
    cpus()[0]?.model;
  const promVersion =
    JSON.parse(readFileSync(join(root, "node_modules", "prom-client", "package.json"), "utf8")).version;
  return {
    machine: `machine: ${cpus().length} CPUs, ${cpu}; load average ${load()}`,
    runtimes: `runtimes: node ${process.version}, bun ${version(bin("bun"), ["--version"])}, ` +
      `${version(bin("deno"), ["--version"])}; prom-client ${promVersion}`,
  };
}

/**
 * Builds a tree's Node variant of bench/bench.ts, bench/remote.ts, bench/shared.ts,
 * bench/runtime.ts, bench/http.ts, bench/quantiles.ts, bench/scale.ts and its probe (those its
 * bench/tsconfig.json lists)
 * with that tsconfig into `outDir`. Options as for {@link run}.
 */
export function buildNode({ tree = root, outDir = OUT_DIR, ...options } = {}) {
  return run(process.execPath, [
    join(root, "node_modules", "typescript", "bin", "tsc"),
    "-p",
    join(tree, "bench", "tsconfig.json"),
    "--outDir",
    outDir,
  ], { cwd: tree, ...options });
}

/**
 * The command lines that run a tree's bench/bench.ts, bench/remote.ts, bench/shared.ts,
 * bench/runtime.ts, bench/http.ts, bench/quantiles.ts and bench/scale.ts on a runtime (in the
 * tree's directory; Node runs the build in `outDir`): `{ bench: [command, argv], remote: …,
 * shared: …, runtime: …, http: …, quantiles: …, scale: … }`. shared.ts runs whole (its only
 * group), with a GC to measure the heap; runtime.ts and http.ts run whole; quantiles.ts runs
 * whole, with a GC to measure the heap; scale.ts runs whole, with a GC (before each timed
 * operation) and a heap of SCALE_HEAP_MB for 1M series (its probe, a child on the same runtime,
 * needs neither).
 */
export function commandsFor(runtime, { outDir = OUT_DIR, quick, groups }) {
  const q = quick ? ["--quick"] : [];
  const benchExtra = [...q, ...(groups.all ? [] : ["--only", groups.benchGroups.join(",")])];
  const remoteExtra = [...q, ...(groups.all ? [] : ["--only", groups.remoteGroups.join(",")])];
  switch (runtime) {
    case "node":
      return {
        bench: [process.execPath, ["--expose-gc", join(outDir, "bench", "bench.js"), ...benchExtra]],
        remote: [process.execPath, [join(outDir, "bench", "remote.js"), ...remoteExtra]],
        shared: [process.execPath, ["--expose-gc", join(outDir, "bench", "shared.js"), ...q]],
        runtime: [process.execPath, [join(outDir, "bench", "runtime.js"), ...q]],
        http: [process.execPath, [join(outDir, "bench", "http.js"), ...q]],
        quantiles: [process.execPath, ["--expose-gc", join(outDir, "bench", "quantiles.js"), ...q]],
        scale: [
          process.execPath,
          ["--expose-gc", `--max-old-space-size=${SCALE_HEAP_MB}`, join(outDir, "bench", "scale.js"), ...q],
        ],
      };
    case "bun":
      return {
        bench: [bin("bun"), ["bench/bench.ts", ...benchExtra]],
        remote: [bin("bun"), ["bench/remote.ts", ...remoteExtra]],
        shared: [bin("bun"), ["bench/shared.ts", ...q]],
        runtime: [bin("bun"), ["bench/runtime.ts", ...q]],
        http: [bin("bun"), ["bench/http.ts", ...q]],
        quantiles: [bin("bun"), ["bench/quantiles.ts", ...q]],
        scale: [bin("bun"), ["bench/scale.ts", ...q]],
      };
    case "deno":
      return {
        bench: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/bench.ts", ...benchExtra]],
        remote: [bin("deno"), ["run", "-A", "bench/remote.ts", ...remoteExtra]],
        shared: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/shared.ts", ...q]],
        runtime: [bin("deno"), ["run", "-A", "bench/runtime.ts", ...q]],
        http: [bin("deno"), ["run", "-A", "bench/http.ts", ...q]],
        quantiles: [bin("deno"), ["run", "-A", "--v8-flags=--expose-gc", "bench/quantiles.ts", ...q]],
        scale: [
          bin("deno"),
          [
            "run",
            "-A",
            `--v8-flags=--expose-gc,--max-old-space-size=${SCALE_HEAP_MB}`,
            "bench/scale.ts",
            ...q,
          ],
        ],
      };
  }
  throw new Error(`unknown runtime ${runtime}`);
}

/** A command line as shown: paths inside the repository relative to it. */
export const display = (command, argv) => [command, ...argv].map((a) => a.replace(root + "/", "")).join(" ");

/**
 * Runs one benchmark in `cwd` and resolves to `{ name, code, report, output }`: its exit code
 * (or signal), the parsed `BENCH_JSON` line, and every other line of its output. With `echo`
 * (the default) a heading and the output are printed as they come and stderr is inherited;
 * without, both stay in `output`. `onSpawn` receives the child process.
 */
export function runBench(name, command, argv, { cwd = root, echo = true, onSpawn } = {}) {
  return new Promise((resolve) => {
    if (echo) {
      const where = cwd === root ? "" : ` (in ${cwd.replace(root + "/", "")})`;
      console.log(`\n=== ${name}: ${display(command, argv)}${where}\n`);
    }
    const child = spawn(command, argv, { cwd, stdio: ["ignore", "pipe", echo ? "inherit" : "pipe"] });
    onSpawn?.(child);
    const output = [];
    let json;
    const lines = (stream, onLine) => {
      let buffered = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        buffered += chunk;
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          onLine(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
      });
    };
    lines(child.stdout, (line) => {
      if (line.startsWith("BENCH_JSON ")) json = JSON.parse(line.slice(11));
      else {
        output.push(line);
        if (echo) console.log(line);
      }
    });
    if (!echo) lines(child.stderr, (line) => output.push(line));
    child.on("error", (error) => output.push(String(error)));
    child.on("close", (code, signal) => resolve({ name, code: code ?? signal, report: json, output }));
  });
}

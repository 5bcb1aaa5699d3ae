// `node bench/compare.mjs --base <ref>`: the benchmarks of two versions of the code in one run,
// as a change to a hot path, the flush or the exposition needs (no case may get slower by more
// than 10 %). Prints, per runtime, every case of both versions side by side.
//
//   node bench/compare.mjs --base <git-ref> [--head <git-ref>] [--runtime node,bun,deno]
//                          [--only hot,exposition,memory,remote,shared,runtime,http,quantiles,
//                                  scale]
//                          [--pairs N]
//                          [--quick] [--verbose]
//
// The base ref (and the head ref, if given; otherwise the head is the working tree, uncommitted
// changes included) is extracted with `git archive` into .tmp/compare-*/, with node_modules
// linked to the repository's own. Per runtime, each tree runs its own bench/bench.ts (and
// bench/remote.ts for the remote groups, bench/shared.ts for the shared group, bench/runtime.ts
// for the runtime group, bench/http.ts for the http group, bench/quantiles.ts for the quantiles
// group, bench/scale.ts for the scale group, which runs only when named) exactly as `npm run bench` does
// (bench/_runner.mjs; Node: tsc per tree into its own out dir), alternately: base, head, base, head, … `--pairs` times (3 by default).
// `--runtime`, `--only` and `--quick` are those of bench/run.mjs; `--verbose` shows every run's
// own output instead of one line per run. A tree without one of these files (a base older than
// a benchmark) does not run it: that benchmark's cases are shown for the other tree only. But
// for the scale group: bench/scale.ts uses only the library's public API (mod.ts, and
// RedisBackend of backends/redis.ts; nothing of backends/_remote/, whose internals differ between
// versions), so a base without it runs the head's copy against its own library. Into a
// materialised tree without bench/scale.ts, compare copies the other tree's bench/scale.ts and
// bench/_scale_probe.ts (and bench/_harness.ts and bench/_report.ts, only where missing), and adds
// the first two to that tree's bench/tsconfig.json for the Node build; the header says so.
//
// Compared: the theus figure of every row of the `BENCH_JSON` lines (the median over the pairs
// for each tree). Lower is better for times (ns, µs, ms, s), heap (B) and counts (round trips,
// requests); higher for rates (/s). A row worse by more than 10 % is flagged SLOWER >10% (times,
// rates), LARGER >10% (heap) or MORE >10% (counts). Cases found in one tree only are listed.
// A flag is a finding, not an error: the exit code is non-zero only when a benchmark failed to
// run (or a sanity check failed). The temporary trees are removed at the end, also on Ctrl-C.
// The output starts with the command line and the two commit ids, ready for bench/RESULTS.md.

import { spawnSync } from "node:child_process";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { constants } from "node:os";
import { join, relative } from "node:path";
import process from "node:process";
import {
  buildNode,
  commandsFor,
  display,
  ensureDependencies,
  environment,
  fail,
  list,
  load,
  parseArgs,
  root,
  runBench,
  selectGroups,
  selectRuntimes,
  setTag,
} from "./_runner.mjs";

/** A case is flagged when it got worse by more than this, in %. */
const THRESHOLD = 10;

setTag("compare");
const args = process.argv.slice(2);
const { values, flags } = parseArgs(args, {
  options: ["base", "head", "runtime", "only", "pairs"],
  flags: ["quick", "verbose"],
  expected:
    "--base <ref>, --head <ref>, --runtime <names>, --only <groups>, --pairs <n>, --quick or --verbose",
});
const baseRef = values.base.at(-1);
if (!baseRef) fail("--base <git-ref> is required: the version to compare against");
const headRef = values.head.at(-1);
const pairsText = values.pairs.at(-1) ?? "3";
const pairs = Number(pairsText);
if (!/^\d+$/.test(pairsText) || pairs < 1) fail(`--pairs expects a positive integer, not "${pairsText}"`);
const quick = flags.has("quick");
const verbose = flags.has("verbose");
const runtimes = selectRuntimes(list(values.runtime));
const groups = selectGroups(list(values.only));
const kinds = [
  ...(groups.benchGroups.length > 0 ? ["bench"] : []),
  ...(groups.remoteGroups.length > 0 ? ["remote"] : []),
  ...(groups.sharedGroups.length > 0 ? ["shared"] : []),
  ...(groups.runtimeGroups.length > 0 ? ["runtime"] : []),
  ...(groups.httpGroups.length > 0 ? ["http"] : []),
  ...(groups.quantilesGroups.length > 0 ? ["quantiles"] : []),
  ...(groups.scaleGroups.length > 0 ? ["scale"] : []),
];
const FILE = {
  bench: "bench.ts",
  remote: "remote.ts",
  shared: "shared.ts",
  runtime: "runtime.ts",
  http: "http.ts",
  quantiles: "quantiles.ts",
  scale: "scale.ts",
};
/**
 * The benchmarks a tree without them runs from the other tree (their code uses only the public
 * API): the files copied, each only where missing, and those the Node build lists.
 */
const BORROWED = {
  scale: {
    files: ["bench/scale.ts", "bench/_scale_probe.ts", "bench/_harness.ts", "bench/_report.ts"],
    build: ["./scale.ts", "./_scale_probe.ts"],
  },
};

const rel = (path) => relative(root, path) || ".";

// ---------------------------------------------------------------------------------------------
// The two trees

function git(...argv) {
  const result = spawnSync("git", argv, { cwd: root, encoding: "utf8" });
  return result.status === 0 ? result.stdout.trim() : undefined;
}

function commitOf(ref) {
  const sha = git("rev-parse", "--verify", "--quiet", `${ref}^{commit}`);
  if (sha === undefined) fail(`"${ref}" is not a commit of this repository`);
  return sha;
}

/** Stops the run: something a benchmark needs is missing or broken (exit 1, not a usage error). */
function broken(message) {
  console.error(`compare: ${message}`);
  process.exit(1);
}

const base = { side: "base", ref: baseRef, sha: commitOf(baseRef) };
const head = headRef === undefined
  ? { side: "head", ref: "working tree", sha: commitOf("HEAD"), dir: root }
  : { side: "head", ref: headRef, sha: commitOf(headRef) };
const trees = [base, head];

ensureDependencies();

// Temporary trees and builds, removed at the end, on an error and on Ctrl-C.
mkdirSync(join(root, ".tmp"), { recursive: true });
const tmp = mkdtempSync(join(root, ".tmp", "compare-"));
let removed = false;
function cleanup() {
  if (removed) return;
  removed = true;
  rmSync(tmp, { recursive: true, force: true, maxRetries: 3 });
}
process.on("exit", cleanup);

/** The benchmark running now, stopped with us. */
let current;
let stopping = false;
function stop(signal) {
  const exit = () => {
    cleanup();
    process.exit(128 + (constants.signals[signal] ?? 1));
  };
  if (stopping) exit(); // a second Ctrl-C: do not wait
  stopping = true;
  console.error(`\ncompare: ${signal}: stopping, removing ${rel(tmp)}`);
  if (current !== undefined && current.exitCode === null && current.signalCode === null) {
    current.once("close", exit);
    current.kill(signal);
    setTimeout(exit, 5000);
  } else {
    exit();
  }
}
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(signal));

/** Extracts a commit into tmp/<side>, node_modules linked to the repository's own. */
function materialise(tree) {
  const dir = join(tmp, tree.side);
  mkdirSync(dir);
  const archive = spawnSync("git", ["archive", "--format=tar", tree.sha], {
    cwd: root,
    maxBuffer: 1 << 30,
  });
  if (archive.status !== 0) broken(`git archive ${tree.sha} failed: ${archive.stderr}`);
  const tar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout, encoding: "utf8" });
  if (tar.status !== 0) broken(`tar -x -C ${rel(dir)} failed: ${tar.stderr}`);
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
  return dir;
}

for (const tree of trees) {
  tree.dir ??= materialise(tree);
  tree.outDir = join(tmp, `${tree.side}-dist`);
  tree.borrowed = [];
}

/**
 * Copies a borrowed benchmark into a materialised tree that lacks it (never into the working
 * tree), from the other tree, and lists it in the tree's bench/tsconfig.json for the Node build.
 */
function borrow(kind, tree, from) {
  if (tree.dir === root) return;
  const { files, build } = BORROWED[kind];
  for (const file of files) {
    if (existsSync(join(tree.dir, file)) || !existsSync(join(from.dir, file))) continue;
    copyFileSync(join(from.dir, file), join(tree.dir, file));
    tree.borrowed.push(file);
  }
  const tsconfig = join(tree.dir, "bench", "tsconfig.json");
  if (existsSync(tsconfig)) {
    const config = JSON.parse(readFileSync(tsconfig, "utf8"));
    config.files = [...new Set([...(config.files ?? []), ...build])];
    writeFileSync(tsconfig, `${JSON.stringify(config, null, 2)}\n`);
  }
}

for (const kind of kinds.filter((k) => BORROWED[k] !== undefined)) {
  const has = (tree) => existsSync(join(tree.dir, "bench", FILE[kind]));
  const [a, b] = trees;
  if (has(a) && !has(b)) borrow(kind, b, a);
  else if (has(b) && !has(a)) borrow(kind, a, b);
}
for (const tree of trees) {
  // The benchmarks this tree has: a base may predate one.
  tree.kinds = kinds.filter((kind) => existsSync(join(tree.dir, "bench", FILE[kind])));
}
for (const kind of kinds) {
  if (trees.every((tree) => !tree.kinds.includes(kind))) {
    broken(`neither the base nor the head has bench/${FILE[kind]}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Header: what was compared, how, where

const quote = (arg) => /^[\w@%+=:,./~^-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
const subject = (sha) => {
  const text = git("log", "-1", "--format=%s", sha) ?? "";
  return text.length > 72 ? `${text.slice(0, 71)}…` : text;
};
const changes = headRef === undefined
  ? (git("status", "--porcelain") ?? "").split("\n").filter((line) => line !== "").length
  : 0;
const { machine, runtimes: versions } = environment();
console.log(
  `theus bench compare, ${new Date().toISOString()}${quick ? ", quick" : ""}, ${pairs} pair(s) per runtime`,
);
console.log(`command: node ${rel(process.argv[1])} ${args.map(quote).join(" ")}`);
console.log(`base: ${base.ref} = ${base.sha} (${subject(base.sha)})`);
console.log(
  headRef === undefined
    ? `head: working tree = ${head.sha}${
      changes > 0 ? ` + working tree changes (${changes} file(s))` : " (no changes)"
    }`
    : `head: ${head.ref} = ${head.sha} (${subject(head.sha)})`,
);
console.log(machine);
console.log(versions);
console.log(
  `trees: base in ${rel(base.dir)}, head in ${rel(head.dir)}; runs alternate base, head, base, head, …`,
);
for (const tree of trees) {
  if (tree.borrowed.length > 0) {
    const other = trees.find((t) => t !== tree).side;
    console.log(
      `the ${tree.side} (${tree.ref}, ${tree.sha.slice(0, 10)}) runs the ${other}'s copy of what it lacks: ` +
        `${tree.borrowed.join(", ")} (public API only), listed in its bench/tsconfig.json`,
    );
  }
  for (const kind of kinds.filter((k) => !tree.kinds.includes(k))) {
    console.log(
      `the ${tree.side} (${tree.ref}, ${tree.sha.slice(0, 10)}) has no bench/${FILE[kind]}: ` +
        `its cases are shown for the other tree only`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Runs

/** One line about a run that failed, the reason, and the end of its output. */
function explain(result) {
  const why = result.report === undefined
    ? `did not finish (exit ${result.code})`
    : `sanity check failed (exit ${result.code})`;
  console.log(`    FAILED: ${why}`);
  for (const failure of result.report?.failures ?? []) console.log(`      ${failure}`);
  if (!verbose) { for (const line of result.output.slice(-30)) console.log(`      | ${line}`); }
}

async function runRuntime(runtime) {
  console.log(`\n=== ${runtime}\n`);
  const runs = [];
  let failures = 0;
  if (runtime === "node") {
    for (const tree of trees) {
      console.log(
        `  building ${tree.side}: tsc -p ${rel(join(tree.dir, "bench", "tsconfig.json"))} --outDir ${
          rel(tree.outDir)
        }`,
      );
      const build = buildNode({
        tree: tree.dir,
        outDir: tree.outDir,
        check: false,
        stdio: verbose ? "inherit" : "pipe",
      });
      tree.unbuilt = build.status !== 0;
      if (tree.unbuilt) {
        failures++;
        console.log(`    FAILED: tsc exited with ${build.status ?? build.signal}`);
        const output = `${build.stdout ?? ""}${build.stderr ?? ""}`.trimEnd().split("\n");
        for (const line of output.slice(-30)) console.log(`      | ${line}`);
      }
    }
  }
  for (let pair = 1; pair <= pairs; pair++) {
    for (const kind of kinds) {
      for (const tree of trees) {
        if (runtime === "node" && tree.unbuilt) continue;
        if (!tree.kinds.includes(kind)) continue;
        const [command, argv] = commandsFor(runtime, { outDir: tree.outDir, quick, groups })[kind];
        const started = performance.now();
        const result = await runBench(`${runtime} ${tree.side} ${FILE[kind]}, pair ${pair}`, command, argv, {
          cwd: tree.dir,
          echo: verbose,
          onSpawn: (child) => (current = child),
        });
        current = undefined;
        if (stopping) await new Promise(() => {}); // stop() exits once the child is gone
        const ok = result.code === 0 && result.report !== undefined;
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        console.log(
          `  pair ${pair}/${pairs}  ${tree.side}  ${FILE[kind].padEnd(10)}  ${seconds.padStart(5)} s  ${
            ok ? "ok" : "FAILED"
          }${verbose ? "" : `  (${display(command, argv)})`}`,
        );
        if (!ok) {
          failures++;
          explain(result);
        }
        runs.push({ tree: tree.side, kind, ok, report: result.report });
      }
    }
  }
  return { runtime, failures, ...compare(runs) };
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** Units of the benchmarks' figures: kind and factor to the kind's base unit. */
const UNITS = new Map([
  ["ns", ["time", 1]],
  ["µs", ["time", 1e3]],
  ["us", ["time", 1e3]],
  ["ms", ["time", 1e6]],
  ["s", ["time", 1e9]],
  ["B", ["bytes", 1]],
  ["kB", ["bytes", 1e3]],
  ["KB", ["bytes", 1e3]],
  ["KiB", ["bytes", 1024]],
  ["MB", ["bytes", 1e6]],
  ["MiB", ["bytes", 1024 * 1024]],
  ["/s", ["rate", 1]],
  ["k/s", ["rate", 1e3]],
  ["M/s", ["rate", 1e6]],
  ["G/s", ["rate", 1e9]],
  ["x", ["ratio", 1]],
  ["×", ["ratio", 1]],
]);
const FLAG = { time: "SLOWER", rate: "SLOWER", bytes: "LARGER", count: "MORE", ratio: "WORSE" };

/**
 * The leading figure of a cell ("1.28 ns", "12.0 ms (p50 8.87 ms)", "317 M/s", "140 B", "1",
 * "44.4 ms pipeline"), in its kind's base unit; undefined for "n/a", "-".
 */
function measure(text) {
  const match = /^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*(\S*)/i.exec(text ?? "");
  if (match === null) return undefined;
  const [kind, factor] = UNITS.get(match[2]) ?? ["count", 1];
  return { value: Number(match[1]) * factor, kind, unit: UNITS.has(match[2]) ? match[2] : "" };
}

/** Which way is better for a kind of figure; a ratio's way is read from its row's target. */
function better(kind, target) {
  if (kind === "rate") return "higher";
  if (kind === "ratio") return /^\s*</.test(target) ? "lower" : /^\s*>/.test(target) ? "higher" : undefined;
  return "lower";
}

function median(numbers) {
  const sorted = [...numbers].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The median of one tree's figures for a case, its unit and its spread, if comparable. */
function summarise(measures) {
  const known = measures.filter((m) => m !== undefined);
  if (known.length === 0 || known.some((m) => m.kind !== known[0].kind)) return undefined;
  const numbers = known.map((m) => m.value);
  const mid = median(numbers);
  const spread = known.length > 1 && mid !== 0
    ? (Math.max(...numbers) - Math.min(...numbers)) / mid
    : undefined;
  return { kind: known[0].kind, unit: known[0].unit, value: mid, spread };
}

function show(summary, unit = summary?.unit) {
  if (summary === undefined) return "n/a";
  const value = summary.value / (UNITS.get(unit)?.[1] ?? 1);
  if (summary.kind === "count") return Number.isInteger(value) ? String(value) : value.toFixed(2);
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return summary.kind === "ratio" ? `${value.toFixed(digits)}x` : `${value.toFixed(digits)} ${unit}`;
}

/** Head against base, in %. */
function change(b, h) {
  if (b === undefined || h === undefined || b.kind !== h.kind) return undefined;
  if (b.value === 0) return h.value === 0 ? 0 : Math.sign(h.value) * Infinity;
  return ((h.value - b.value) / Math.abs(b.value)) * 100;
}
const percent = (p) =>
  p === undefined
    ? "-"
    : Number.isFinite(p)
    ? `${p >= 0 ? "+" : "-"}${Math.abs(p).toFixed(1)} %`
    : `${p > 0 ? "+" : "-"}inf`;

/**
 * Every case of one tree's successful runs: its theus figures and its other column's (the
 * prom-client side in bench.ts, the baseline in remote.ts), one per run. Rows of bench.ts that
 * differ only by the prom-client variant (" [prom: …]") share the theus figure: kept once.
 * Indented breakdown rows are keyed under the row above them.
 */
function collect(runs, side) {
  const cases = new Map();
  for (const run of runs) {
    if (run.tree !== side || !run.ok) continue;
    const seen = new Set();
    let parent = "";
    for (const row of run.report.rows) {
      const label = run.kind === "bench" ? row.case.replace(/ \[prom: .*\]$/, "") : row.case;
      const indented = label.startsWith(" ");
      if (!indented) parent = label;
      const key = [run.kind, indented ? parent : "", label].join("\0");
      if (seen.has(key)) continue;
      seen.add(key);
      if (!cases.has(key)) cases.set(key, { label, target: row.target, theus: [], other: [] });
      cases.get(key).theus.push(measure(row.theus));
      cases.get(key).other.push(measure(run.kind === "bench" ? row.prom : row.baseline));
    }
  }
  return cases;
}

function printTable(rows) {
  const widths = rows[0].map((_, col) => Math.max(...rows.map((row) => row[col].length)));
  for (const row of rows) {
    const cells = row.map((cell, col) =>
      col === 0 || col === row.length - 1 ? cell.padEnd(widths[col]) : cell.padStart(widths[col])
    );
    console.log(cells.join("  ").trimEnd());
  }
}

function compare(runs) {
  const sides = { base: collect(runs, "base"), head: collect(runs, "head") };
  // Both trees' cases, in the order they were reported.
  const keys = [...new Set([...sides.head.keys(), ...sides.base.keys()])];
  const table = [["case", "base", "head", "change", "spread", "control", "flag"]];
  const only = [];
  let onlyCount = 0;
  let compared = 0;
  let flagged = 0;
  let maxChange = 0;
  for (const key of keys) {
    const [kind] = key.split("\0");
    const inBase = sides.base.get(key);
    const inHead = sides.head.get(key);
    if (inBase === undefined || inHead === undefined) {
      const missing = inBase === undefined ? "base" : "head";
      if (!trees.find((tree) => tree.side === missing).kinds.includes(kind)) {
        // That tree has no such benchmark: the other tree's figures, shown on their own.
        const present = summarise((inBase ?? inHead).theus);
        onlyCount++;
        table.push([
          (inBase ?? inHead).label,
          missing === "base" ? "n/a" : show(present),
          missing === "head" ? "n/a" : show(present),
          "-",
          present?.spread !== undefined ? `${(present.spread * 100).toFixed(1)} %` : "-",
          "-",
          `only in ${missing === "base" ? "head" : "base"}`,
        ]);
        continue;
      }
      const ran = runs.some((run) => run.tree === missing && run.kind === kind && run.ok);
      // When every run of that tree failed, its cases are missing for that reason alone.
      if (ran) {
        onlyCount++;
        only.push(`  only in ${inBase === undefined ? "head" : "base"}: ${(inBase ?? inHead).label.trim()}`);
      }
      continue;
    }
    const b = summarise(inBase.theus);
    const h = summarise(inHead.theus);
    const delta = change(b, h);
    const spreads = [b?.spread, h?.spread].filter((s) => s !== undefined);
    const control = change(summarise(inBase.other), summarise(inHead.other));
    let flag = "";
    if (delta !== undefined) {
      compared++;
      if (Number.isFinite(delta)) maxChange = Math.max(maxChange, Math.abs(delta));
      const way = better(b.kind, inHead.target);
      const limit = 1 + THRESHOLD / 100;
      if (
        way === "lower" ? h.value > b.value * limit : way === "higher" ? h.value * limit < b.value : false
      ) {
        flagged++;
        flag = `${FLAG[b.kind]} >${THRESHOLD}%`;
      }
    }
    table.push([
      inHead.label,
      show(b),
      show(h, b?.kind === h?.kind ? b?.unit : h?.unit),
      percent(delta),
      spreads.length > 0 ? `${(Math.max(...spreads) * 100).toFixed(1)} %` : "-",
      percent(control),
      flag,
    ]);
  }
  for (const kind of kinds) {
    for (const tree of trees) {
      if (!tree.kinds.includes(kind)) {
        only.push(`  no results from the ${tree.side} for ${FILE[kind]}: it has no bench/${FILE[kind]}`);
      } else if (!runs.some((run) => run.tree === tree.side && run.kind === kind && run.ok)) {
        only.push(`  no results from the ${tree.side} for ${FILE[kind]}: every run failed`);
      }
    }
  }
  if (table.length > 1) {
    console.log("");
    printTable(table);
  }
  for (const line of only) console.log(line);
  return { compared, flagged, maxChange, only: onlyCount };
}

// ---------------------------------------------------------------------------------------------

console.log(
  `\nPer runtime, per case: base and head = median of the theus figure over the pairs; change = ` +
    `head vs base;\nspread = widest (max - min) / median of one tree across its pairs; control = ` +
    `the same change for the row's\nother column (prom-client in bench.ts: unchanged code, so ` +
    `it shows the noise; the baseline in remote.ts; the memory backend or the 1-thread figure in ` +
    `shared.ts;\nprom-client or the server without the monitors in runtime.ts; the bare handler or app ` +
    `in http.ts; the classic histogram or prom-client in quantiles.ts; prom-client's metrics() on the ` +
    `reference rows of scale.ts).\n` +
    `Flagged when worse by more than ${THRESHOLD} %: ` +
    `SLOWER (times, rates), LARGER (heap), MORE (round trips, requests).`,
);
const summaries = [];
for (const runtime of runtimes) summaries.push(await runRuntime(runtime));

console.log(`\n=== summary: ${base.ref} (base) vs ${head.ref} (head), ${pairs} pair(s)\n`);
for (const s of summaries) {
  console.log(
    `${s.runtime}: ${s.compared} case(s) compared, ${s.flagged} flagged (>${THRESHOLD} % worse), ` +
      `max |change| ${s.maxChange.toFixed(1)} %` +
      (s.only > 0 ? `, ${s.only} in one tree only` : "") +
      (s.failures > 0 ? `; ${s.failures} build(s) or run(s) FAILED (see above)` : ""),
  );
}
console.log(`load average at the end: ${load()}`);
process.exitCode = summaries.some((s) => s.failures > 0) ? 1 : 0;

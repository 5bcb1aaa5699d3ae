// The whole test run, as `npm test` and CI do it:
//
//   node tests/run.mjs                  set up (npm ci, Debian packages), build, static checks, suites
//   node tests/run.mjs --quick          build and run the suites only
//   node tests/run.mjs [--quick] FILE…  the same, with the suites limited to the given test files
//
// Suites: Deno over tests/*_test.ts and tests/once/*_test.ts, Bun over tests/*_test.ts, Node over
// the build, dist/tests/*_test.js. Every runner's output is streamed; its closing summary is read
// and added up. Each set-up step and static check counts as one check. The last line printed is
// `N passed, N failed`, and the exit code is non-zero if anything failed.
//
// Plain Node (20+), no dependencies: it is what installs the dependencies.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { stripVTControlCharacters } from "node:util";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const BIN = join(ROOT, "node_modules", ".bin");
const DENO = join(BIN, "deno");
const BUN = join(BIN, "bun");
const TSC = join(BIN, "tsc");

const MINUTE = 60_000;
const SUITE_TIMEOUT = Number(process.env.THEUS_SUITE_TIMEOUT_MS) || 20 * MINUTE;

/** Debian packages the suites need, each with a check that it is really usable. */
const DEBIAN = [
  {
    name: "prometheus",
    why: "promtool validates the text exposition; prometheus scrapes in the end-to-end test",
    ok: () => existsSync("/usr/bin/promtool") && existsSync("/usr/bin/prometheus"),
  },
  {
    name: "python3-prometheus-client",
    why: "its strict OpenMetrics parser validates the OpenMetrics exposition",
    // Debian's python, not whatever python3 comes first on PATH.
    ok: () =>
      spawnSync("/usr/bin/python3", ["-c", "import prometheus_client"], { stdio: "ignore" }).status === 0,
  },
  {
    name: "redis-server",
    why: "the redis and upstash backends are tested against a real server",
    ok: () => existsSync("/usr/bin/redis-server"),
  },
  {
    name: "prometheus-pushgateway",
    why: "Pushgateway pushes to a real gateway (on Deno, Bun, Node and in workerd)",
    ok: () => existsSync("/usr/bin/prometheus-pushgateway"),
  },
  {
    name: "protobuf-compiler",
    why: "protoc --decode reads the protobuf exposition back, against client_model's metrics.proto",
    ok: () => existsSync("/usr/bin/protoc"),
  },
  {
    name: "libprotobuf-dev",
    // protobuf-compiler only recommends it, and the install above skips recommends.
    why: "google/protobuf/timestamp.proto, which metrics.proto imports, for protoc",
    ok: () => existsSync("/usr/include/google/protobuf/timestamp.proto"),
  },
];

const env = {
  ...process.env,
  NO_COLOR: "1",
  DENO_NO_UPDATE_CHECK: "1",
  DENO_NO_PROMPT: "1",
  RUST_BACKTRACE: "0",
};
delete env.FORCE_COLOR;

const totals = { passed: 0, failed: 0 };
/** @type {string[]} */
const failures = [];
/** Names of the tests that failed, "runtime: name", for the summary. */
const failedTests = [];
/** @type {import("node:child_process").ChildProcess | undefined} */
let current;

function say(line = "") {
  process.stdout.write(line + "\n");
}

function heading(title) {
  say();
  say(`==> ${title}`);
}

/** Counts one check. */
function check(name, ok, detail = "") {
  if (ok) {
    totals.passed++;
    say(`ok     ${name}`);
  } else {
    totals.failed++;
    failures.push(detail ? `${name}: ${detail}` : name);
    say(`FAILED ${name}${detail ? `: ${detail}` : ""}`);
  }
}

/**
 * Runs a command in its own process group, with no stdin. Its output is streamed to stdout
 * (stderr too, so that CI logs keep the order) unless `quiet`, and returned either way.
 * Whatever the command leaves running in its group is killed once it exits, so a leaked
 * server can neither hang the run (by holding the output pipe) nor disturb the next suite.
 */
function run(cmd, args, { quiet = false, timeout = 10 * MINUTE } = {}) {
  return new Promise((done) => {
    let output = "";
    let timedOut = false;
    const take = (chunk) => {
      output += chunk;
      if (!quiet) process.stdout.write(chunk);
    };
    const child = spawn(cmd, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    current = child;
    child.stdout.setEncoding("utf8").on("data", take);
    child.stderr.setEncoding("utf8").on("data", take);
    const timer = setTimeout(() => {
      timedOut = true;
      take(`\nKilled after ${Math.round(timeout / 1000)} s\n`);
      kill(child);
    }, timeout);
    let grace;
    let reaped = false;
    const reap = () => {
      if (killGroup(child) && !reaped) take(`\nKilled what ${cmd} left running\n`);
      reaped = true;
    };
    child.on("exit", () => {
      // Output still open 5 s after the exit: something the command started holds the pipe.
      grace = setTimeout(() => {
        reap();
        child.stdout.destroy();
        child.stderr.destroy();
      }, 5_000);
    });
    // A command that cannot start (ENOENT) says so, then closes.
    child.on("error", (error) => take(`\n${error.message}\n`));
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      clearTimeout(grace);
      current = undefined;
      reap();
      if (signal && !timedOut) take(`\nKilled by ${signal}\n`);
      done({ code: timedOut ? null : code, output, timedOut });
    });
  });
}

/** Kills the process group of `child`; true if there was anything left in it. */
function killGroup(child) {
  if (child.pid === undefined) return false;
  try {
    process.kill(-child.pid, "SIGKILL");
    return true;
  } catch {
    return false;
  }
}

function kill(child) {
  if (!killGroup(child)) child.kill("SIGKILL");
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (current) kill(current);
    process.exit(130);
  });
}

function lastMatch(text, regex) {
  let found;
  for (const match of text.matchAll(regex)) found = match;
  return found;
}

// --- set-up -------------------------------------------------------------------------------

function mtime(path) {
  return statSync(path).mtimeMs;
}

async function npmDependencies() {
  heading("npm dependencies");
  const marker = join(ROOT, "node_modules", ".package-lock.json");
  const stale = !existsSync(marker) || mtime(join(ROOT, "package-lock.json")) > mtime(marker);
  if (stale) {
    say(existsSync(marker) ? "package-lock.json changed: npm ci" : "node_modules missing: npm ci");
    const result = await run("npm", ["ci", "--no-audit", "--no-fund"], { timeout: 20 * MINUTE });
    if (result.code !== 0) return check("npm ci", false, `exit ${result.code}`);
  } else {
    say("node_modules is up to date with package-lock.json");
  }
  // The deno and bun binaries come from platform packages; make sure they really run.
  const broken = [];
  for (const tool of [DENO, BUN, TSC]) {
    const result = spawnSync(tool, ["--version"], { cwd: ROOT, env, encoding: "utf8" });
    if (result.status === 0) say(`${relative(ROOT, tool)}: ${result.stdout.trim().split("\n")[0]}`);
    else broken.push(`${relative(ROOT, tool)} (${(result.error?.message ?? result.stderr).trim()})`);
  }
  check("npm dependencies", broken.length === 0, broken.length ? `not runnable: ${broken.join(", ")}` : "");
}

async function debianPackages() {
  heading("Debian packages");
  let missing = DEBIAN.filter((p) => !p.ok());
  if (missing.length > 0) {
    say(`missing: ${missing.map((p) => p.name).join(" ")}; installing`);
    const root = typeof process.getuid !== "function" || process.getuid() === 0;
    // sudo may drop the environment, so DEBIAN_FRONTEND goes through env(1).
    const [cmd, pre] = root ? ["env", []] : ["sudo", ["-n", "env"]];
    pre.push("DEBIAN_FRONTEND=noninteractive", "apt-get");
    const update = await run(cmd, [...pre, "update"], { timeout: 10 * MINUTE });
    if (update.code !== 0) say(`apt-get update exited with ${update.code}`);
    const install = await run(cmd, [
      ...pre,
      "install",
      "-y",
      "--no-install-recommends",
      ...missing.map((p) => p.name),
    ], {
      timeout: 20 * MINUTE,
    });
    if (install.code !== 0) say(`apt-get install exited with ${install.code}`);
    missing = DEBIAN.filter((p) => !p.ok());
  }
  for (const p of DEBIAN) say(`${missing.includes(p) ? "MISSING" : "present"} ${p.name} (${p.why})`);
  check(
    "Debian packages",
    missing.length === 0,
    missing.length
      ? `could not install ${missing.map((p) => p.name).join(" ")}; install them as root with apt-get`
      : "",
  );
}

async function build() {
  heading("build: tsc -p tsconfig.json into a fresh dist/");
  rmSync(join(ROOT, "dist"), { recursive: true, force: true });
  const result = await run(TSC, ["-p", "tsconfig.json"], { timeout: 10 * MINUTE });
  check("build (tsc)", result.code === 0, result.code === 0 ? "" : `exit ${result.code}`);
}

// --- static checks ------------------------------------------------------------------------

/** The .ts files directly in `dir` (relative to the root), sorted; none if it does not exist. */
function tsFiles(dir, suffix = ".ts") {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  return readdirSync(abs, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(suffix) && !e.name.endsWith(".d.ts"))
    .map((e) => (dir === "." ? e.name : `${dir}/${e.name}`))
    .sort();
}

async function staticCheck(name, args) {
  const result = await run(DENO, args, { quiet: true });
  const ok = result.code === 0;
  check(name, ok, ok ? "" : result.timedOut ? "timed out" : `exit ${result.code}`);
  if (!ok) {
    say(`----- output of deno ${args.join(" ")}`);
    say(stripVTControlCharacters(result.output).trimEnd());
    say("-----");
  }
}

// Every .ts file under a folder, subfolders included.
function tsTree(dir) {
  const abs = join(ROOT, dir);
  if (!existsSync(abs)) return [];
  const folders = readdirSync(abs, { withFileTypes: true }).filter((e) => e.isDirectory());
  return [...tsFiles(dir), ...folders.flatMap((e) => tsTree(`${dir}/${e.name}`))];
}

async function staticChecks() {
  heading("static checks");
  const deno = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8"));
  const entryPoints = typeof deno.exports === "string" ? [deno.exports] : Object.values(deno.exports ?? {});
  const sources = [
    "mod.ts",
    ...["core", "backends", "metrics", "exposition", "setup", "adapters"].flatMap((dir) => tsTree(dir)),
    ...["tests", "tests/once", "tests/fixtures", "tests/fixtures/bundles", "bench", "examples"]
      .flatMap((dir) => tsFiles(dir)),
  ];
  await staticCheck("deno fmt --check", ["fmt", "--check"]);
  await staticCheck("deno lint", ["lint"]);
  await staticCheck(`deno check (${sources.length} files)`, ["check", ...sources]);
  await staticCheck(`deno doc --lint ${entryPoints.join(" ")}`, ["doc", "--lint", ...entryPoints]);
  await staticCheck("deno test --doc (the @example blocks)", [
    "test",
    "--doc",
    "mod.ts",
    "core/",
    "backends/",
    "metrics/",
    "exposition/",
    "setup/",
    "adapters/",
  ]);
  await staticCheck("deno publish --dry-run", ["publish", "--dry-run", "--allow-dirty"]);
}

// --- suites -------------------------------------------------------------------------------

/**
 * Reads a runner's closing summary; `null` when there is none.
 * @returns {{ passed: number, failed: number } | null}
 */
const PARSERS = {
  deno(text) {
    const m = lastMatch(text, /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm);
    return m ? { passed: Number(m[1]), failed: Number(m[2]) } : null;
  },
  bun(text) {
    const pass = lastMatch(text, /^\s*(\d+) pass\s*$/gm);
    const fail = lastMatch(text, /^\s*(\d+) fail\s*$/gm);
    // Errors outside tests (a file that does not load) are also counted as failures, mostly.
    const errors = lastMatch(text, /^\s*(\d+) errors?\s*$/gm);
    if (!pass || !fail) return null;
    return { passed: Number(pass[1]), failed: Math.max(Number(fail[1]), Number(errors?.[1] ?? 0)) };
  },
  node(text) {
    const pass = lastMatch(text, /^# pass (\d+)\s*$/gm);
    const fail = lastMatch(text, /^# fail (\d+)\s*$/gm);
    const cancelled = lastMatch(text, /^# cancelled (\d+)\s*$/gm);
    if (!pass || !fail) return null;
    return { passed: Number(pass[1]), failed: Number(fail[1]) + Number(cancelled?.[1] ?? 0) };
  },
};

/**
 * Per-test result lines: passed, and failed with the test's name. The summary names the failed
 * tests; both are counted when a runner never got to its summary (a timeout).
 */
const RESULT_LINES = {
  deno: [/^\S.* \.\.\. ok \(/gm, /^(\S.*?) \.\.\. FAILED \(/gm],
  bun: [/^\(pass\) /gm, /^\(fail\) (.*?)(?: \[[\d.]+m?s\])?$/gm],
  node: [/^ok \d+ - /gm, /^not ok \d+ - (.*)$/gm],
};

async function suite(runtime, cmd, args, files) {
  heading(`${runtime}: ${files.length} test files`);
  if (files.length === 0) {
    say("no test files");
    return;
  }
  const result = await run(cmd, [...args, ...files], { timeout: SUITE_TIMEOUT });
  const text = stripVTControlCharacters(result.output);
  const summary = PARSERS[runtime](text);
  const [passedLine, failedLine] = RESULT_LINES[runtime];
  const failedLines = [...text.matchAll(failedLine)];
  const names = new Set(failedLines.map((m) => m[1].trim()));
  failedTests.push(...[...names].map((name) => `${runtime}: ${name}`));
  say();
  if (!summary) {
    // Count the tests that did report, plus one failure for the runner itself.
    const passed = [...text.matchAll(passedLine)].length;
    const failed = failedLines.length;
    const why = result.timedOut ? "timed out" : `no summary, exit ${result.code}`;
    totals.passed += passed;
    totals.failed += failed + 1;
    failures.push(`${runtime} suite: ${why}${failed ? `, and ${failed} failed before that` : ""}`);
    say(`${runtime} suite FAILED: ${why}; ${passed} passed / ${failed} failed before that`);
    return;
  }
  let { passed, failed } = summary;
  if (result.code !== 0 && failed === 0) {
    // A runner that exits non-zero with every test passed failed somewhere else.
    failed = 1;
    failures.push(`${runtime} suite: exit ${result.code} with no failed test`);
  } else if (failed > 0) {
    failures.push(`${runtime} suite: ${failed} failed`);
  }
  totals.passed += passed;
  totals.failed += failed;
  say(`${runtime} suite: ${passed} passed / ${failed} failed`);
}

/** The test files to run: all of them, or those named on the command line. */
function testFiles(named) {
  const all = { shared: tsFiles("tests", "_test.ts"), once: tsFiles("tests/once", "_test.ts") };
  if (named.length === 0) return all;
  const picked = { shared: [], once: [] };
  for (const name of named) {
    const rel = relative(ROOT, resolve(name)).split(sep).join("/");
    if (all.shared.includes(rel)) picked.shared.push(rel);
    else if (all.once.includes(rel)) picked.once.push(rel);
    else throw new Error(`Not a test file: ${name} (expected tests/*_test.ts or tests/once/*_test.ts)`);
  }
  return picked;
}

// --- main ---------------------------------------------------------------------------------

async function main() {
  const argv = process.argv.slice(2);
  const quick = argv.includes("--quick");
  const unknown = argv.filter((a) => a.startsWith("-") && a !== "--quick");
  if (unknown.length > 0) {
    throw new Error(`Unknown option ${unknown[0]}; usage: node tests/run.mjs [--quick] [test files]`);
  }
  const files = testFiles(argv.filter((a) => !a.startsWith("-")));
  process.chdir(ROOT);

  if (!quick) {
    await npmDependencies();
    await debianPackages();
  }
  await build();
  if (!quick) await staticChecks();

  const nodeFiles = files.shared.map((f) => `dist/${f.replace(/\.ts$/, ".js")}`);
  await suite("deno", DENO, ["test", "-A"], [...files.shared, ...files.once]);
  await suite("bun", BUN, ["test"], files.shared.map((f) => `./${f}`));
  // --test-force-exit: like Deno and Bun, end a file once its tests are done, even if a
  // connection or timer is still open, rather than wait for it forever.
  await suite("node", process.execPath, ["--test", "--test-force-exit", "--test-reporter=tap"], nodeFiles);

  heading("summary");
  for (const failure of failures) say(`FAILED ${failure}`);
  for (const name of failedTests) say(`  failed test ${name}`);
  if (failures.length === 0) say("everything passed");
  process.exitCode = totals.failed > 0 ? 1 : 0;
  say(`${totals.passed} passed, ${totals.failed} failed`);
}

main().catch((error) => {
  say(`\n${error?.stack ?? error}`);
  say(`${totals.passed} passed, ${totals.failed + 1} failed`);
  process.exitCode = 1;
});

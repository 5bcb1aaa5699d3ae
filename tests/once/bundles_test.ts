// The library in the bundlers and tools people use, as they use them. Each test builds or runs a
// small app through the real tool and fails on what that tool complains about:
//
// - Miniflare started on a Worker bundle with `scriptPath` (no explicit module list): it parses the
//   bundle and refuses any `import()` whose specifier is not a literal (ERR_MODULE_DYNAMIC_SPEC);
// - webpack 5 in production mode, for the web and for Node, on the built npm package (dist/): no
//   error and no warning ("Critical dependency: the request of a dependency is an expression");
// - `deno publish --dry-run`: no warning (`warning[unanalyzable-dynamic-import]`);
// - a Deno app on the memory backend, with ioredis and @upstash/redis in its import map, never
//   downloads them (with a control app that does);
// - THEUS_BACKEND and THEUS_BACKEND_CONFIG (a file, or inline JSON) keep selecting the built-in
//   backends and user modules on Deno, Bun and Node.
//
// Every tool these tests need is a dependency or a Debian package the runner installs: a missing
// one is a failure, never a skip.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Readable } from "node:stream";
import { isDeepStrictEqual } from "node:util";
import * as esbuild from "esbuild";
import { WORKER_BUILD } from "../_esbuild.ts";
import { Miniflare } from "miniflare";
import webpack from "webpack";
import { labelsText, metricKey, shardOf } from "../../backends/_remote/layout.ts";
import { test } from "../_harness.ts";
import { startRedis } from "../_redis.ts";
import { startUpstashBridge } from "../_upstash_bridge.ts";
import { ROOT } from "../_root.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "bundles");
const DENO = join(ROOT, "node_modules", ".bin", "deno");
const BUN = join(ROOT, "node_modules", ".bin", "bun");
// Node from PATH: in this process, process.execPath is Deno.
const NODE = "node";

// --- Helpers ---

/** What a finished child process printed, and how it ended. */
interface Ran {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

interface RunOptions {
  cwd?: string;
  /** Variables to set; `undefined` removes one inherited from this process. */
  env?: Record<string, string | undefined>;
  timeoutMs?: number;
}

/**
 * Runs a command to its end and returns its output. A command that cannot start, or that runs
 * longer than `timeoutMs` (then killed with SIGKILL), rejects with what it printed so far.
 */
function run(command: string, args: string[], options: RunOptions = {}): Promise<Ran> {
  const env: Record<string, string> = {};
  for (
    const [name, value] of Object.entries({
      ...process.env,
      NO_COLOR: "1",
      DENO_NO_UPDATE_CHECK: "1",
      DENO_NO_PROMPT: "1",
      ...options.env,
    })
  ) {
    if (value !== undefined) env[name] = value;
  }
  delete env.FORCE_COLOR;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const commandLine = `${command} ${args.join(" ")}`;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      // By pid: see tests/_redis.ts on Deno's ChildProcess.kill().
      try {
        if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
      reject(new Error(`${commandLine} did not finish within ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`Cannot run ${commandLine}: ${error.message}`));
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The output of a run, for assertion messages. */
function shown(ran: Ran): string {
  return `exit ${ran.code ?? ran.signal}\n--- stdout\n${ran.stdout}--- stderr\n${ran.stderr}---`;
}

/** A fresh temporary directory, removed by the returned function. */
/** The hash that holds an unlabelled series of a metric: its shard's, in the README's key layout. */
function seriesKey(keyPrefix: string, name: string): string {
  return metricKey(keyPrefix, name, shardOf(name, labelsText({})));
}

function tempDir(name: string): [string, () => void] {
  const dir = mkdtempSync(join(tmpdir(), `theus-${name}-`));
  return [dir, () => rmSync(dir, { recursive: true, force: true })];
}

/** Fails, telling how to build it, when the npm package (dist/) or a file of it is missing. */
/** Bundles a Worker fixture with esbuild as Wrangler does, into `dir`/worker.js; returns that path. */
async function workerBundle(fixture: string, dir: string): Promise<string> {
  const result = await esbuild.build({
    ...WORKER_BUILD,
    entryPoints: [join(FIXTURES, fixture)],
  });
  await esbuild.stop();
  const scriptPath = join(dir, "worker.js");
  writeFileSync(scriptPath, result.outputFiles[0].text);
  return scriptPath;
}

function assertBuilt(...files: string[]): void {
  for (const file of files) {
    assert.ok(
      existsSync(join(ROOT, file)),
      `${file} is missing: build the npm package first, with \`./node_modules/.bin/tsc -p tsconfig.json\` ` +
        "(node tests/run.mjs builds it before any suite)",
    );
  }
}

// --- 1. Miniflare, from the bundle's path ---

/**
 * The text of a response from Miniflare. workerd shows every request to the Worker with
 * `Accept-Encoding: br, gzip`, whatever was sent (as Cloudflare does), so metricsHandler gzips;
 * dispatchFetch() hands the body back still compressed, its Content-Encoding moved to an
 * internal header.
 */
async function bodyText(response: { arrayBuffer(): Promise<ArrayBuffer> }): Promise<string> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return new TextDecoder().decode(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

test(
  "Miniflare runs an esbuild bundle of a Worker on upstash from scriptPath, with exact counts in /metrics and Redis",
  async () => {
    const [dir, removeDir] = tempDir("scriptpath");
    const redis = await startRedis();
    let bridge: Awaited<ReturnType<typeof startUpstashBridge>> | undefined;
    let mf: Miniflare | undefined;
    let output = "";
    try {
      bridge = await startUpstashBridge({ redisPort: redis.port });
      const scriptPath = await workerBundle("worker.ts", dir);

      // No `modules` list: Miniflare finds the modules itself by parsing the bundle, as
      // `wrangler dev` does with a bundle it did not build. `modulesRoot` is the bundle's
      // directory: module names are paths relative to it (the working directory by default),
      // and workerd refuses a name with "..", which a bundle in the temporary directory would get.
      const keyPrefix = `bundles-worker-${process.pid}`;
      mf = new Miniflare({
        modules: true,
        scriptPath,
        modulesRoot: dir,
        compatibilityDate: "2024-11-11",
        bindings: {
          UPSTASH_REDIS_REST_URL: bridge.url,
          UPSTASH_REDIS_REST_TOKEN: bridge.token,
          THEUS_KEY_PREFIX: keyPrefix,
        },
        handleRuntimeStdio(stdout: Readable, stderr: Readable) {
          stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
          stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        },
      });
      await mf.ready.catch((error) => {
        throw new Error(`${error}\n--- workerd output\n${output}`, { cause: error });
      });

      const HITS = 4;
      for (let i = 0; i < HITS; i++) {
        const response = await mf.dispatchFetch("http://worker.test/");
        assert.equal(`${response.status} ${await response.text()}`, "200 ok", output);
      }
      const metrics = await mf.dispatchFetch("http://worker.test/metrics");
      const text = await bodyText(metrics);
      assert.equal(metrics.status, 200, text);
      assert.match(text, new RegExp(`^bundles_worker_hits_total ${HITS}$`, "m"), text);
      // The collection flushed first: every hit is in Redis, in the README's key layout.
      assert.equal(
        await redis.cli("HGET", seriesKey(keyPrefix, "bundles_worker_hits_total"), "[]||"),
        String(HITS),
      );
      assert.doesNotMatch(output, /uncaught|unhandled|error/i, output);
    } finally {
      await esbuild.stop();
      try {
        await mf?.dispose();
      } catch (error) {
        console.error(`Miniflare.dispose() failed: ${error}`);
      } finally {
        await bridge?.close();
        await redis.stop();
        removeDir();
      }
    }
  },
  { timeout: 120_000 },
);

test(
  "a Worker bundle on the memory backend runs in workerd per isolate, with or without shareMemory()",
  async () => {
    const [dir, removeDir] = tempDir("memoryworker");
    try {
      const scriptPath = await workerBundle("memory_worker.ts", dir);
      for (const share of ["no", "yes"]) {
        let output = "";
        const mf = new Miniflare({
          modules: true,
          scriptPath,
          modulesRoot: dir,
          compatibilityDate: "2024-11-11",
          bindings: { SHARE: share },
          handleRuntimeStdio(stdout: Readable, stderr: Readable) {
            stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
            stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
          },
        });
        try {
          for (let i = 0; i < 5; i++) {
            const response = await mf.dispatchFetch("http://worker.test/");
            assert.equal(`${response.status} ${await response.text()}`, "200 ok", output);
          }
          const metrics = await mf.dispatchFetch("http://worker.test/metrics");
          const text = await bodyText(metrics);
          assert.equal(metrics.status, 200, text);
          // workerd has SharedArrayBuffer: shareMemory() makes an arena, which this isolate alone uses.
          assert.match(
            text,
            new RegExp(`^memory_worker_hits_total\\{shared="${share === "yes"}"\\} 5$`, "m"),
            text,
          );
          assert.doesNotMatch(output, /uncaught|unhandled|error/i, output);
        } finally {
          await mf.dispose();
        }
      }
    } finally {
      await esbuild.stop();
      removeDir();
    }
  },
  { timeout: 120_000 },
);

// --- 2. webpack 5 ---

const WEBPACK_APP = `import { Counter, generateLatest, Registry } from "theus";

const registry = new Registry();
const hits = new Counter({ name: "webpacked_hits_total", help: "Hits", registry });
hits.inc(3);
generateLatest(registry).then((text) => console.log(text));
`;

/** Runs webpack and resolves with its stats, or rejects with a fatal (configuration) error. */
function webpackBuild(config: webpack.Configuration): Promise<webpack.Stats> {
  return new Promise((resolve, reject) => {
    webpack(config, (error, stats) => {
      if (error) reject(error);
      else if (stats === undefined) reject(new Error("webpack returned no stats"));
      else resolve(stats);
    });
  });
}

test(
  "webpack 5 builds an app importing theus, for the web and for Node, in production, with no error and no warning",
  async () => {
    assertBuilt("dist/mod.js");
    const [dir, removeDir] = tempDir("webpack");
    try {
      // `theus` is the repository itself, as npm would link it: webpack reads its package.json
      // `exports` and lands in dist/.
      mkdirSync(join(dir, "node_modules"));
      symlinkSync(ROOT, join(dir, "node_modules", "theus"), "dir");
      writeFileSync(join(dir, "app.mjs"), WEBPACK_APP);
      const problems: string[] = [];
      for (const target of ["web", "node"] as const) {
        const outDir = join(dir, `out-${target}`);
        const stats = await webpackBuild({
          mode: "production",
          target,
          context: dir,
          entry: join(dir, "app.mjs"),
          output: { path: outDir, filename: "main.js" },
          infrastructureLogging: { level: "error" },
        });
        const json = stats.toJson({ all: false, errors: true, warnings: true });
        const messages = (list: webpack.StatsError[] | undefined) =>
          (list ?? []).map((e) => `${e.moduleName ?? e.moduleIdentifier ?? ""} ${e.message}`.trim());
        if (stats.hasErrors()) {
          problems.push(`target ${target}: errors:\n${messages(json.errors).join("\n")}`);
        }
        if (stats.hasWarnings()) {
          problems.push(`target ${target}: warnings:\n${messages(json.warnings).join("\n")}`);
        }
        if (target === "node" && !stats.hasErrors()) {
          const ran = await run(NODE, [join(outDir, "main.js")], { cwd: dir });
          if (ran.code !== 0 || !/^webpacked_hits_total 3$/m.test(ran.stdout)) {
            problems.push(`target node: the bundle does not print "webpacked_hits_total 3":\n${shown(ran)}`);
          }
        }
      }
      assert.ok(problems.length === 0, problems.join("\n\n"));
    } finally {
      removeDir();
    }
  },
  { timeout: 120_000 },
);

// --- 3. deno publish ---

test("deno publish --dry-run succeeds without any warning", async () => {
  const ran = await run(DENO, ["publish", "--dry-run", "--allow-dirty"], { timeoutMs: 100_000 });
  const output = ran.stdout + ran.stderr;
  assert.equal(ran.code, 0, shown(ran));
  assert.doesNotMatch(output, /warning/i, shown(ran));
}, { timeout: 120_000 });

// --- 4. A Deno app never downloads the clients it does not use ---

/** Every path under `dir` (recursively) whose last component is one of `names`. */
function findNamed(dir: string, names: readonly string[]): string[] {
  const found: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (names.includes(entry.name)) found.push(path);
      if (entry.isDirectory()) walk(path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return found;
}

const CLIENTS = ["ioredis", "@upstash"];

test(
  "a Deno app on the memory backend downloads neither ioredis nor @upstash/redis (and one using the redis backend does)",
  async () => {
    const [dir, removeDir] = tempDir("denoapp");
    try {
      const app = join(dir, "app");
      mkdirSync(app);
      // The clients are in the app's import map, as in a real app that may select them, so any
      // import of them that Deno can see (static, or a literal dynamic import: Deno fetches those
      // too, even when never run) would download them.
      const config = join(app, "deno.json");
      writeFileSync(
        config,
        JSON.stringify(
          {
            imports: {
              theus: new URL("mod.ts", `file://${ROOT}/`).href,
              ioredis: "npm:ioredis@^5.11.1",
              "@upstash/redis": "npm:@upstash/redis@^1.39.0",
            },
            nodeModulesDir: "none",
          },
          null,
          2,
        ),
      );
      writeFileSync(
        join(app, "main.ts"),
        `import { Counter, generateLatest, Registry } from "theus";

const registry = new Registry();
const hits = new Counter({ name: "deno_app_hits_total", help: "Hits", registry });
hits.inc(2);
console.log(await generateLatest(registry));
`,
      );
      writeFileSync(
        join(app, "control.ts"),
        `import { RedisBackend } from "${new URL("backends/redis.ts", `file://${ROOT}/`).href}";

console.log(\`control: \${typeof RedisBackend}\`);
`,
      );
      // The repository's own deno.json ("nodeModulesDir": "manual": ioredis from its
      // node_modules) must not take part: were it used to resolve the library's files, ioredis
      // would come from the repository's node_modules, nothing would be downloaded, and the check
      // would pass whatever the library imports (the control below catches that). Deno 2.9 takes
      // the config nearest to the entry point, never one next to an imported file, so the app's
      // own deno.json wins (it does even for an app inside the repository); --config pins it
      // anyway, whatever the discovery rules of the Deno version and the working directory.
      // --no-lock: the two apps share the directory and each run starts from nothing.
      const denoRun = (script: string, denoDir: string) =>
        run(DENO, ["run", "-A", "--no-lock", "--config", config, join(app, script)], {
          cwd: app,
          env: { DENO_DIR: denoDir, THEUS_BACKEND: undefined, THEUS_BACKEND_CONFIG: undefined },
          timeoutMs: 100_000,
        });

      const memoryDir = join(dir, "deno-dir-memory");
      const ran = await denoRun("main.ts", memoryDir);
      assert.equal(ran.code, 0, shown(ran));
      assert.match(ran.stdout, /^deno_app_hits_total 2$/m, shown(ran));
      assert.ok(existsSync(memoryDir), "the run did not use its DENO_DIR");
      assert.deepEqual(
        findNamed(memoryDir, CLIENTS),
        [],
        `the memory app downloaded a Redis client:\n${shown(ran)}`,
      );

      // The control: the same check sees a download when the redis backend is imported.
      const controlDir = join(dir, "deno-dir-control");
      const control = await denoRun("control.ts", controlDir);
      assert.equal(control.code, 0, shown(control));
      assert.match(control.stdout, /^control: function$/m, shown(control));
      assert.ok(
        findNamed(controlDir, ["ioredis"]).length > 0,
        `the control did not download ioredis, so the check above proves nothing:\n${shown(control)}`,
      );
    } finally {
      removeDir();
    }
  },
  { timeout: 180_000 },
);

// --- 5. THEUS_BACKEND on Deno, Bun and Node ---

interface Runtime {
  name: string;
  command: string;
  /** The arguments that run fixture `name` (without extension). */
  args(name: string): string[];
  /** THEUS_BACKEND for the counting backend, relative to the working directory (the root). */
  countingBackend: string;
}

const RUNTIMES: readonly Runtime[] = [
  {
    name: "deno",
    command: DENO,
    args: (name) => ["run", "-A", `tests/fixtures/bundles/${name}.ts`],
    countingBackend: "./tests/fixtures/bundles/counting_backend.ts#CountingBackend",
  },
  {
    name: "bun",
    command: BUN,
    args: (name) => [`tests/fixtures/bundles/${name}.ts`],
    countingBackend: "./tests/fixtures/bundles/counting_backend.ts#CountingBackend",
  },
  {
    name: "node",
    command: NODE,
    // The .mjs twin, on the built package; the user module is the build of counting_backend.ts.
    args: (name) => [`tests/fixtures/bundles/${name}.mjs`],
    countingBackend: "./dist/tests/fixtures/bundles/counting_backend.js#CountingBackend",
  },
];

const NODE_BUILT = ["dist/mod.js", "dist/tests/fixtures/bundles/counting_backend.js"];

/**
 * Runs env_child on every runtime with `env(runtime)` and hands each result to `check`, which
 * returns what is wrong (or nothing). Every runtime runs, whatever the others did; the failures
 * are reported together.
 */
async function onEveryRuntime(
  env: (runtime: Runtime) => Record<string, string>,
  check: (runtime: Runtime, ran: Ran) => Promise<string | undefined>,
): Promise<void> {
  assertBuilt(...NODE_BUILT);
  const problems: string[] = [];
  for (const runtime of RUNTIMES) {
    let ran: Ran;
    try {
      ran = await run(runtime.command, runtime.args("env_child"), { env: env(runtime), timeoutMs: 60_000 });
    } catch (error) {
      problems.push(`${runtime.name}: ${error instanceof Error ? error.message : String(error)}`);
      continue;
    }
    const problem = ran.code !== 0 || !ran.stdout.includes("env_child: flushed")
      ? "the child failed"
      : await check(runtime, ran);
    if (problem !== undefined) problems.push(`${runtime.name}: ${problem}\n${shown(ran)}`);
  }
  assert.ok(problems.length === 0, problems.join("\n\n"));
}

/** Checks that Redis holds `expected` for the env_child counter under `keyPrefix`. */
async function redisHolds(
  redis: Awaited<ReturnType<typeof startRedis>>,
  keyPrefix: string,
  expected: string,
): Promise<string | undefined> {
  const value = await redis.cli("HGET", seriesKey(keyPrefix, "bundles_env_hits_total"), "[]||");
  return value === expected ? undefined : `Redis holds ${JSON.stringify(value)}, not ${expected}`;
}

test(
  "THEUS_BACKEND=redis with a THEUS_BACKEND_CONFIG file writes to Redis on Deno, Bun and Node, without loadBackend()",
  async () => {
    const [dir, removeDir] = tempDir("envredis");
    const redis = await startRedis();
    try {
      await onEveryRuntime(
        (runtime) => {
          const file = join(dir, `${runtime.name}.json`);
          writeFileSync(file, JSON.stringify({ url: redis.url, keyPrefix: `bundles-file-${runtime.name}` }));
          return { THEUS_BACKEND: "redis", THEUS_BACKEND_CONFIG: file };
        },
        (runtime) => redisHolds(redis, `bundles-file-${runtime.name}`, "5"),
      );
    } finally {
      await redis.stop();
      removeDir();
    }
  },
  { timeout: 120_000 },
);

test(
  "THEUS_BACKEND=./module#Export loads a user's backend module on Deno, Bun and Node",
  async () => {
    const [dir, removeDir] = tempDir("envmodule");
    try {
      const file = join(dir, "config.json");
      writeFileSync(file, JSON.stringify({ from: "file" }));
      await onEveryRuntime(
        (runtime) => ({ THEUS_BACKEND: runtime.countingBackend, THEUS_BACKEND_CONFIG: file }),
        (_runtime, ran) => {
          const line = ran.stdout.split("\n").find((l) => l.startsWith("counting_backend: "));
          if (line === undefined) return Promise.resolve("the counting backend never flushed");
          const state = JSON.parse(line.slice("counting_backend: ".length));
          // The config from the file reached initialize(); the 5 increments reached the module.
          const expected = { config: { from: "file" }, values: { "bundles_env_hits_total|{}|": 5 } };
          return Promise.resolve(
            isDeepStrictEqual(state, expected)
              ? undefined
              : `the counting backend holds ${JSON.stringify(state)}, not ${JSON.stringify(expected)}`,
          );
        },
      );
    } finally {
      removeDir();
    }
  },
  { timeout: 120_000 },
);

test(
  "THEUS_BACKEND_CONFIG may hold inline JSON (starting with {) instead of a path, on Deno, Bun and Node",
  async () => {
    const redis = await startRedis();
    try {
      await onEveryRuntime(
        (runtime) => ({
          THEUS_BACKEND: "redis",
          THEUS_BACKEND_CONFIG: JSON.stringify({
            url: redis.url,
            keyPrefix: `bundles-inline-${runtime.name}`,
          }),
        }),
        (runtime) => redisHolds(redis, `bundles-inline-${runtime.name}`, "5"),
      );
    } finally {
      await redis.stop();
    }
  },
  { timeout: 120_000 },
);

// theus/runtime inside a real Workers runtime: a Worker bundled by esbuild as Wrangler does, run
// in workerd (Miniflare), with and without the nodejs_compat flag. It calls
// collectDefaultMetrics() at module scope (the default registry) and again on its first request
// (a registry of its own), and serves both through metricsHandler(). workerd measures nothing of
// its process that a Worker can read, so nothing runtime-specific is registered: the handles'
// names are empty, every /metrics answer is a valid exposition holding the Worker's own counter
// and no runtime family, the handles stop cleanly, and nothing is thrown or logged. On upstash, a
// Worker that serves /metrics for a fleet shows the runtime metrics the fleet's processes wrote.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Readable } from "node:stream";
import * as esbuild from "esbuild";
import { WORKER_BUILD } from "../_esbuild.ts";
import { Miniflare } from "miniflare";
import { test } from "../_harness.ts";
import { ROOT } from "../_root.ts";
import { assertOpenMetrics, assertPromtool } from "../_validate.ts";
import { collectDefaultMetrics, DEFAULT_METRICS } from "../../runtime/mod.ts";
import { flush, loadBackend, Registry } from "../../mod.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { startRedis } from "../_redis.ts";
import { startUpstashBridge } from "../_upstash_bridge.ts";

/** A compatibility date recent enough for nodejs_compat to give a `process` global (v2). */
const COMPATIBILITY_DATE = "2025-09-01";

const WORKER = `
import { Counter, metricsHandler, Registry } from "./mod.ts";
import { collectDefaultMetrics } from "./runtime/mod.ts";

// Module scope, as prom-client users write it: the default registry.
const atModuleScope = collectDefaultMetrics();
const hits = new Counter({ name: "runtime_worker_hits_total", help: "Hits", labelNames: ["registry"] });
const serveDefault = metricsHandler();

// On the first request, into a registry of the Worker's own, with the options a user might pass.
let late;
function lateStart() {
  if (late !== undefined) return late;
  const registry = new Registry();
  const handle = collectDefaultMetrics({
    registry,
    prefix: "app_",
    labels: { service: "worker" },
    eventLoopMonitoringPrecision: 5,
    updateIntervalMs: 100,
  });
  const counter = new Counter({ name: "runtime_worker_late_hits_total", help: "Hits", registry });
  late = { registry, handle, counter, serve: metricsHandler({ registry }) };
  return late;
}

// What workerd offers of the quantities theus/runtime measures elsewhere, for the test's report.
function probe() {
  const out = {};
  const attempt = (name, read) => {
    try {
      const value = read();
      out[name] = value === undefined ? "undefined" : JSON.stringify(value);
    } catch (error) {
      out[name] = "throws " + String(error && error.message || error).slice(0, 120);
    }
  };
  const p = globalThis.process;
  attempt("navigator.userAgent", () => globalThis.navigator?.userAgent);
  attempt("typeof process", () => typeof p);
  attempt("process.versions.node", () => p?.versions?.node);
  attempt("process.platform", () => p?.platform);
  attempt("typeof process.cpuUsage", () => typeof p?.cpuUsage);
  attempt("process.cpuUsage()", () => p?.cpuUsage?.());
  attempt("process.uptime()", () => p?.uptime?.());
  attempt("process.memoryUsage()", () => p?.memoryUsage?.());
  attempt("process.memoryUsage().rss", () => p?.memoryUsage?.()?.rss);
  attempt("typeof process.getBuiltinModule", () => typeof p?.getBuiltinModule);
  attempt("typeof process.getActiveResourcesInfo", () => typeof p?.getActiveResourcesInfo);
  attempt("process.getActiveResourcesInfo()", () => p?.getActiveResourcesInfo?.());
  attempt("node:fs /proc/self/status", () =>
    p?.getBuiltinModule?.("node:fs")?.readFileSync("/proc/self/status", "utf8")?.slice(0, 80));
  attempt("node:v8 getHeapStatistics", () => p?.getBuiltinModule?.("node:v8")?.getHeapStatistics?.());
  attempt("node:v8 getHeapSpaceStatistics", () => p?.getBuiltinModule?.("node:v8")?.getHeapSpaceStatistics?.()?.length);
  attempt("node:perf_hooks", () => Object.keys(p?.getBuiltinModule?.("node:perf_hooks") ?? {}));
  attempt("performance.eventLoopUtilization", () => typeof globalThis.performance?.eventLoopUtilization);
  attempt("performance.timeOrigin", () => globalThis.performance?.timeOrigin);
  attempt("performance.now()", () => globalThis.performance?.now());
  return out;
}

export default {
  async fetch(request) {
    const path = new URL(request.url).pathname;
    if (path === "/metrics") return serveDefault(request);
    if (path === "/late/metrics") return lateStart().serve(request);
    if (path === "/names") {
      return Response.json({ module: atModuleScope.names, request: lateStart().handle.names });
    }
    if (path === "/probe") return Response.json(probe());
    if (path === "/stop") {
      atModuleScope.stop();
      lateStart().handle.stop();
      // Idempotent.
      atModuleScope[Symbol.dispose]();
      return new Response("stopped");
    }
    hits.labels({ registry: "default" }).inc();
    lateStart().counter.inc();
    return new Response("ok");
  },
};
`;

async function bundle(source = WORKER): Promise<string> {
  try {
    const result = await esbuild.build({
      ...WORKER_BUILD,
      stdin: { contents: source, resolveDir: ROOT, loader: "js", sourcefile: "runtime_worker.js" },
    });
    return result.outputFiles[0].text;
  } finally {
    await esbuild.stop();
  }
}

/** The text of a Miniflare response, gunzipped: workerd shows the Worker `Accept-Encoding: gzip`. */
async function bodyText(response: { arrayBuffer(): Promise<ArrayBuffer> }): Promise<string> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return new TextDecoder().decode(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

const OPENMETRICS = "application/openmetrics-text; version=1.0.0";

/** Every metric name theus/runtime knows, with the prefix the late collection uses. */
const RUNTIME_NAMES = Object.values(DEFAULT_METRICS).flat();

/** Fails on any runtime metric family in an exposition. */
function assertNoRuntimeFamily(text: string, prefix = ""): void {
  for (const name of RUNTIME_NAMES) {
    const family = `${prefix}${name.replace(/_total$/, "")}`;
    assert.doesNotMatch(text, new RegExp(`^# TYPE ${family}(_total)? `, "m"), `${family} in\n${text}`);
  }
}

/**
 * The settings a Worker runs with. With nodejs_compat and process v2 (the default from
 * 2025-09-15), workerd's `process` looks like Node's: `process.versions.node`, `cpuUsage`,
 * `memoryUsage`, `uptime`, `node:v8`, `node:perf_hooks`, all stand-ins that answer zero or throw.
 */
const SETTINGS: readonly { flags: string[]; nodeLike: boolean }[] = [
  { flags: [], nodeLike: false },
  { flags: ["nodejs_compat"], nodeLike: false },
  { flags: ["nodejs_compat", "enable_nodejs_process_v2"], nodeLike: true },
  // Without navigator, workerd is still told apart from Node.
  { flags: ["nodejs_compat", "enable_nodejs_process_v2", "no_global_navigator"], nodeLike: true },
];

for (const { flags, nodeLike } of SETTINGS) {
  const setting = flags.length === 0 ? "no compatibility flag" : flags.join(", ");
  test(
    `collectDefaultMetrics() in workerd (${setting}) registers nothing, throws nothing, and /metrics serves the Worker's own metrics`,
    async () => {
      const code = await bundle();
      // The edge bundle holds no node: import (runtime/_host.ts reaches built-ins at run time).
      assert.doesNotMatch(code, /from\s*["']node:/, "the Worker bundle imports a node: module");
      let output = "";
      const mf = new Miniflare({
        modules: [{ type: "ESModule", path: "worker.js", contents: code }],
        compatibilityDate: COMPATIBILITY_DATE,
        compatibilityFlags: flags,
        handleRuntimeStdio(stdout: Readable, stderr: Readable) {
          stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
          stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        },
      });
      try {
        await mf.ready.catch((error) => {
          throw new Error(`${error}\n--- workerd output\n${output}`, { cause: error });
        });
        const get = async (path: string, accept?: string) => {
          const response = await mf.dispatchFetch(`http://worker.test${path}`, {
            headers: accept === undefined ? {} : { accept },
          });
          return {
            status: response.status,
            type: response.headers.get("content-type"),
            text: await bodyText(response),
          };
        };

        // The first request is a scrape: the module-scope collection is all there is yet.
        const first = await get("/metrics");
        assert.equal(first.status, 200, first.text);
        await assertPromtool(first.text);
        assertNoRuntimeFamily(first.text);

        const HITS = 3;
        for (let i = 0; i < HITS; i++) {
          const hit = await get("/");
          assert.equal(`${hit.status} ${hit.text}`, "200 ok", output);
        }

        // What workerd can measure: nothing, so both handles registered nothing.
        const names = JSON.parse((await get("/names")).text);
        assert.deepEqual(names, { module: [], request: [] });

        for (
          const [path, counter, prefix] of [
            ["/metrics", `runtime_worker_hits_total{registry="default"} ${HITS}`, ""],
            ["/late/metrics", `runtime_worker_late_hits_total ${HITS}`, "app_"],
          ] as const
        ) {
          // Twice, in both formats: every scrape works, not only the first.
          for (let round = 0; round < 2; round++) {
            const text = await get(path);
            assert.equal(text.status, 200, text.text);
            assert.match(text.type ?? "", /^text\/plain; version=0\.0\.4/);
            assert.ok(text.text.split("\n").includes(counter), `${path} lacks ${counter}:\n${text.text}`);
            assertNoRuntimeFamily(text.text, prefix);
            await assertPromtool(text.text);

            const open = await get(path, OPENMETRICS);
            assert.equal(open.status, 200, open.text);
            assert.match(open.type ?? "", /^application\/openmetrics-text; version=1\.0\.0/);
            const parsed = await assertOpenMetrics(open.text);
            const own = parsed.find((f) => f.name === counter.replace(/_total[{ ].*$/, ""));
            assert.ok(own !== undefined && own.type === "counter", `${path}: ${JSON.stringify(parsed)}`);
            assert.equal(own.samples.length, 1);
            assert.equal(own.samples[0][2], `${HITS}.0`);
          }
        }

        const probe = JSON.parse((await get("/probe")).text) as Record<string, string>;
        console.log(
          `workerd (${setting}) offers:\n${Object.entries(probe).map(([k, v]) => `  ${k}: ${v}`).join("\n")}`,
        );
        if (nodeLike) {
          // The setting really presents a Node-like process, whose readings are all zero: the
          // runtime is told apart by more than the presence of process.cpuUsage.
          assert.match(probe["process.versions.node"], /^"\d+\.\d+\.\d+"$/, JSON.stringify(probe));
          assert.equal(probe["typeof process.cpuUsage"], '"function"');
          assert.equal(probe["process.memoryUsage().rss"], "0");
          assert.equal(probe["process.uptime()"], "0");
        } else {
          assert.equal(probe["process.versions.node"], "undefined");
        }

        // stop() (and [Symbol.dispose], twice) on handles that hold nothing; /metrics goes on.
        const stopped = await get("/stop");
        assert.equal(`${stopped.status} ${stopped.text}`, "200 stopped");
        const after = await get("/metrics");
        assert.equal(after.status, 200, after.text);
        assert.ok(after.text.includes(`runtime_worker_hits_total{registry="default"} ${HITS}`), after.text);

        assert.doesNotMatch(output, /uncaught|unhandled|error|warn/i, output);
      } finally {
        await mf.dispose();
      }
    },
    { timeout: 60_000 },
  );
}

// A Worker that serves /metrics for a fleet on upstash: it measures nothing itself, yet shows
// every process's runtime metrics, since on a shared backend every family is registered.
const FLEET_WORKER = `
import { loadBackend, metricsHandler, Registry } from "./mod.ts";
import { UpstashBackend } from "./backends/upstash.ts";
import { collectDefaultMetrics } from "./runtime/mod.ts";

let app;
async function start(env) {
  await loadBackend({
    backend: UpstashBackend,
    config: { url: env.URL, token: env.TOKEN, keyPrefix: env.PREFIX, instanceId: "worker" },
  });
  const registry = new Registry();
  const handle = collectDefaultMetrics({ registry });
  return { names: handle.names, serve: metricsHandler({ registry }) };
}

export default {
  async fetch(request, env) {
    const { names, serve } = await (app ??= start(env));
    if (new URL(request.url).pathname === "/names") return Response.json(names);
    return serve(request);
  },
};
`;

test(
  "a Worker on upstash shows the runtime metrics a server process wrote, and writes none of its own",
  async () => {
    const redis = await startRedis();
    const bridge = await startUpstashBridge({ redisPort: redis.port });
    const keyPrefix = "runtime-worker-fleet";
    let output = "";
    let mf: Miniflare | undefined;
    try {
      // This process is the server: its runtime metrics go to the same Redis, over TCP.
      await loadBackend({
        backend: RedisBackend,
        config: { port: redis.port, keyPrefix, instanceId: "server" },
      });
      using server = collectDefaultMetrics({ registry: new Registry() });
      await flush();
      const rss = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"))![1]) * 1024;

      mf = new Miniflare({
        modules: [{ type: "ESModule", path: "worker.js", contents: await bundle(FLEET_WORKER) }],
        compatibilityDate: COMPATIBILITY_DATE,
        bindings: { URL: bridge.url, TOKEN: bridge.token, PREFIX: keyPrefix },
        handleRuntimeStdio(stdout: Readable, stderr: Readable) {
          stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
          stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        },
      });
      await mf.ready;
      const names = await (await mf.dispatchFetch("http://worker.test/names")).json() as string[];
      assert.deepEqual([...names].sort(), [...RUNTIME_NAMES].sort());

      const text = await bodyText(await mf.dispatchFetch("http://worker.test/metrics"));
      await assertPromtool(text, {
        allowLints: [/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/],
      });
      const samples = text.split("\n").filter((line) => line !== "" && !line.startsWith("#"));
      // Every runtime series is the server's: the Worker wrote none, not even zeros.
      assert.ok(samples.length >= server.names.length, text);
      for (const line of samples) assert.match(line, /theus_instance="server"/, line);
      const reported = Number(
        /^process_resident_memory_bytes\{theus_instance="server"\} (\S+)$/m.exec(text)?.[1],
      );
      assert.ok(
        Math.abs(reported - rss) < rss * 0.25,
        `the Worker shows RSS ${reported}, the server has ${rss}`,
      );
      assert.match(
        text,
        /^deno_version_info\{version="[\d.]+",major="\d+",minor="\d+",patch="\d+",theus_instance="server"\} 1$/m,
      );
      await assertOpenMetrics(
        await bodyText(
          await mf.dispatchFetch("http://worker.test/metrics", { headers: { accept: OPENMETRICS } }),
        ),
      );
      assert.doesNotMatch(output, /uncaught|unhandled|error/i, output);
    } finally {
      await mf?.dispose();
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
      await bridge.close();
      await redis.stop();
    }
  },
  { timeout: 60_000 },
);

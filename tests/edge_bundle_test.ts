// What an edge function ships: mod.ts and backends/upstash.ts bundled by esbuild for a worker
// (browser platform, the conditions Wrangler uses), with no node: import, nothing of ioredis and
// nothing of the Redis backend; mod.ts alone bundles without any client library. The bundle is
// then run as it is, against the REST bridge.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import * as esbuild from "esbuild";
import { labelsText, metricKey, shardOf } from "../backends/_remote/layout.ts";
import { WORKER_BUILD } from "./_esbuild.ts";
import { test } from "./_harness.ts";
import { startRedis } from "./_redis.ts";
import { startUpstashBridge } from "./_upstash_bridge.ts";
import { ROOT } from "./_root.ts";

const WORKER_ENTRY = `
import { Counter, loadBackend, metricsHandler, Registry, withFlush } from "./mod.ts";
import { UpstashBackend } from "./backends/upstash.ts";

export { loadBackend };

export async function createWorker(env: Record<string, string>) {
  await loadBackend({
    backend: UpstashBackend,
    config: { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN, keyPrefix: env.PREFIX },
  });
  const registry = new Registry();
  const hits = new Counter({ name: "edge_hits_total", help: "Hits", registry });
  const metrics = metricsHandler({ registry });
  return {
    fetch: withFlush((request: Request, _env: unknown, _ctx: unknown) => {
      if (new URL(request.url).pathname === "/metrics") return metrics(request);
      hits.inc();
      return new Response("ok");
    }),
  };
}
`;

const MOD_ENTRY = `export * from "./mod.ts";`;

interface Bundle {
  text: string;
  inputs: string[];
  externals: string[];
}

async function bundle(contents: string): Promise<Bundle> {
  const result = await esbuild.build({
    ...WORKER_BUILD,
    stdin: { contents, resolveDir: ROOT, loader: "ts", sourcefile: "entry.ts" },
    metafile: true,
  });
  const output = Object.values(result.metafile.outputs)[0];
  return {
    text: result.outputFiles[0].text,
    inputs: Object.keys(result.metafile.inputs),
    externals: output.imports.map((entry) => entry.path),
  };
}

const NODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)["']node:[\w/]+["']/;
// Code that only the Redis backend or its client brings. (The word "ioredis" alone may appear:
// the error message for a missing client names the package to install.)
const REDIS_CODE = ["IoredisTransport", "class RedisBackend", "RedisBackend = class", "ioredis:redis"];
const UPSTASH_CODE = [
  "Upstash-Encoding",
  "UpstashError",
  "UpstashTransport",
  "UpstashBackend = class",
];

function assertFree(b: Bundle, markers: readonly string[]): void {
  assert.doesNotMatch(b.text, NODE_IMPORT);
  assert.deepEqual(b.externals, [], "every import is bundled");
  for (const input of b.inputs) {
    assert.ok(!input.includes("node_modules/ioredis/") && input !== "backends/redis.ts", input);
  }
  for (const marker of markers) assert.ok(!b.text.includes(marker), `the bundle holds "${marker}"`);
}

test("mod.ts with backends/upstash.ts bundles for a worker without node:, ioredis or the Redis backend", async () => {
  try {
    const b = await bundle(WORKER_ENTRY);
    assertFree(b, REDIS_CODE);
    assert.ok(b.inputs.includes("backends/upstash.ts"));
    assert.ok(
      b.inputs.some((input) => input.includes("node_modules/@upstash/redis/")),
      "the client is bundled",
    );
    for (const input of b.inputs) {
      assert.ok(!input.startsWith("tests/"), input);
    }
    assert.ok(b.text.includes("Upstash-Encoding"), "the bundle really holds the Upstash client");
    // The control: the TCP backend cannot be bundled for a worker at all.
    await assert.rejects(
      bundle(`export * from "./backends/redis.ts";`),
      /node_modules\/ioredis\/.*Could not resolve/,
    );
  } finally {
    await esbuild.stop();
  }
});

test("mod.ts alone bundles without any client library, Upstash or Redis", async () => {
  try {
    const b = await bundle(MOD_ENTRY);
    assertFree(b, [...REDIS_CODE, ...UPSTASH_CODE]);
    assert.deepEqual(b.inputs.filter((input) => input.includes("node_modules/")), []);
    for (const input of ["backends/upstash.ts", "backends/redis.ts"]) {
      assert.ok(!b.inputs.includes(input), input);
    }
    assert.ok(b.inputs.includes("mod.ts") && b.inputs.includes("backends/memory.ts"));
  } finally {
    await esbuild.stop();
  }
});

test("the worker bundle runs on its own: one flush request per invocation, read back by /metrics", async () => {
  const dir = mkdtempSync(join(tmpdir(), "theus-edge-"));
  const redis = await startRedis();
  const bridge = await startUpstashBridge({ redisPort: redis.port });
  // deno-lint-ignore no-explicit-any
  let worker: any;
  try {
    const b = await bundle(WORKER_ENTRY);
    await esbuild.stop();
    const file = join(dir, "worker.mjs");
    writeFileSync(file, b.text);
    worker = await import(pathToFileURL(file).href);
    const env = {
      UPSTASH_REDIS_REST_URL: bridge.url,
      UPSTASH_REDIS_REST_TOKEN: bridge.token,
      PREFIX: "edge",
    };
    const app = await worker.createWorker(env);
    bridge.resetCounts();
    for (let i = 0; i < 3; i++) {
      const handed: Promise<unknown>[] = [];
      const ctx = { waitUntil: (promise: Promise<unknown>) => void handed.push(promise) };
      const response: Response = await app.fetch(new Request("https://edge.example/"), env, ctx);
      assert.equal(await response.text(), "ok");
      assert.equal(handed.length, 1);
      await handed[0];
    }
    // The first flush loads the script (EVALSHA, then EVAL); the others are one request each.
    assert.equal(bridge.counts.requests, 4);
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 3, EVAL: 1 });
    const key = metricKey("edge", "edge_hits_total", shardOf("edge_hits_total", labelsText({})));
    assert.equal(await redis.cli("HGET", key, "[]||"), "3");
    const metrics: Response = await app.fetch(new Request("https://edge.example/metrics"), env, {
      waitUntil() {},
    });
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /^edge_hits_total 3$/m);
  } finally {
    await worker?.loadBackend({ backend: "memory" });
    await bridge.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

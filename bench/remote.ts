/**
 * The remote backends measured in one process, against a real redis-server that the benchmark
 * starts on a free loopback port (and stops): the Redis backend over ioredis, and the Upstash
 * backend through the real @upstash/redis client, over HTTP, to the test bridge in front of the
 * same redis-server. Runs on Deno, Bun and Node:
 *
 *   ./node_modules/.bin/deno run -A bench/remote.ts [--quick] [--only redis,upstash]
 *   ./node_modules/.bin/bun bench/remote.ts [--quick] [--only redis,upstash]
 *   node <outDir>/bench/remote.js [--quick] [--only redis,upstash]   (after tsc; `npm run bench`)
 *
 * Each case compares theus with a baseline measured in the same run: the memory backend for the
 * hot path (ratio = redis ÷ memory, lower is better), and otherwise the naive way of writing to
 * Redis, one awaited command per update as pytheus does (ratio = how many times theus is
 * faster or cheaper, higher is better). Round trips are counted by Redis itself (`INFO
 * commandstats` after `CONFIG RESETSTAT`), HTTP requests by the bridge. The totals in Redis are
 * checked for both sides; the exit code is non-zero only when such a check fails.
 *
 * @module
 */

import { startRedis } from "../tests/_redis.ts";
import { ARGS, detectRuntime, onlyGroups, type Runtime, sink } from "./_harness.ts";
import { failures, settingsFor } from "./_remote_common.ts";
import { exitProcess, printReport } from "./_report.ts";
import { redisCases } from "./_remote_redis.ts";
import { upstashCases } from "./_remote_upstash.ts";

const quick = ARGS.includes("--quick");
// `--only redis,upstash` (or `remote` for both): run some groups of cases only.
const only = new Set(
  onlyGroups(["remote"]).flatMap((group) => group === "remote" ? ["redis", "upstash"] : [group]),
);
const runtime: Runtime = detectRuntime();
const settings = settingsFor(quick);

const started = performance.now();
console.log(`theus remote backends — ${runtime.version}${quick ? " — quick" : ""}`);
const server = await startRedis();
const redisVersion = (await server.cli("info", "server")).match(/^redis_version:(.*)$/m)?.[1]?.trim();
console.log(`redis-server ${redisVersion} on 127.0.0.1:${server.port}`);
try {
  if (only.has("redis")) await redisCases(settings, server);
  if (only.has("upstash")) await upstashCases(settings, server);
} catch (error) {
  failures.push(
    `the benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
  );
} finally {
  await server.stop();
}

printReport({
  runtime,
  kind: "remote",
  quick,
  ratios:
    `ratio: "redis hot" rows = redis / memory (lower is better); other rows = how many times theus is ` +
    "faster than the baseline (higher is better)",
  elapsedMs: performance.now() - started,
  sane: "theus and the baselines left the expected totals in Redis",
  sink,
});
// Nothing should be left open; exit anyway, so a stray handle cannot hang the run.
exitProcess();

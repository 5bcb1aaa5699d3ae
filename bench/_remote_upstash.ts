// The Upstash backend's cases, through the real @upstash/redis client over HTTP to the test
// bridge in front of a real redis-server: requests per invocation and per collection, and
// flush latency beside one awaited request per update.

import { Redis as IoRedis } from "ioredis";
import { Redis as UpstashRedis } from "@upstash/redis";
import {
  Counter,
  flush,
  generateLatest,
  Histogram,
  type HistogramSeries,
  loadBackend,
  Registry,
  type ValueSeries,
  withFlush,
} from "../mod.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import type { RedisServer } from "../tests/_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "../tests/_upstash_bridge.ts";
import { fmt, median } from "./_harness.ts";
import {
  atLeast,
  check,
  countRow,
  familyOf,
  hashSum,
  LABEL_NAMES,
  labelsOf,
  NAIVE_10K_SAMPLE,
  notes,
  SERIES,
  type Settings,
  valueSum,
} from "./_remote_common.ts";

/**
 * The Upstash backend through the bridge: HTTP requests per invocation and per collection,
 * and flush latency against one awaited request per update.
 *
 * @param s The settings.
 * @param server The redis-server behind the bridge.
 */
export async function upstashCases(s: Settings, server: RedisServer): Promise<void> {
  const bridge: UpstashBridge = await startUpstashBridge({ redisPort: server.port });
  const naive = new UpstashRedis({ url: bridge.url, token: bridge.token });
  const client = new IoRedis({ port: server.port, host: "127.0.0.1" });
  try {
    await upstashRequests(s, bridge, naive);
    await upstashLatency(s, bridge, naive, client);
  } finally {
    await loadBackend({ backend: "memory" });
    await bridge.close();
    client.disconnect();
  }
}

async function upstashRequests(s: Settings, bridge: UpstashBridge, naive: UpstashRedis): Promise<void> {
  await loadBackend({
    backend: UpstashBackend,
    config: { url: bridge.url, token: bridge.token, keyPrefix: "bench-up" },
  });
  const reg = new Registry();
  const hits = new Counter({ name: "up_hits_total", help: "h", labelNames: ["route"], registry: reg });
  const latency = new Histogram({ name: "up_seconds", help: "h", registry: reg });
  await flush(); // the script loaded (EVALSHA, NOSCRIPT, EVAL) if this Redis has not seen it

  // An invocation: five updates, then withFlush hands the flush to ctx.waitUntil.
  const handler = withFlush((_request: Request, _env: unknown, _ctx: unknown) => {
    hits.labels({ route: "/a" }).inc();
    hits.labels({ route: "/b" }).inc();
    latency.observe(0.012);
    latency.observe(0.2);
    hits.labels({ route: "/a" }).inc();
    return new Response("ok");
  });
  const waits: Promise<unknown>[] = [];
  const ctx = { waitUntil: (promise: Promise<unknown>) => void waits.push(promise) };
  bridge.resetCounts();
  for (let i = 0; i < s.invocations; i++) {
    await handler(new Request("http://localhost/"), {}, ctx);
    await Promise.all(waits.splice(0));
  }
  const perInvocation = bridge.counts.requests / s.invocations;
  const evalsha = (bridge.counts.commands.EVALSHA ?? 0) / s.invocations;
  // The naive way: one awaited command per update.
  bridge.resetCounts();
  for (let i = 0; i < s.invocations; i++) {
    await naive.hincrbyfloat("bench:up-naive", "a", 1);
    await naive.hincrbyfloat("bench:up-naive", "b", 1);
    await naive.hincrbyfloat("bench:up-naive", "le-0.025", 1);
    await naive.hincrbyfloat("bench:up-naive", "le-0.25", 1);
    await naive.hincrbyfloat("bench:up-naive", "a", 1);
  }
  const naivePer = bridge.counts.requests / s.invocations;
  countRow(
    "upstash HTTP requests per invocation (5 updates, withFlush)",
    perInvocation,
    `${naivePer.toFixed(2)} naive`,
    1,
    1,
  );
  notes.push(`upstash invocation: ${evalsha.toFixed(2)} EVALSHA per invocation`);

  const families = await reg.collect();
  const hitSeries = familyOf(families, "up_hits_total")!.series as ValueSeries[];
  check("upstash invocations: /a", hitSeries.find((s) => s.labels.route === "/a")?.value, 2 * s.invocations);
  check("upstash invocations: /b", hitSeries.find((s) => s.labels.route === "/b")?.value, s.invocations);
  const hist = familyOf(families, "up_seconds")!.series[0] as HistogramSeries;
  check("upstash invocations: observations", hist.count, 2 * s.invocations);

  // Collection: with pending changes (flush + read), and with nothing pending (read).
  hits.labels({ route: "/a" }).inc();
  latency.observe(0.3);
  bridge.resetCounts();
  await reg.collect();
  const pending = bridge.counts.requests;
  bridge.resetCounts();
  await generateLatest(reg);
  const clean = bridge.counts.requests;
  countRow("upstash HTTP requests per collection, after updates", pending, "-", 1, 2);
  countRow("upstash HTTP requests per collection, nothing pending", clean, "-", 1, 2);
}

async function upstashLatency(
  s: Settings,
  bridge: UpstashBridge,
  naive: UpstashRedis,
  client: IoRedis,
): Promise<void> {
  await loadBackend({
    backend: UpstashBackend,
    config: { url: bridge.url, token: bridge.token, keyPrefix: "bench-upf" },
  });
  const reg = new Registry();
  const counter = new Counter({ name: "upf_total", help: "h", labelNames: LABEL_NAMES, registry: reg });
  const children = Array.from({ length: SERIES }, (_, i) => counter.labels(labelsOf(i)));
  await flush(); // the series' creation
  const expected = new Array<number>(SERIES).fill(0);
  const fields = children.map((_, i) => `f${i}`);
  let naiveTotal = 0;
  let requestsMax = 0;
  // Warm-up (the JIT, the bridge, keep-alive connections): untimed flushes and naive requests.
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 100; i++) {
      children[i].inc();
      expected[i]++;
    }
    await flush();
    await naive.hincrbyfloat("bench:upf-naive", fields[round], 1);
    naiveTotal++;
  }
  for (const size of [1, 100, SERIES]) {
    const rounds = size === SERIES ? s.latencyRounds10k : s.latencyRounds;
    const ms: number[] = [];
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < size; i++) {
        children[i].inc();
        expected[i]++;
      }
      bridge.resetCounts();
      const start = performance.now();
      await flush();
      ms.push(performance.now() - start);
      requestsMax = Math.max(requestsMax, bridge.counts.requests);
    }
    // Naive: one awaited request per update; 10,000 are extrapolated from a sample.
    const sample = Math.min(size, NAIVE_10K_SAMPLE);
    const naiveRounds = size === 1 ? s.latencyRounds : size === SERIES ? 1 : 3;
    const naiveMs: number[] = [];
    bridge.resetCounts();
    for (let round = 0; round < naiveRounds; round++) {
      const start = performance.now();
      for (let i = 0; i < sample; i++) await naive.hincrbyfloat("bench:upf-naive", fields[i], 1);
      naiveMs.push(((performance.now() - start) * size) / sample);
      naiveTotal += sample;
    }
    check(`upstash naive ${size}: requests`, bridge.counts.requests, sample * naiveRounds);
    const theus = median(ms);
    const base = median(naiveMs);
    const name = size === SERIES ? "10k" : String(size);
    atLeast(
      `upstash flush of ${name} changed series (median)`,
      fmt(theus, "ms"),
      `${fmt(base, "ms")} naive${sample < size ? ` (${sample} x${size / sample})` : ""}`,
      base / theus,
    );
  }
  countRow("  HTTP requests per flush", requestsMax, "1 per update", 1, 1);
  const family = familyOf(await reg.collect(), "upf_total");
  check("upstash latency: total in Redis", valueSum(family), expected.reduce((a, b) => a + b, 0));
  check(
    "upstash latency: first series",
    ((family?.series ?? []) as ValueSeries[]).find((s) =>
      s.labels.method === "M0" && s.labels.status === "S00"
    )?.value,
    expected[0],
  );
  check("upstash naive: total in Redis", await hashSum(client, "bench:upf-naive"), naiveTotal);
}

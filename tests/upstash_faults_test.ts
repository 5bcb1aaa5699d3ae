// The Upstash backend while the REST bridge fails: 500s, connections dropped after the command
// ran (the ambiguous case), answers slower than requestTimeoutMs. Recording never throws, no
// promise is left rejected, and once the bridge recovers the totals are exact: nothing lost,
// nothing counted twice. A scrape that cannot read the backend is a clear 503.
//
// @upstash/redis retries network errors itself (5 times, about 4.3 s in all) with the same
// body; the batch id makes those retries harmless too.

import assert from "node:assert/strict";
import process from "node:process";
import {
  Counter,
  defaultRegistry,
  flush,
  Gauge,
  Histogram,
  loadBackend,
  metricsHandler,
  Registry,
  type ValueFamily,
} from "../mod.ts";
import { UpstashBackend, type UpstashBackendConfig } from "../backends/upstash.ts";
import { labelsText, metricKey, shardOf } from "../backends/_remote/layout.ts";
import { runtime, test } from "./_harness.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "./_upstash_bridge.ts";

// --- Helpers ---

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let prefixes = 0;
function uniquePrefix(name: string): string {
  return `faults-${name}-${++prefixes}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Records unhandled rejections while `fn` runs, with the runtime's own hook. */
async function noUnhandledRejections(fn: () => Promise<void>): Promise<void> {
  const reasons: unknown[] = [];
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  const onEvent = (event: { reason: unknown; preventDefault(): void }) => {
    event.preventDefault();
    reasons.push(event.reason);
  };
  const onProcess = (reason: unknown) => void reasons.push(reason);
  if (runtime === "deno") g.addEventListener("unhandledrejection", onEvent);
  else process.on("unhandledRejection", onProcess);
  try {
    await fn();
    // Rejections are reported after the microtask queue drains.
    await sleep(50);
  } finally {
    if (runtime === "deno") g.removeEventListener("unhandledrejection", onEvent);
    else process.off("unhandledRejection", onProcess);
  }
  assert.deepEqual(reasons.map(String), [], "unhandled rejections");
}

interface Scenario {
  redis: RedisServer;
  bridge: UpstashBridge;
  prefix: string;
  config: UpstashBackendConfig;
}

/** A fresh redis-server, bridge and Upstash store; restores memory and stops both after. */
async function scenario(
  name: string,
  extra: Partial<UpstashBackendConfig>,
  fn: (s: Scenario) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  let bridge: UpstashBridge | undefined;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    const prefix = uniquePrefix(name);
    const config = { url: bridge.url, token: bridge.token, keyPrefix: prefix, ...extra };
    await loadBackend({ backend: UpstashBackend, config });
    await noUnhandledRejections(() => fn({ redis, bridge: bridge!, prefix, config }));
  } finally {
    try {
      await loadBackend({ backend: "memory" });
    } finally {
      await bridge?.close();
      await redis.stop();
    }
  }
}

/** The library's own health series for one key prefix, read without flushing. */
async function health(prefix: string): Promise<{ pending: number; failures: number }> {
  const collector = defaultRegistry.get("theus_backend");
  assert.ok(collector !== undefined, "the health collector is registered");
  const families = await collector.collect();
  const read = (name: string) =>
    (families.find((f) => f.name === name) as ValueFamily).series
      .filter((s) => s.labels.backend === "upstash" && s.labels.key_prefix === prefix)
      .reduce((sum, s) => sum + s.value, 0);
  return { pending: read("theus_backend_pending_series"), failures: read("theus_backend_flush_failures") };
}

/** Calls flush() until nothing is pending; fails after `attempts`. */
async function flushUntilDrained(prefix: string, attempts = 10): Promise<number> {
  for (let i = 1; i <= attempts; i++) {
    await flush();
    if ((await health(prefix)).pending === 0) return i;
    // A request that timed out may still be answered: its batches wait for that answer.
    await sleep(200);
  }
  assert.fail(`still ${(await health(prefix)).pending} series pending after ${attempts} flushes`);
}

/** Metrics whose expected totals the test keeps alongside. */
function workload(registry: Registry) {
  const requests = new Counter({ name: "fault_requests_total", help: "R", labelNames: ["route"], registry });
  const latency = new Histogram({ name: "fault_latency", help: "L", buckets: [1, 10], registry });
  const inflight = new Gauge({ name: "fault_inflight", help: "I", registry });
  const expected = { a: 0, b: 0, count: 0, sum: 0, low: 0, inflight: 0 };
  return {
    expected,
    /** One round of updates; recording must never throw, whatever the bridge does. */
    record(round: number): void {
      assert.doesNotThrow(() => {
        for (let i = 0; i < 50; i++) {
          requests.labels({ route: "/a" }).inc();
          requests.labels({ route: "/b" }).inc(0.5);
          latency.observe(i % 2 === 0 ? 0.5 : 4);
          inflight.inc(2);
          inflight.dec();
        }
      });
      expected.a += 50;
      expected.b += 25;
      expected.count += 50;
      expected.sum += 25 * 0.5 + 25 * 4;
      expected.low += 25;
      expected.inflight += 50;
      // A series first seen in this round.
      requests.labels({ route: `/round${round}` }).inc(round);
    },
    /** The exposition lines of the expected totals after `rounds` rounds. */
    lines(rounds: number): string[] {
      const lines = [
        `fault_requests_total{route="/a"} ${expected.a}`,
        `fault_requests_total{route="/b"} ${expected.b}`,
        `fault_latency_bucket{le="1.0"} ${expected.low}`,
        `fault_latency_bucket{le="10.0"} ${expected.count}`,
        `fault_latency_bucket{le="+Inf"} ${expected.count}`,
        `fault_latency_sum ${expected.sum}`,
        `fault_latency_count ${expected.count}`,
        `fault_inflight ${expected.inflight}`,
      ];
      for (let r = 1; r <= rounds; r++) lines.push(`fault_requests_total{route="/round${r}"} ${r}`);
      return lines;
    },
  };
}

/** Uses up the failures still queued in the bridge, with harmless PINGs of our own. */
async function useUpFailures(bridge: UpstashBridge): Promise<void> {
  for (let i = 0; i < 50; i++) {
    try {
      const response = await fetch(bridge.url, {
        method: "POST",
        headers: { authorization: `Bearer ${bridge.token}` },
        body: JSON.stringify(["PING"]),
      });
      const ok = response.ok;
      await response.body?.cancel();
      if (ok) return;
    } catch {
      // dropped: one failure used up
    }
  }
  assert.fail("the bridge kept failing");
}

async function scrape(registry: Registry): Promise<Response> {
  return await metricsHandler({ registry })(new Request("http://localhost/metrics"));
}

async function assertExact(
  registry: Registry,
  redis: RedisServer,
  prefix: string,
  w: ReturnType<typeof workload>,
  rounds: number,
) {
  const response = await scrape(registry);
  assert.equal(response.status, 200);
  const text = await response.text();
  for (const line of w.lines(rounds)) {
    assert.ok(text.split("\n").includes(line), `missing ${line} in\n${text}`);
  }
  // The same totals in Redis itself, in the hash of the series' shard.
  const raw = await redis.cli(
    "HGET",
    metricKey(prefix, "fault_requests_total", shardOf("fault_requests_total", labelsText({ route: "/a" }))),
    `${labelsText({ route: "/a" })}||`,
  );
  assert.equal(Number(raw), w.expected.a);
}

// --- Scenarios ---

test("500s: flush() resolves, changes are kept, and the totals are exact after recovery", async () => {
  await scenario("500", {}, async ({ redis, bridge, prefix }) => {
    const registry = new Registry();
    const w = workload(registry);
    w.record(1);
    await flush(); // loads the script
    assert.equal((await health(prefix)).pending, 0);

    bridge.fail("500", 4);
    const before = (await health(prefix)).failures;
    w.record(2);
    await flush();
    w.record(3);
    // Concurrent flushes are serialized (they never overlap) and resolve, failing or not.
    await Promise.all([flush(), flush(), flush()]);
    const during = await health(prefix);
    assert.ok(during.pending > 0, "the failed changes are kept");
    assert.ok(during.failures >= before + 2, `failures ${before} -> ${during.failures}`);
    w.record(4);
    await flushUntilDrained(prefix);
    await assertExact(registry, redis, prefix, w, 4);
  });
});

test(
  "dropped connections after the command ran: the client's retries and ours never count twice",
  async () => {
    await scenario("drop", { requestTimeoutMs: 10_000 }, async ({ redis, bridge, prefix }) => {
      const registry = new Registry();
      const w = workload(registry);
      w.record(1);
      await flush();

      // Fewer drops than the client's attempts (the backend allows it one quick retry): the flush
      // succeeds, the batch ran twice and counted once.
      bridge.fail("drop", 1);
      bridge.resetCounts();
      w.record(2);
      await flush();
      assert.equal((await health(prefix)).pending, 0);
      assert.ok((bridge.counts.commands.EVALSHA ?? 0) >= 2, JSON.stringify(bridge.counts.commands));
      await assertExact(registry, redis, prefix, w, 2);

      // More drops than the client's 1 + 1 attempts (Deno's fetch may resend a POST once more on
      // its own): the flush fails quickly, although the first attempt applied the batch and every
      // later one skipped it. UpstashBackend.flush() makes one attempt; the next flush retries.
      bridge.fail("drop", 12);
      bridge.resetCounts();
      w.record(3);
      const failures = (await health(prefix)).failures;
      const started = performance.now();
      await UpstashBackend.flush();
      const elapsed = performance.now() - started;
      assert.equal((await health(prefix)).failures, failures + 1, "the flush failed");
      assert.ok(elapsed < 2000, `the client retried for ${elapsed} ms`);
      assert.ok((bridge.counts.commands.EVALSHA ?? 0) >= 2, JSON.stringify(bridge.counts.commands));
      await useUpFailures(bridge);
      w.record(4);
      await flushUntilDrained(prefix);
      await assertExact(registry, redis, prefix, w, 4);
    });
  },
  { timeout: 30_000 },
);

test("answers slower than requestTimeoutMs fail the flush; the late answers count once", async () => {
  await scenario("slow", { requestTimeoutMs: 200 }, async ({ redis, bridge, prefix }) => {
    const registry = new Registry();
    const w = workload(registry);
    w.record(1);
    await flush();

    bridge.fail("slow", 2, 800);
    w.record(2);
    const failures = (await health(prefix)).failures;
    const started = performance.now();
    const pendingFlush = UpstashBackend.flush();
    // The event loop keeps turning and recording stays synchronous while the flush hangs.
    await sleep(20);
    w.record(3);
    await pendingFlush;
    const elapsed = performance.now() - started;
    assert.ok(elapsed >= 150 && elapsed < 700, `the flush gave up after ${elapsed} ms`);
    assert.equal((await health(prefix)).failures, failures + 1);
    assert.ok((await health(prefix)).pending > 0, "the batch is kept");
    // The timed-out request may still run: its batches wait for its answer rather than go again,
    // and the flush says so.
    await UpstashBackend.flush();
    assert.equal((await health(prefix)).failures, failures + 2);
    assert.ok((await health(prefix)).pending > 0);
    w.record(4);
    await flushUntilDrained(prefix);
    await assertExact(registry, redis, prefix, w, 4);
    // The late answers of the timed-out requests arrive now; nothing moves, nothing rejects.
    await sleep(Math.max(0, 1200 - (performance.now() - started)));
    await assertExact(registry, redis, prefix, w, 4);
  });
});

test("a request abandoned at requestTimeoutMs that fails later leaves no unhandled rejection", async () => {
  await scenario("abandoned", { requestTimeoutMs: 300 }, async ({ redis, bridge, prefix }) => {
    const registry = new Registry();
    const w = workload(registry);
    w.record(1);
    await flush();

    // The flush gives up at 300 ms; the client goes on retrying the dropped request in the
    // background (each attempt applied or skipped) and rejects once its attempts run out.
    bridge.fail("drop", 12);
    w.record(2);
    const failures = (await health(prefix)).failures;
    const started = performance.now();
    await UpstashBackend.flush();
    assert.ok(performance.now() - started < 1000, "the flush gave up at requestTimeoutMs");
    assert.equal((await health(prefix)).failures, failures + 1);
    w.record(3);
    // Past the client's last retry (about 4.3 s): its rejection has happened, and was handled.
    await sleep(Math.max(0, 4800 - (performance.now() - started)));
    await useUpFailures(bridge);
    w.record(4);
    await flushUntilDrained(prefix);
    await assertExact(registry, redis, prefix, w, 4);
  });
}, { timeout: 30_000 });

test("a scrape while the bridge answers 500 is a 503 with a clear message; the next one is exact", async () => {
  await scenario("scrape500", {}, async ({ redis, bridge, prefix }) => {
    const registry = new Registry();
    const w = workload(registry);
    for (let m = 0; m < 30; m++) {
      new Gauge({ name: `fault_extra_${m}`, help: "E", labelNames: ["a"], registry });
    }
    w.record(1);
    await flush();
    bridge.fail("500", 1);
    const response = await scrape(registry);
    assert.equal(response.status, 503);
    assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
    const body = await response.text();
    assert.ok(
      body.startsWith(`Cannot collect metrics: Cannot read metrics from ${bridge.url}: ERR injected failure`),
      body,
    );
    // The message stays short: not the whole command, whatever the number of metrics.
    assert.ok(body.length < 200, `${body.length} characters: ${body.slice(0, 400)}`);
    assert.ok(!body.includes(bridge.token));
    await assertExact(registry, redis, prefix, w, 1);
  });
});

test("a scrape with a token the bridge refuses (401) is a 503 naming the reason", async () => {
  await scenario("scrape401", {}, async ({ bridge }) => {
    const token = `not-${bridge.token}`;
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token, keyPrefix: uniquePrefix("401") },
    });
    const registry = new Registry();
    // Labelled metrics without children: nothing is buffered for a store that can never write.
    new Counter({ name: "refused_total", help: "R", labelNames: ["a"], registry });
    new Histogram({ name: "refused_seconds", help: "S", labelNames: ["a"], registry });
    const response = await scrape(registry);
    assert.equal(response.status, 503);
    const body = await response.text();
    assert.ok(
      body.startsWith(`Cannot collect metrics: Cannot read metrics from ${bridge.url}: Unauthorized`),
      body,
    );
    assert.ok(!body.includes(token));
    // One request (a script call of its own), not retried.
    assert.deepEqual(bridge.counts.byPath, { "/": 1 });
  });
});

// The Upstash backend through the real @upstash/redis client, which the backend creates from
// url and token, against the REST bridge over a real redis-server: config errors, config from
// the environment, requests per flush and per collection, the EVAL fallback, token redaction,
// one key layout shared with the Redis backend, and withFlush().

import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import Redis from "ioredis";
import {
  Counter,
  defaultRegistry,
  flush,
  Gauge,
  Histogram,
  type HistogramFamily,
  type Labels,
  loadBackend,
  type MetricFamily,
  metricsHandler,
  Registry,
  Summary,
  type ValueFamily,
  withFlush,
} from "../mod.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import { RedisBackend } from "../backends/redis.ts";
import { indexKey, labelsText, metricKey, shardOf, SHARDS, shardTags } from "../backends/_remote/layout.ts";
import { CALL_SERIES, STEP_CHANGES, STEP_SERIES } from "../backends/_remote/writer.ts";
import { BackendUnavailableError } from "../core/backend.ts";
import { runtime, test } from "./_harness.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { startUpstashBridge, type UpstashBridge } from "./_upstash_bridge.ts";

// --- Helpers ---

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

let prefixes = 0;
/** A key prefix no other test (or file, on Bun's shared process) uses. */
function uniquePrefix(name: string): string {
  return `upstash-${name}-${++prefixes}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Runs `fn` with a fresh redis-server and bridge, then restores memory and stops both. */
async function withBridge(fn: (redis: RedisServer, bridge: UpstashBridge) => Promise<void>): Promise<void> {
  const redis = await startRedis();
  let bridge: UpstashBridge | undefined;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    await fn(redis, bridge);
  } finally {
    try {
      await loadBackend({ backend: "memory" });
    } finally {
      await bridge?.close();
      await redis.stop();
    }
  }
}

async function withEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.keys(vars).map((name) => [name, process.env[name]] as const);
  const apply = (entries: Iterable<readonly [string, string | undefined]>) => {
    for (const [name, value] of entries) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(Object.entries(vars));
  try {
    return await fn();
  } finally {
    apply(saved);
  }
}

const NO_UPSTASH_ENV = { UPSTASH_REDIS_REST_URL: undefined, UPSTASH_REDIS_REST_TOKEN: undefined };

/** The field of a counter or gauge series in its metric's hash. */
function field(labels: Labels, bucket = ""): string {
  return `${labelsText(labels)}|${bucket}|`;
}

/** The hash that holds a series of a metric: its shard's, by the metric's name and the labels. */
function seriesKey(prefix: string, metric: string, labels: Labels): string {
  return metricKey(prefix, metric, shardOf(metric, labelsText(labels)));
}

/** A counter or gauge series' value, read from its shard's hash. */
async function hget(redis: RedisServer, prefix: string, metric: string, labels: Labels): Promise<number> {
  return Number(await redis.cli("HGET", seriesKey(prefix, metric, labels), field(labels)));
}

/** The library's own health series for one key prefix, read without flushing. */
async function health(prefix: string): Promise<{ pending: number; failures: number }> {
  const collector = defaultRegistry.get("theus_backend");
  assert.ok(collector !== undefined, "the health collector is registered");
  const families = await collector.collect();
  const read = (name: string) => {
    const family = families.find((f) => f.name === name) as ValueFamily;
    return family.series
      .filter((s) => s.labels.backend === "upstash" && s.labels.key_prefix === prefix)
      .reduce((sum, s) => sum + s.value, 0);
  };
  return { pending: read("theus_backend_pending_series"), failures: read("theus_backend_flush_failures") };
}

/** Everything written to the console while `fn` runs. */
async function captureConsole(fn: () => Promise<void>): Promise<string> {
  const methods = ["log", "info", "warn", "error", "debug"] as const;
  const saved = methods.map((method) => console[method]);
  const lines: string[] = [];
  for (const method of methods) {
    console[method] = (...args: unknown[]) => {
      lines.push(args.map((a) => (a instanceof Error ? `${a.message} ${a.stack}` : String(a))).join(" "));
    };
  }
  try {
    await fn();
  } finally {
    methods.forEach((method, i) => (console[method] = saved[i]));
  }
  return lines.join("\n");
}

// --- Config errors ---

test("UpstashBackend without url or token is a TypeError naming UPSTASH_REDIS_REST_URL and _TOKEN", async () => {
  await withEnv(NO_UPSTASH_ENV, async () => {
    await assert.rejects(
      loadBackend({ backend: UpstashBackend, config: {} }),
      (e: unknown) =>
        e instanceof TypeError && /no url/.test(e.message) && e.message.includes("UPSTASH_REDIS_REST_URL"),
    );
    await assert.rejects(
      loadBackend({ backend: "upstash", config: { url: "https://example.upstash.io" } }),
      (e: unknown) =>
        e instanceof TypeError && /no token/.test(e.message) &&
        e.message.includes("UPSTASH_REDIS_REST_TOKEN"),
    );
    await assert.rejects(
      loadBackend({ backend: UpstashBackend, config: { token: "tok", url: "" } }),
      (e: unknown) => e instanceof TypeError && e.message.includes("UPSTASH_REDIS_REST_URL"),
    );
  });
});

test("UpstashBackend rejects a url that is not http(s), without quoting the token", async () => {
  const token = "s3cret-token-in-a-bad-config";
  for (const url of ["redis://127.0.0.1:6379", "ftp://example.com", "not a url"]) {
    await assert.rejects(
      loadBackend({ backend: UpstashBackend, config: { url, token } }),
      (e: unknown) =>
        e instanceof TypeError && e.message.includes("http:// or https://") && !e.message.includes(token),
      url,
    );
  }
});

test("UpstashBackend rejects a client without evalsha() and eval()", async () => {
  const clients = [{ eval: () => Promise.resolve(0) }, { evalsha: () => Promise.resolve(0) }, null, "client"];
  for (const client of clients) {
    await assert.rejects(
      loadBackend({ backend: UpstashBackend, config: { client } }),
      (e: unknown) => e instanceof TypeError && /client must be an @upstash\/redis client/.test(e.message),
    );
  }
  await assert.rejects(
    loadBackend({
      backend: UpstashBackend,
      config: { url: "http://127.0.0.1:1", token: "t", requestTimeoutMs: -1 },
    }),
    (e: unknown) => e instanceof TypeError && e.message.includes("requestTimeoutMs"),
  );
});

test("UpstashBackend reads url and token from UPSTASH_REDIS_REST_URL and _TOKEN", async () => {
  await withBridge(async (redis, bridge) => {
    const env = { UPSTASH_REDIS_REST_URL: bridge.url, UPSTASH_REDIS_REST_TOKEN: bridge.token };
    // Named in code, config from the environment.
    const prefix = uniquePrefix("env");
    await withEnv(env, () => loadBackend({ backend: "upstash", config: { keyPrefix: prefix } }));
    const c = new Counter({ name: "env_hits_total", help: "Hits", registry: null });
    c.inc(3);
    await flush();
    assert.equal(await hget(redis, prefix, "env_hits_total", {}), 3);
    // Everything from the environment: THEUS_BACKEND and the Upstash variables.
    await withEnv({ ...env, THEUS_BACKEND: "upstash", THEUS_BACKEND_CONFIG: undefined }, () => loadBackend());
    const d = new Counter({ name: "env_only_total", help: "Hits", registry: null });
    d.inc(4);
    await flush();
    assert.equal(await hget(redis, "theus", "env_only_total", {}), 4);
    assert.equal(await d.get(), 4);
  });
});

// --- Requests per flush and per collection ---

test("a flush is one HTTP request and one EVALSHA for 1, 100 and 10,000 changed series; 24 batches' worth two per shard", async () => {
  await withBridge(async (redis, bridge) => {
    const prefix = uniquePrefix("perflush");
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token: bridge.token, keyPrefix: prefix },
    });
    const registry = new Registry();
    const c = new Counter({ name: "batch_total", help: "Batch", labelNames: ["series"], registry });
    // What each series should hold, kept by the test.
    const expected = new Map<string, number>();
    const change = (name: string, n: number, by: number): number[] => {
      const perShard = new Array<number>(SHARDS).fill(0);
      for (let i = 0; i < n; i++) {
        const series = `${name}-${i}`;
        c.labels({ series }).inc(by);
        expected.set(series, (expected.get(series) ?? 0) + by);
        perShard[shardOf("batch_total", labelsText({ series }))]++;
      }
      return perShard;
    };
    // Warm-up: the first flush loads the script (EVALSHA answers NOSCRIPT, then EVAL).
    change("warm", 1, 1);
    await flush();
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 1, EVAL: 1 });
    const measured: string[] = [];
    const rounds: [string, number, number][] = [["1", 1, 1], ["100", 100, 2], ["10k", 10_000, 3], [
      "10k",
      10_000,
      4,
    ]];
    for (const [name, n, by] of rounds) {
      const perShard = change(name, n, by);
      // 100 series and more touch every shard: still one script call, one request.
      if (n >= 100) assert.ok(perShard.every((k) => k > 0), `${n} series by shard: ${perShard.join(" ")}`);
      bridge.resetCounts();
      const started = performance.now();
      await flush();
      measured.push(`${n}${by === 4 ? " again" : ""}: ${(performance.now() - started).toFixed(1)} ms`);
      assert.equal(bridge.counts.requests, 1, `${n} series`);
      assert.deepEqual(bridge.counts.byPath, { "/": 1 });
      assert.deepEqual(bridge.counts.commands, { EVALSHA: 1 });
      assert.equal((await health(prefix)).pending, 0);
    }
    // 24 batches' worth of new series, more than one call takes (CALL_SERIES). A larger flush goes
    // in calls of at most STEP_SERIES series and STEP_CHANGES changes of values, one shard's
    // batches each over HTTP, a batch at most STEP_SERIES series: with between one and two
    // batches' worth in every shard, each shard makes two calls (two requests), one after the
    // other.
    const large = 24 * STEP_SERIES;
    assert.ok(large > CALL_SERIES);
    const perShard = change("large", large, 5);
    assert.ok(
      perShard.every((k) => k > STEP_SERIES && k < 2 * STEP_SERIES && k < STEP_CHANGES),
      perShard.join(" "),
    );
    bridge.resetCounts();
    const started = performance.now();
    await flush();
    measured.push(`${large}: ${(performance.now() - started).toFixed(1)} ms`);
    assert.equal(bridge.counts.requests, 2 * SHARDS);
    assert.deepEqual(bridge.counts.byPath, { "/": 2 * SHARDS });
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 2 * SHARDS });
    assert.equal((await health(prefix)).pending, 0);
    console.log(`upstash flush latency on ${runtime}: ${measured.join(", ")}`);

    // Every value exact: in Redis, over the shards' hashes, and read back through the backend.
    let stored = 0;
    for (let shard = 0; shard < SHARDS; shard++) {
      stored += Number(await redis.cli("HLEN", metricKey(prefix, "batch_total", shard)));
    }
    assert.equal(stored, 1 + 1 + 100 + 10_000 + large);
    assert.equal(await hget(redis, prefix, "batch_total", { series: "1-0" }), 1);
    assert.equal(await hget(redis, prefix, "batch_total", { series: "100-99" }), 2);
    assert.equal(await hget(redis, prefix, "batch_total", { series: "10k-0" }), 7);
    assert.equal(await hget(redis, prefix, "batch_total", { series: "10k-9999" }), 7);
    assert.equal(await hget(redis, prefix, "batch_total", { series: `large-${large - 1}` }), 5);
    const family = (await registry.collect()).find((f) => f.name === "batch") as ValueFamily;
    assert.equal(family.series.length, expected.size);
    for (const { labels, value } of family.series) {
      assert.equal(value, expected.get(labels.series), labels.series);
    }
  });
});

test("a collection of many metrics is one HTTP request (two while the script loads)", async () => {
  await withBridge(async (_redis, bridge) => {
    const prefix = uniquePrefix("collect");
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token: bridge.token, keyPrefix: prefix },
    });
    const registry = new Registry();
    for (let m = 0; m < 20; m++) {
      const c = new Counter({ name: `many_c${m}_total`, help: "C", labelNames: ["i"], registry });
      const g = new Gauge({ name: `many_g${m}`, help: "G", registry });
      const h = new Histogram({
        name: `many_h${m}`,
        help: "H",
        buckets: [1, 10],
        labelNames: ["i"],
        registry,
      });
      const s = new Summary({ name: `many_s${m}`, help: "S", registry });
      for (let i = 0; i < 10; i++) {
        c.labels({ i: String(i) }).inc(m + i);
        h.labels({ i: String(i) }).observe(i);
      }
      g.set(m);
      s.observe(m);
    }
    await flush();
    // The first collection loads the collection script; the ones after are one request each.
    for (const expected of [2, 1, 1]) {
      bridge.resetCounts();
      const families = await registry.collect();
      assert.equal(bridge.counts.requests, expected);
      assert.equal(families.length, 80);
      const c7 = families.find((f) => f.name === "many_c7") as ValueFamily;
      assert.equal(c7.series.length, 10);
      assert.equal(c7.series.find((s) => s.labels.i === "3")?.value, 10);
      const h19 = families.find((f) => f.name === "many_h19") as HistogramFamily;
      assert.deepEqual(h19.series.find((s) => s.labels.i === "5"), {
        labels: { i: "5" },
        buckets: [0, 1, 1],
        sum: 5,
        count: 1,
      });
    }
    bridge.resetCounts();
    const response = await metricsHandler({ registry })(new Request("http://localhost/metrics"));
    const text = await response.text();
    assert.equal(response.status, 200);
    assert.equal(bridge.counts.requests, 1);
    assert.match(text, /^many_g12 12$/m);
    assert.match(text, /^many_s3_sum 3$/m);
  });
});

test("after SCRIPT FLUSH the next flush falls back to EVAL once, then EVALSHA again", async () => {
  await withBridge(async (redis, bridge) => {
    const prefix = uniquePrefix("noscript");
    await loadBackend({
      backend: UpstashBackend,
      config: { url: bridge.url, token: bridge.token, keyPrefix: prefix },
    });
    const c = new Counter({ name: "noscript_total", help: "N", registry: null });
    c.inc(1);
    await flush();
    assert.equal(await redis.cli("SCRIPT", "FLUSH"), "OK");
    c.inc(2);
    bridge.resetCounts();
    await flush();
    assert.equal(bridge.counts.requests, 2);
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 1, EVAL: 1 });
    c.inc(4);
    bridge.resetCounts();
    await flush();
    assert.equal(bridge.counts.requests, 1);
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 1 });
    assert.equal(await hget(redis, prefix, "noscript_total", {}), 7);
  });
});

// --- The token stays secret ---

type ProxyMode = "pass" | "echo" | "fix";

/**
 * A proxy in front of the bridge: "pass" forwards the client's own Authorization (a wrong token
 * gets the bridge's 401), "echo" answers 401 quoting the Authorization it received, as a careless
 * server might, and "fix" forwards with the bridge's token.
 */
async function startProxy(bridge: UpstashBridge) {
  let mode: ProxyMode = "pass";
  const body = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      let text = "";
      req.setEncoding("utf8");
      req.on("data", (chunk) => (text += chunk));
      req.on("end", () => resolve(text));
      req.on("error", reject);
    });
  const server = createServer((req, res) => {
    void (async () => {
      const text = await body(req);
      if (mode === "echo") {
        res.writeHead(401, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `Unauthorized: no such token in "${req.headers.authorization}"` }));
        return;
      }
      const headers: Record<string, string> = { "content-type": "application/json" };
      headers.authorization = mode === "fix" ? `Bearer ${bridge.token}` : String(req.headers.authorization);
      const encoding = req.headers["upstash-encoding"];
      if (typeof encoding === "string") headers["upstash-encoding"] = encoding;
      const answer = await fetch(`${bridge.url}${req.url}`, { method: "POST", headers, body: text });
      res.writeHead(answer.status, { "content-type": "application/json" });
      res.end(await answer.text());
    })().catch((error) => {
      res.writeHead(502);
      res.end(String(error));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    setMode(next: ProxyMode) {
      mode = next;
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test("the token never appears in errors, 503 bodies or logs, even when the server echoes it", async () => {
  await withBridge(async (redis, bridge) => {
    const proxy = await startProxy(bridge);
    try {
      const prefix = uniquePrefix("secret");
      const token = `wrong-${bridge.token}-zq9`;
      const seen: string[] = [];
      const logs = await captureConsole(async () => {
        await loadBackend({ backend: UpstashBackend, config: { url: proxy.url, token, keyPrefix: prefix } });
        const registry = new Registry();
        const c = new Counter({ name: "secret_total", help: "S", labelNames: ["a"], registry });
        const child = c.labels({ a: "x" });
        const handler = metricsHandler({ registry });
        for (const mode of ["pass", "echo"] as const) {
          proxy.setMode(mode);
          child.inc(2);
          const failures = (await health(prefix)).failures;
          await flush(); // never rejects; the failure is counted and the changes kept
          assert.ok((await health(prefix)).failures > failures);
          await assert.rejects(Promise.resolve(child.get()), (e: unknown) => {
            assert.ok(e instanceof BackendUnavailableError);
            seen.push(e.message);
            return true;
          });
          const response = await handler(new Request("http://localhost/metrics"));
          assert.equal(response.status, 503);
          seen.push(await response.text());
        }
        assert.ok((await health(prefix)).pending > 0);
        // With the right token the kept changes arrive, once.
        proxy.setMode("fix");
        await flush();
        assert.equal((await health(prefix)).pending, 0);
        assert.equal(await child.get(), 4);
      });
      const [passError, passBody, echoError, echoBody] = seen;
      assert.match(passError, /Unauthorized/);
      assert.match(passBody, /^Cannot collect metrics: .*Unauthorized/);
      // The echoed Authorization header is there, with the token redacted.
      for (const text of [echoError, echoBody]) assert.match(text, /Bearer <token>/);
      for (const text of [...seen, logs]) {
        assert.ok(!text.includes(token), `token leaked in: ${text.slice(0, 300)}`);
        assert.ok(!text.includes(bridge.token), `bridge token leaked in: ${text.slice(0, 300)}`);
      }
      assert.equal(await hget(redis, prefix, "secret_total", { a: "x" }), 4);
    } finally {
      // Nothing stays buffered for a server that is about to go away, even if a check failed.
      proxy.setMode("fix");
      await flush();
      await proxy.close();
    }
  });
});

// --- Same data, same layout as the Redis backend ---

test("a Redis store and an Upstash store on one redis-server and keyPrefix share one set of metrics", async () => {
  await withBridge(async (redis, bridge) => {
    const prefix = uniquePrefix("layout");
    // deno-lint-ignore no-explicit-any
    const client = new (Redis as any)({ host: "127.0.0.1", port: redis.port });
    try {
      const define = (registry: Registry) => ({
        requests: new Counter({ name: "layout_requests_total", help: "R", labelNames: ["route"], registry }),
        latency: new Histogram({ name: "layout_latency_seconds", help: "L", buckets: [0.1, 1], registry }),
        inflight: new Gauge({ name: "layout_inflight", help: "I", labelNames: ["pool"], registry }),
      });
      await loadBackend({ backend: RedisBackend, config: { client, keyPrefix: prefix } });
      const tcp = new Registry();
      const a = define(tcp);
      await loadBackend({
        backend: UpstashBackend,
        config: { url: bridge.url, token: bridge.token, keyPrefix: prefix },
      });
      const http = new Registry();
      const b = define(http);

      a.requests.labels({ route: "/a" }).inc(2);
      a.latency.observe(0.0625);
      a.inflight.labels({ pool: "p" }).set(10);
      b.requests.labels({ route: "/a" }).inc(3);
      b.requests.labels({ route: "/b" }).inc(1);
      b.latency.observe(0.5);
      b.latency.observe(4);
      b.inflight.labels({ pool: "p" }).inc(5); // after the set: the shared gauge adds up
      await RedisBackend.flush();
      await UpstashBackend.flush();

      const expected = [
        {
          name: "layout_requests",
          help: "R",
          type: "counter",
          series: [{ labels: { route: "/a" }, value: 5 }, { labels: { route: "/b" }, value: 1 }],
        },
        {
          name: "layout_latency_seconds",
          help: "L",
          type: "histogram",
          buckets: [0.1, 1, Infinity],
          series: [{ labels: {}, buckets: [1, 2, 3], sum: 4.5625, count: 3 }],
        },
        { name: "layout_inflight", help: "I", type: "gauge", series: [{ labels: { pool: "p" }, value: 15 }] },
      ];
      // A remote backend gives a family's series shard by shard: compared in label order.
      const ordered = (families: MetricFamily[]) =>
        families.map((f) => ({
          ...f,
          series: [...f.series].sort((a, b) => JSON.stringify(a.labels) < JSON.stringify(b.labels) ? -1 : 1),
        }));
      assert.deepEqual(ordered(await tcp.collect()), expected);
      assert.deepEqual(ordered(await http.collect()), expected);
      assert.equal(await a.requests.labels({ route: "/b" }).get(), 1);
      assert.equal(await b.inflight.labels({ pool: "p" }).get(), 15);
      // Last writer wins for set(), whichever transport it came through.
      b.inflight.labels({ pool: "p" }).set(-1);
      await UpstashBackend.flush();
      assert.equal(await a.inflight.labels({ pool: "p" }).get(), -1);

      // The same keys, whichever store wrote: each metric's hash and last-write index in the
      // shards of its series, and one marker per store in each shard it wrote.
      // Store A wrote "/b" too: its get() made the child, whose first flush writes it (adding 0).
      const byA: [string, Labels][] = [
        ["layout_requests_total", { route: "/a" }],
        ["layout_requests_total", { route: "/b" }],
        ["layout_latency_seconds", {}],
        ["layout_inflight", { pool: "p" }],
      ];
      const byB: [string, Labels][] = byA;
      const shards = (series: [string, Labels][]) =>
        series.map(([name, labels]) => shardOf(name, labelsText(labels)));
      const perMetric = (make: typeof metricKey) =>
        [...new Set(byB.map(([name, labels]) => make(prefix, name, shardOf(name, labelsText(labels)))))]
          .sort();
      const keys = (await redis.cli("KEYS", `{${prefix}*`)).split("\n").sort();
      assert.deepEqual(keys.filter((key) => key.includes(":m:")), perMetric(metricKey));
      assert.deepEqual(keys.filter((key) => key.includes(":t:")), perMetric(indexKey));
      const markers = keys.filter((key) => key.includes(":applied:"));
      for (const [shard, tag] of shardTags(prefix).entries()) {
        const count = markers.filter((key) => key.startsWith(`{${tag}}:applied:`)).length;
        const expected = Number(shards(byA).includes(shard)) + Number(shards(byB).includes(shard));
        assert.equal(count, expected, `markers in shard ${shard}`);
      }
      const processes = new Set(markers.map((key) => key.slice(key.indexOf(":applied:"))));
      assert.equal(processes.size, 2, "one marker per store and shard");
      assert.equal(markers.length, new Set(shards(byA)).size + new Set(shards(byB)).size, markers.join(" "));
    } finally {
      await loadBackend({ backend: "memory" });
      await client.quit();
    }
  });
});

// --- withFlush ---

async function setUpWithFlush(bridge: UpstashBridge, name: string) {
  const prefix = uniquePrefix(name);
  await loadBackend({
    backend: UpstashBackend,
    config: { url: bridge.url, token: bridge.token, keyPrefix: prefix },
  });
  const hits = new Counter({ name: "wf_hits_total", help: "Hits", registry: null });
  // The series exists and the script is loaded before the measured invocations.
  await flush();
  bridge.resetCounts();
  return { prefix, hits };
}

test("withFlush() hands the flush to ctx.waitUntil and returns the response before it completes", async () => {
  await withBridge(async (redis, bridge) => {
    const { prefix, hits } = await setUpWithFlush(bridge, "waituntil");
    const handed: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void handed.push(promise) };
    const handler = withFlush((_req: Request, _env: unknown, _ctx: typeof ctx) => {
      hits.inc(2);
      return new Response("ok");
    });
    bridge.fail("slow", 1, 400);
    const started = performance.now();
    const response = await handler(new Request("http://localhost/"), {}, ctx);
    const answeredAfter = performance.now() - started;
    assert.equal(await response.text(), "ok");
    assert.equal(handed.length, 1);
    let settled = false;
    void handed[0].then(() => (settled = true));
    await sleep(0);
    assert.equal(settled, false, "the flush is still running when the response is returned");
    assert.ok(answeredAfter < 300, `answered after ${answeredAfter} ms`);
    await handed[0];
    assert.ok(performance.now() - started >= 350);
    assert.equal(bridge.counts.requests, 1);
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 1 });
    assert.equal(await hget(redis, prefix, "wf_hits_total", {}), 2);
  });
});

test("withFlush() without a ctx awaits the flush before returning the response", async () => {
  await withBridge(async (redis, bridge) => {
    const { prefix, hits } = await setUpWithFlush(bridge, "awaited");
    const handler = withFlush((_req: Request) => {
      hits.inc(3);
      return Promise.resolve(new Response("ok"));
    });
    bridge.fail("slow", 1, 300);
    const started = performance.now();
    const response = await handler(new Request("http://localhost/"));
    assert.ok(performance.now() - started >= 250, "the handler waited for the flush's answer");
    assert.equal(bridge.counts.requests, 1);
    assert.deepEqual(bridge.counts.commands, { EVALSHA: 1 });
    assert.equal(await hget(redis, prefix, "wf_hits_total", {}), 3);
    assert.equal(await response.text(), "ok");
  });
});

test("withFlush() flushes when the handler throws, with and without a ctx", async () => {
  await withBridge(async (redis, bridge) => {
    const { prefix, hits } = await setUpWithFlush(bridge, "throws");
    const handler = withFlush((_req: Request, ..._rest: unknown[]): Response => {
      hits.inc(5);
      throw new Error("handler failed");
    });
    await assert.rejects(handler(new Request("http://localhost/")), /handler failed/);
    assert.equal(bridge.counts.requests, 1);
    assert.equal(await hget(redis, prefix, "wf_hits_total", {}), 5);

    const handed: Promise<unknown>[] = [];
    const ctx = { waitUntil: (promise: Promise<unknown>) => void handed.push(promise) };
    await assert.rejects(handler(new Request("http://localhost/"), {}, ctx), /handler failed/);
    assert.equal(handed.length, 1);
    await handed[0];
    assert.equal(bridge.counts.requests, 2);
    assert.equal(await hget(redis, prefix, "wf_hits_total", {}), 10);
  });
});

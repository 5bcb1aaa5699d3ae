// The Redis backend against a real redis-server: configuration, the synchronous hot path, one
// round trip per flush and per collection, shared values across processes, TTLs, health
// metrics, and outages. Each test starts its own server and stops it, whatever happens.
// Two config objects make two stores (two "processes", with their own ids and instances).

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import process from "node:process";
import { Redis } from "ioredis";
import {
  BackendUnavailableError,
  Counter,
  defaultRegistry,
  flush,
  Gauge,
  generateLatest,
  Histogram,
  loadBackend,
  type MetricFamily,
  metricsHandler,
  Registry,
  Summary,
} from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import {
  appliedKey,
  indexKey,
  instancesKey,
  labelsText,
  metricKey,
  shardOf,
  SHARDS,
  shardTags,
} from "../backends/_remote/layout.ts";
import { CALL_SERIES, STEP_CHANGES, STEP_SERIES, WINDOW } from "../backends/_remote/writer.ts";
import { type RedisServer, startRedis, type StartRedisOptions } from "./_redis.ts";
import { runtime, test } from "./_harness.ts";

// --- helpers ---

async function withRedis(
  fn: (server: RedisServer) => Promise<void>,
  options: StartRedisOptions = {},
): Promise<void> {
  const server = await startRedis(options);
  try {
    await fn(server);
  } finally {
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
    await server.stop();
  }
}

/** Calls of a command since the last CONFIG RESETSTAT, counting the failed and the rejected. */
async function calls(server: RedisServer, command: string): Promise<number> {
  const stats = await server.cli("info", "commandstats");
  const match = stats.match(new RegExp(`^cmdstat_${command}:calls=(\\d+),.*rejected_calls=(\\d+)`, "m"));
  return match === null ? 0 : Number(match[1]) + Number(match[2]);
}

async function scripts(server: RedisServer): Promise<{ evalsha: number; eval: number }> {
  return { evalsha: await calls(server, "evalsha"), eval: await calls(server, "eval") };
}

/**
 * Stops (SIGSTOP) and continues (SIGCONT) the server by its pid. The fixture's pause() and
 * resume() go through ChildProcess.kill(), whose SIGCONT does not reach the process on Deno.
 */
async function freezer(server: RedisServer): Promise<{ pause(): void; resume(): void }> {
  const pid = Number((await server.cli("info", "server")).match(/^process_id:(\d+)/m)?.[1]);
  assert.ok(pid > 0, "no process_id in INFO server");
  return { pause: () => void process.kill(pid, "SIGSTOP"), resume: () => void process.kill(pid, "SIGCONT") };
}

/** The hash that holds a series of a metric: its shard's, by the metric's name and the labels. */
function seriesKey(prefix: string, name: string, labels: Record<string, string> = {}): string {
  return metricKey(prefix, name, shardOf(name, labelsText(labels)));
}

/** Every field of a metric, from the hashes of all its shards; a field in two shards fails. */
async function metricFields(client: Redis, prefix: string, name: string): Promise<Map<string, string>> {
  const fields = new Map<string, string>();
  for (let shard = 0; shard < SHARDS; shard++) {
    for (const [field, value] of Object.entries(await client.hgetall(metricKey(prefix, name, shard)))) {
      assert.ok(!fields.has(field), `${field} is in two shards`);
      fields.set(field, value);
    }
  }
  return fields;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Records unhandled rejections while `fn` runs. */
async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (runtime === "deno") {
    const listener = (event: PromiseRejectionEvent) => {
      event.preventDefault();
      seen.push(event.reason);
    };
    g.addEventListener("unhandledrejection", listener);
    try {
      await fn();
      await sleep(50);
    } finally {
      g.removeEventListener("unhandledrejection", listener);
    }
    return seen;
  }
  const listener = (reason: unknown) => void seen.push(reason);
  g.process.on("unhandledRejection", listener);
  try {
    await fn();
    await sleep(50);
  } finally {
    g.process.off("unhandledRejection", listener);
  }
  return seen;
}

function family(families: readonly MetricFamily[], name: string): MetricFamily {
  const found = families.find((f) => f.name === name);
  assert.ok(found !== undefined, `family "${name}" was not collected`);
  return found;
}

function valueOf(families: readonly MetricFamily[], name: string, labels: Record<string, string>): number {
  const series = (family(families, name).series as { labels: Record<string, string>; value: number }[])
    .find((s) =>
      JSON.stringify(Object.entries(s.labels).sort()) === JSON.stringify(Object.entries(labels).sort())
    );
  assert.ok(series !== undefined, `no series ${JSON.stringify(labels)} in "${name}"`);
  return series.value;
}

// --- configuration ---

test("an invalid redis config is a clear TypeError from loadBackend() and initialize()", async () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ keyPrefix: "a{b}" }, /keyPrefix.*braces.*"a\{b\}"/],
    [{ keyPrefix: "}" }, /keyPrefix/],
    [{ keyPrefix: "" }, /keyPrefix/],
    [{ expireSeconds: -1 }, /expireSeconds.*-1/],
    [{ expireSeconds: "60" }, /expireSeconds/],
    [{ flushIntervalMs: -5 }, /flushIntervalMs/],
    [{ port: "6379" }, /port must be a number.*"6379"/],
    [{ url: "http://127.0.0.1:6379" }, /url must be a redis:\/\/ or rediss:\/\/ URL/],
    [{ url: "not a url" }, /url/],
    [{ client: {} }, /client must be an ioredis client/],
    [{ client: { evalsha: () => Promise.resolve(0) } }, /client must be an ioredis client/],
  ];
  for (const [config, message] of bad) {
    const what = JSON.stringify(config);
    await assert.rejects(loadBackend({ backend: "redis", config }), (error: unknown) => {
      assert.ok(error instanceof TypeError, `${what}: ${error}`);
      assert.match(error.message, /^Invalid redis backend config: /, what);
      assert.match(error.message, message, what);
      return true;
    });
    assert.throws(() => RedisBackend.initialize(config), TypeError, what);
  }
  // A failed loadBackend() keeps the backend selected before: memory reads synchronously.
  const c = new Counter({ name: "redis_config_still_memory", help: "Memory", registry: null });
  c.inc(2);
  assert.equal(c.get(), 2);
});

test("loadBackend() selects redis by name or class, from url, host/port and db", async () => {
  await withRedis(async (server) => {
    const configs: [string | typeof RedisBackend, Record<string, unknown>, string][] = [
      ["redis", { url: server.url, keyPrefix: "by_url" }, "0"],
      ["redis", { host: "127.0.0.1", port: server.port, keyPrefix: "by_port", db: 2 }, "2"],
      [RedisBackend, { url: `${server.url}/3`, keyPrefix: "by_class" }, "3"],
    ];
    for (const [backend, config, db] of configs) {
      await loadBackend({ backend, config });
      const c = new Counter({ name: "selected_total", help: "Selected", registry: new Registry() });
      c.inc(3);
      c.inc(0.5);
      await flush();
      const stored = await server.cli(
        "-n",
        db,
        "hvals",
        seriesKey(String(config.keyPrefix), "selected_total"),
      );
      assert.equal(Number(stored), 3.5, `${config.keyPrefix}: ${stored}`);
      assert.equal(await c.get(), 3.5);
    }
  });
});

test("a client passed in config.client is used and left open", async () => {
  await withRedis(async (server) => {
    const client = new Redis(server.url);
    try {
      await loadBackend({ backend: "redis", config: { client, keyPrefix: "given" } });
      const g = new Gauge({ name: "given_gauge", help: "Given", registry: new Registry() });
      g.set(42);
      await flush();
      assert.equal(await server.cli("hvals", seriesKey("given", "given_gauge")), "42");
      await RedisBackend.close();
      assert.equal(await client.ping(), "PONG");
    } finally {
      await client.quit();
    }
  });
});

// --- health (before any test makes two stores of one prefix) ---

test("theus_backend_* health metrics appear in defaultRegistry once a redis store exists", async () => {
  await withRedis(async (server) => {
    const labels = '{backend="redis",key_prefix="health"}';
    assert.ok(!(await generateLatest(defaultRegistry)).includes(labels));
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "health", flushIntervalMs: 0 },
    });
    const c = new Counter({
      name: "health_total",
      help: "Health",
      labelNames: ["k"],
      registry: new Registry(),
    });
    for (const k of ["a", "b", "c"]) c.labels({ k }).inc();
    let text = await generateLatest(defaultRegistry);
    for (const name of ["theus_backend_flushes_total", "theus_backend_flush_failures_total"]) {
      assert.match(text, new RegExp(`^# TYPE ${name} counter$`, "m"));
    }
    for (const name of ["theus_backend_flush_duration_seconds", "theus_backend_pending_series"]) {
      assert.match(text, new RegExp(`^# TYPE ${name} gauge$`, "m"));
    }
    assert.ok(text.includes(`\ntheus_backend_pending_series${labels} 3\n`), text);
    assert.ok(text.includes(`\ntheus_backend_flushes_total${labels} 0\n`), text);
    await flush();
    text = await generateLatest(defaultRegistry);
    assert.ok(text.includes(`\ntheus_backend_pending_series${labels} 0\n`), text);
    const flushes = text.match(/^theus_backend_flushes_total\{backend="redis",key_prefix="health"\} (\d+)$/m);
    assert.ok(flushes !== null && Number(flushes[1]) >= 1, text);
    assert.ok(text.includes(`\ntheus_backend_flush_failures_total${labels} 0\n`), text);
  });
});

test("RedisBackend.close() takes its stores out of the health metrics; the same config then gets a new store", async () => {
  await withRedis(async (server) => {
    const labels = '{backend="redis",key_prefix="closing"}';
    const config = { url: server.url, keyPrefix: "closing", flushIntervalMs: 0 };
    await loadBackend({ backend: "redis", config });
    const before = new Counter({ name: "closing_total", help: "Closing", registry: new Registry() });
    before.inc(2);
    assert.ok((await generateLatest(defaultRegistry)).includes(`theus_backend_pending_series${labels} 1\n`));
    await RedisBackend.close();
    assert.equal(
      await server.cli("HGET", seriesKey("closing", "closing_total"), "[]||"),
      "2",
      "close() flushes first",
    );
    assert.ok(
      !(await generateLatest(defaultRegistry)).includes(labels),
      "a closed store has no health series",
    );
    // The closed store takes no more writes; selecting the same config again opens a new one.
    before.inc(100);
    await loadBackend({ backend: "redis", config });
    const after = new Counter({ name: "closing_total", help: "Closing", registry: new Registry() });
    after.inc(3);
    await flush();
    assert.equal(await server.cli("HGET", seriesKey("closing", "closing_total"), "[]||"), "5");
    assert.ok((await generateLatest(defaultRegistry)).includes(`theus_backend_pending_series${labels} 0\n`));
  });
});

test("flush() while redis hangs waits one command timeout, however often loadBackend() chose redis", async () => {
  await withRedis(async (server) => {
    const config = { url: server.url, keyPrefix: "hang", flushIntervalMs: 0, commandTimeoutMs: 500 };
    const counters = [];
    for (let i = 0; i < 4; i++) {
      await loadBackend({ backend: "redis", config }); // one config object: one store
      counters.push(new Counter({ name: `hang${i}_total`, help: "Hang", registry: new Registry() }));
    }
    await flush();
    const frozen = await freezer(server);
    frozen.pause();
    try {
      for (const c of counters) c.inc();
      const started = Date.now();
      await flush();
      const took = Date.now() - started;
      // One attempt of the store's batch (0.5 s) is enough; four in a row are not.
      assert.ok(took < 1250, `flush() took ${took} ms`);
    } finally {
      frozen.resume();
    }
    await flush();
    for (let i = 0; i < 4; i++) assert.equal(await counters[i].get(), 1);
  });
});

// --- the hot path ---

test("inc(), set() and observe() are synchronous and send nothing before a flush", async () => {
  await withRedis(async (server) => {
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "hot", flushIntervalMs: 0 },
    });
    const registry = new Registry();
    const c = new Counter({ name: "hot_total", help: "Hot", labelNames: ["k"], registry });
    const g = new Gauge({ name: "hot_gauge", help: "Hot", registry });
    const h = new Histogram({ name: "hot_seconds", help: "Hot", buckets: [1], registry });
    const child = c.labels({ k: "v" });
    await server.cli("config", "resetstat");
    for (let i = 0; i < 10_000; i++) {
      assert.equal(child.inc(), undefined);
      assert.equal(g.set(i), undefined);
      assert.equal(h.observe(i % 2), undefined);
    }
    assert.deepEqual(await scripts(server), { evalsha: 0, eval: 0 });
    await flush();
    assert.equal(await child.get(), 10_000);
    assert.equal(await g.get(), 9_999);
    const [hist] = (await registry.collect()).filter((f) => f.name === "hot_seconds");
    // Half the observations are 0, half 1: all fall into the bucket le="1.0".
    assert.deepEqual(hist.series, [{ labels: {}, buckets: [10_000, 10_000], sum: 5_000, count: 10_000 }]);
  });
});

test("get() reads the shared value: this store's pending changes plus what other stores flushed", async () => {
  await withRedis(async (server) => {
    const a = { url: server.url, keyPrefix: "shared", flushIntervalMs: 0 };
    const b = { url: server.url, keyPrefix: "shared", flushIntervalMs: 0 };
    await loadBackend({ backend: "redis", config: a });
    const ca = new Counter({
      name: "shared_total",
      help: "Shared",
      labelNames: ["k"],
      registry: new Registry(),
    });
    const ga = new Gauge({ name: "shared_gauge", help: "Shared", registry: new Registry() });
    await loadBackend({ backend: "redis", config: b });
    const cb = new Counter({
      name: "shared_total",
      help: "Shared",
      labelNames: ["k"],
      registry: new Registry(),
    });
    const gb = new Gauge({ name: "shared_gauge", help: "Shared", registry: new Registry() });

    cb.labels({ k: "x" }).inc(3);
    assert.equal(await cb.labels({ k: "x" }).get(), 3); // b flushes its own changes to read
    ca.labels({ k: "x" }).inc(2); // pending in a
    assert.equal(await ca.labels({ k: "x" }).get(), 5);
    assert.equal(await cb.labels({ k: "x" }).get(), 5);
    // A child only b has written is read by a.
    cb.labels({ k: "only_b" }).inc(7);
    await flush();
    assert.equal(await ca.labels({ k: "only_b" }).get(), 7);

    gb.set(10);
    await flush();
    ga.inc(1); // pending in a: adds to the shared value
    assert.equal(await ga.get(), 11);
    ga.set(4); // last writer wins
    assert.equal(await ga.get(), 4);
    assert.equal(await gb.get(), 4);
    gb.dec(1.5);
    assert.equal(await ga.get(), 4); // b has not flushed yet
    await flush();
    assert.equal(await ga.get(), 2.5);
  });
});

// --- round trips ---

test("a flush of 1, 100 or 10,000 changed series is one EVALSHA, of 24 batches' worth two per shard; one EVAL after SCRIPT FLUSH", async () => {
  await withRedis(async (server) => {
    const prefix = "rt";
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: prefix, flushIntervalMs: 0 },
    });
    const registry = new Registry();
    const one = new Counter({ name: "rt_one_total", help: "One", registry });
    const many = new Counter({ name: "rt_many_total", help: "Many", labelNames: ["i"], registry });
    const h = new Histogram({ name: "rt_hist", help: "Hist", labelNames: ["i"], buckets: [1, 2], registry });
    await flush(); // loads the script (EVALSHA, then EVAL on NOSCRIPT)

    await server.cli("config", "resetstat");
    one.inc();
    await flush();
    assert.deepEqual(await scripts(server), { evalsha: 1, eval: 0 });

    // What each series of rt_many_total should hold, kept by the test.
    const expected = new Map<string, number>();
    const change = (name: string, n: number, by: number): Set<number> => {
      const shards = new Set<number>();
      for (let i = 0; i < n; i++) {
        const labels = { i: `${name}-${i}` };
        many.labels(labels).inc(by);
        expected.set(labels.i, (expected.get(labels.i) ?? 0) + by);
        shards.add(shardOf("rt_many_total", labelsText(labels)));
      }
      return shards;
    };
    // 100 new series (and 100 histogram series), 10,000 new ones, then the same 10,000 again:
    // spread over every shard, and one script call each time.
    for (const [name, n, by] of [["100", 100, 2], ["10k", 10_000, 3], ["10k", 10_000, 4]] as const) {
      const shards = change(name, n, by);
      assert.equal(shards.size, SHARDS, `${n} series in ${shards.size} shards`);
      if (n === 100) { for (let i = 0; i < 100; i++) h.labels({ i: String(i) }).observe(1.5); }
      await server.cli("config", "resetstat");
      await flush();
      assert.deepEqual(await scripts(server), { evalsha: 1, eval: 0 }, `${n} changed series`);
    }
    assert.equal(await many.labels({ i: "10k-9999" }).get(), 7);

    // 24 batches' worth of new series, more than one call takes (CALL_SERIES). A larger flush goes
    // in calls of at most STEP_SERIES series and STEP_CHANGES changes of values, each shard's
    // batches whole, a batch at most STEP_SERIES series: with between one and two batches' worth
    // in every shard, each shard makes a full batch and a partial one, and no two batches fit one
    // call.
    const large = 24 * STEP_SERIES;
    assert.ok(large > CALL_SERIES);
    const perShard = new Array<number>(SHARDS).fill(0);
    for (let i = 0; i < large; i++) perShard[shardOf("rt_many_total", labelsText({ i: `large-${i}` }))]++;
    assert.ok(
      perShard.every((n) => n > STEP_SERIES && n < 2 * STEP_SERIES && n < STEP_CHANGES),
      perShard.join(" "),
    );
    change("large", large, 5);
    await server.cli("config", "resetstat");
    await flush();
    assert.deepEqual(await scripts(server), { evalsha: 2 * SHARDS, eval: 0 });

    // Every value exact: in Redis, summed over the shards' hashes, and read back through the backend.
    const client = new Redis(server.url);
    try {
      const stored = await metricFields(client, prefix, "rt_many_total");
      assert.equal(stored.size, 100 + 10_000 + large);
      for (const [i, value] of expected) assert.equal(Number(stored.get(`${labelsText({ i })}||`)), value, i);
      assert.equal(
        [...stored.values()].reduce((sum, v) => sum + Number(v), 0),
        100 * 2 + 10_000 * 7 + large * 5,
      );
    } finally {
      await client.quit();
    }
    const families = await registry.collect();
    const collected = family(families, "rt_many").series as {
      labels: Record<string, string>;
      value: number;
    }[];
    assert.equal(collected.length, expected.size);
    for (const { labels, value } of collected) assert.equal(value, expected.get(labels.i), labels.i);
    assert.deepEqual(
      family(families, "rt_hist").series.find((s) => s.labels.i === "99"),
      { labels: { i: "99" }, buckets: [0, 1, 1], sum: 1.5, count: 1 },
    );

    // Nothing pending: no round trip at all.
    await server.cli("config", "resetstat");
    await flush();
    assert.deepEqual(await scripts(server), { evalsha: 0, eval: 0 });

    await server.cli("script", "flush");
    await server.cli("config", "resetstat");
    one.inc(2);
    await flush();
    assert.deepEqual(await scripts(server), { evalsha: 1, eval: 1 });
    await server.cli("config", "resetstat");
    one.inc(4);
    await flush();
    assert.deepEqual(await scripts(server), { evalsha: 1, eval: 0 });
    assert.equal(await one.get(), 7);
  });
});

test("a flush larger than one call keeps at most WINDOW calls in flight on the connection, and forgets what Redis confirmed", async () => {
  // Redis runs the calls waiting on one connection back to back before it answers another
  // client, so the calls in flight bound how long that client waits. The client is a real
  // ioredis connection, counted as the backend calls it.
  await withRedis(async (server) => {
    const client = new Redis(server.url);
    let pending = 0;
    let most = 0;
    let sent = 0;
    // The store's series not yet confirmed, as each call is answered.
    const unconfirmed: number[] = [];
    const pendingSeries = () =>
      ((RedisBackend.health.collect() as MetricFamily[])
        .find((f) => f.name === "theus_backend_pending_series")?.series as {
          labels: Record<string, string>;
          value: number;
        }[])
        .find((s) => s.labels.key_prefix === "win")?.value ?? NaN;
    const evalsha = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = (...args) => {
      sent++;
      most = Math.max(most, ++pending);
      return evalsha(...args).finally(() => {
        pending--;
        unconfirmed.push(pendingSeries());
      });
    };
    try {
      await loadBackend({ backend: "redis", config: { client, keyPrefix: "win", flushIntervalMs: 0 } });
      const registry = new Registry();
      const c = new Counter({ name: "win_total", help: "W", labelNames: ["i"], registry });
      const n = 24 * STEP_SERIES;
      assert.ok(n > CALL_SERIES);
      for (let i = 0; i < n; i++) c.labels({ i: String(i) }).inc(i % 7 + 1);
      await flush();
      assert.ok(sent >= n / STEP_SERIES, `${sent} calls`);
      assert.ok(most <= WINDOW, `${most} calls in flight, more than ${WINDOW}`);
      assert.ok(most > 1, "each call waited for the answer to the one before");
      // A batch is forgotten once Redis confirms it, not when the flush ends: as the last two
      // calls are answered (one connection answers in order), only they are unconfirmed, and the
      // call answered just before, when both answers came in one read: this count is taken as
      // the client has an answer, before the flush has taken the one before it.
      assert.ok(unconfirmed.at(-2)! <= 3 * STEP_SERIES, `${unconfirmed.at(-2)} of ${n} series unconfirmed`);
      assert.ok(unconfirmed.at(-1)! <= 2 * STEP_SERIES, `${unconfirmed.at(-1)} of ${n} series unconfirmed`);
      const families = await registry.collect();
      const series = family(families, "win").series as { labels: Record<string, string>; value: number }[];
      assert.equal(series.length, n);
      for (const { labels, value } of series) assert.equal(value, Number(labels.i) % 7 + 1, labels.i);
      await RedisBackend.close();
    } finally {
      await client.quit();
    }
  });
});

test("label values in any script land and read back exactly, in one call and in many; the client gets a flush's changes as bytes on Node and Deno", async () => {
  await withRedis(async (server) => {
    const client = new Redis(server.url);
    // What the script calls carried, as the client got them.
    let buffers = 0;
    let texts = 0;
    const evalsha = client.evalsha.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as { evalsha: (...args: unknown[]) => Promise<unknown> }).evalsha = (...args) => {
      for (const arg of args[2] as unknown[]) {
        if (arg instanceof Uint8Array) {
          buffers++;
          assert.ok(Buffer.isBuffer(arg), "bytes that ioredis would send as their string");
        } else texts++;
      }
      return evalsha(...args);
    };
    const scripts = ["café", "e\u0301", "日本語", "Ελληνικά", "עברית", "🙂 emoji", "ascii"];
    try {
      await loadBackend({ backend: "redis", config: { client, keyPrefix: "utf", flushIntervalMs: 0 } });
      const registry = new Registry();
      const c = new Counter({ name: "utf_total", help: "U", labelNames: ["v"], registry });
      const expected = new Map<string, number>();
      for (const count of [scripts.length, CALL_SERIES + 2 * STEP_SERIES]) {
        for (let i = 0; i < count; i++) {
          const v = `${scripts[i % scripts.length]}-${i}`;
          c.labels({ v }).inc(i % 5 + 1);
          expected.set(v, (expected.get(v) ?? 0) + i % 5 + 1);
        }
        await flush();
        const series = family(await registry.collect(), "utf").series as {
          labels: Record<string, string>;
          value: number;
        }[];
        assert.equal(series.length, expected.size, `${count} series`);
        for (const { labels, value } of series) {
          assert.equal(value, expected.get(labels.v), `${JSON.stringify(labels.v)} of ${count} series`);
        }
        // Redis keeps the labels as their UTF-8 text, as every runtime writes them.
        const fields = [...(await metricFields(client, "utf", "utf_total")).keys()];
        for (const v of scripts.map((script, i) => `${script}-${i}`)) {
          assert.ok(
            fields.some((field) => field.includes(JSON.stringify(v))),
            `no field for ${JSON.stringify(v)}`,
          );
        }
      }
      c.labels({ v: "日本語-2" }).inc(10);
      await flush();
      assert.equal(valueOf(await registry.collect(), "utf", { v: "日本語-2" }), 3 + 3 + 10);
      assert.ok(texts > 0);
      if (runtime === "bun") {
        assert.equal(buffers, 0, "JavaScriptCore does not copy strings: they stay strings");
      } else assert.ok(buffers > CALL_SERIES / STEP_SERIES, `${buffers} changes sent as bytes`);
    } finally {
      await client.quit();
    }
  });
});

test("collecting many metrics is one round trip, includes other stores' children, never KEYS or SCAN", async () => {
  await withRedis(async (server) => {
    const a = { url: server.url, keyPrefix: "col", flushIntervalMs: 0 };
    const b = { url: server.url, keyPrefix: "col", flushIntervalMs: 0 };
    const build = (registry: Registry) => {
      const metrics = [];
      for (let i = 0; i < 10; i++) {
        metrics.push({
          c: new Counter({ name: `col_c${i}_total`, help: "C", labelNames: ["k"], registry }),
          g: new Gauge({ name: `col_g${i}`, help: "G", labelNames: ["k"], registry }),
          h: new Histogram({ name: `col_h${i}`, help: "H", labelNames: ["k"], buckets: [1], registry }),
          s: new Summary({ name: `col_s${i}`, help: "S", labelNames: ["k"], registry }),
        });
      }
      return metrics;
    };
    await server.cli("config", "resetstat");
    await loadBackend({ backend: "redis", config: a });
    const ra = new Registry();
    const ma = build(ra);
    await loadBackend({ backend: "redis", config: b });
    const rb = new Registry();
    const mb = build(rb);
    for (let i = 0; i < 10; i++) {
      ma[i].c.labels({ k: "a" }).inc(i + 1);
      mb[i].c.labels({ k: "a" }).inc(1);
      mb[i].c.labels({ k: "only_b" }).inc(2 * (i + 1));
      ma[i].g.labels({ k: "a" }).set(i);
      mb[i].g.labels({ k: "only_b" }).set(-i - 1);
      ma[i].h.labels({ k: "a" }).observe(0.5);
      mb[i].h.labels({ k: "only_b" }).observe(i + 2);
      mb[i].s.labels({ k: "only_b" }).observe(i);
    }
    await flush();
    await rb.collect(); // loads the collection script (EVALSHA, then EVAL on NOSCRIPT)
    let before = await scripts(server);
    const families = await ra.collect();
    let after = await scripts(server);
    assert.deepEqual({ evalsha: after.evalsha - before.evalsha, eval: after.eval - before.eval }, {
      evalsha: 1,
      eval: 0,
    });
    assert.equal(families.length, 40);
    for (let i = 0; i < 10; i++) {
      assert.equal(valueOf(families, `col_c${i}`, { k: "a" }), i + 2);
      assert.equal(valueOf(families, `col_c${i}`, { k: "only_b" }), 2 * (i + 1));
      assert.equal(valueOf(families, `col_g${i}`, { k: "a" }), i);
      assert.equal(valueOf(families, `col_g${i}`, { k: "only_b" }), -i - 1);
      // A remote backend gives a family's series shard by shard: compared in label order.
      assert.deepEqual(byLabels(family(families, `col_h${i}`).series), [
        { labels: { k: "a" }, buckets: [1, 1], sum: 0.5, count: 1 },
        { labels: { k: "only_b" }, buckets: [0, 1], sum: i + 2, count: 1 },
      ]);
      assert.deepEqual(family(families, `col_s${i}`).series, [{ labels: { k: "only_b" }, sum: i, count: 1 }]);
    }

    // With changes pending: one flush, then one read.
    ma[0].c.labels({ k: "a" }).inc(100);
    before = await scripts(server);
    const text = await generateLatest(ra);
    after = await scripts(server);
    assert.deepEqual({ evalsha: after.evalsha - before.evalsha, eval: after.eval - before.eval }, {
      evalsha: 2,
      eval: 0,
    });
    assert.ok(text.includes('\ncol_c0_total{k="a"} 102\n'), text);

    const stats = await server.cli("info", "commandstats");
    assert.doesNotMatch(stats, /^cmdstat_keys:/m);
    assert.doesNotMatch(stats, /^cmdstat_scan:/m);
  });
});

// --- TTL ---

test("every key the store writes expires after expireSeconds, and a write refreshes it", async () => {
  await withRedis(async (server) => {
    const prefix = "ttl";
    await loadBackend({
      backend: "redis",
      // Heartbeats every half second (a quarter of instanceTtlSeconds), so the wait below sees one.
      config: {
        url: server.url,
        keyPrefix: prefix,
        expireSeconds: 3,
        instanceTtlSeconds: 2,
        flushIntervalMs: 0,
      },
    });
    const registry = new Registry();
    const c = new Counter({ name: "ttl_total", help: "TTL", registry });
    const g = new Gauge({ name: "ttl_max", help: "TTL", mode: "max", registry });
    const write = async () => {
      c.inc();
      g.set(1);
      await flush();
    };
    await write();
    // Each metric's hash and last-write index in the shard of its series, a marker per shard
    // written, and the heartbeats: nothing else.
    const shardOfTotal = shardOf("ttl_total", labelsText({}));
    const shardOfMax = shardOf("ttl_max", labelsText({}));
    const keys = (await server.cli("--scan", "--pattern", `{${prefix}*`)).split("\n").filter((k) => k !== "")
      .sort();
    const markers = keys.filter((key) => key.includes(":applied:"));
    const markerShards = [...new Set([shardOfTotal, shardOfMax])].sort((a, b) => a - b);
    const shardOfKey = (key: string) => shardTags(prefix).indexOf(key.slice(1, key.indexOf("}")));
    assert.deepEqual(markers.map(shardOfKey).sort((a, b) => a - b), markerShards, markers.join(" "));
    const processId = markers[0].slice(markers[0].indexOf(":applied:") + ":applied:".length);
    assert.deepEqual(
      keys,
      [
        metricKey(prefix, "ttl_total", shardOfTotal),
        indexKey(prefix, "ttl_total", shardOfTotal),
        metricKey(prefix, "ttl_max", shardOfMax),
        indexKey(prefix, "ttl_max", shardOfMax),
        ...markerShards.map((shard) => appliedKey(prefix, shard, processId)),
        instancesKey(prefix),
      ].sort(),
    );
    for (const key of keys) {
      const ms = Number(await server.cli("pttl", key));
      assert.ok(ms > 2000 && ms <= 3000, `${key}: PTTL ${ms}`);
    }
    await sleep(1200);
    for (const key of keys) {
      const ms = Number(await server.cli("pttl", key));
      assert.ok(ms > 0 && ms <= 1800, `${key}: PTTL ${ms}`);
    }
    await write();
    for (const key of keys) {
      const refreshed = Number(await server.cli("pttl", key));
      assert.ok(refreshed > 2500 && refreshed <= 3000, `${key}: PTTL ${refreshed}`);
    }
  });
});

// --- faults ---

test("while redis is paused or down: updates work, flush() resolves, scrapes answer 503; then all arrives once", async () => {
  await withRedis(async (server) => {
    const prefix = "outage";
    const registry = new Registry();
    const handler = metricsHandler({ registry });
    const scrape = () => handler(new Request("http://localhost/metrics"));
    let c!: Counter;
    // The hash has one field, the counter's: HVALS reads it without knowing its encoding.
    const stored = async () => Number(await server.cli("hvals", seriesKey(prefix, "outage_total")));
    // Read from the health collector itself, so the count does not depend on other stores.
    const failures = async () => {
      const health = defaultRegistry.get("theus_backend");
      assert.ok(health !== undefined, "the health collector is not registered");
      const families = await health.collect();
      return valueOf(families, "theus_backend_flush_failures", { backend: "redis", key_prefix: prefix });
    };
    const unhandled = await unhandledDuring(async () => {
      await loadBackend({
        backend: "redis",
        config: { url: server.url, keyPrefix: prefix, flushIntervalMs: 100, commandTimeoutMs: 300 },
      });
      c = new Counter({ name: "outage_total", help: "Outage", registry });
      c.inc();
      await flush();
      assert.equal((await scrape()).status, 200);
      const failedBefore = await failures();

      // Paused: connections stay open, nothing answers.
      const frozen = await freezer(server);
      frozen.pause();
      try {
        assert.equal(c.inc(2), undefined);
        // Resolves: the failure is counted, the changes kept. (RedisBackend.flush() is what
        // flush() calls; called directly, its time does not depend on earlier tests' bindings.)
        await RedisBackend.flush();
        const started = Date.now();
        const response = await scrape();
        assert.ok(Date.now() - started < 5000, `the scrape took ${Date.now() - started} ms`);
        assert.equal(response.status, 503);
        const body = await response.text();
        assert.match(body, /Cannot collect metrics/);
        assert.ok(body.includes(`redis://127.0.0.1:${server.port}`), body);
        await assert.rejects(registry.collect(), BackendUnavailableError);
        assert.ok((await failures()) > failedBefore);
      } finally {
        frozen.resume();
      }
      await flush();
      await flush();
      assert.equal(await stored(), 3);
      assert.equal((await scrape()).status, 200);

      // Down: the server is gone; it comes back with its data (append-only file).
      await server.cli("shutdown").catch(() => "");
      for (let i = 0; i < 100; i++) {
        if (!(await server.cli("ping").then(() => true, () => false))) break;
        await sleep(50);
      }
      assert.equal(c.inc(4), undefined);
      await RedisBackend.flush();
      assert.equal((await scrape()).status, 503);
      await server.restart();
      for (let i = 0; i < 100 && (await stored()) !== 7; i++) {
        await flush();
        await sleep(100);
      }
      await flush();
      await sleep(300); // a few background flushes
      assert.equal(await stored(), 7);
      const response = await scrape();
      assert.equal(response.status, 200);
      assert.ok((await response.text()).includes("\noutage_total 7\n"));
    });
    assert.deepEqual(unhandled, []);
  }, { appendOnly: true });
});

test("a change Redis rejects is skipped and counted; it neither blocks later flushes nor applies others twice", async () => {
  await withRedis(async (server) => {
    const prefix = "poison";
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: prefix, flushIntervalMs: 0 },
    });
    const registry = new Registry();
    const c = new Counter({ name: "poison_total", help: "Counter", registry });
    const g = new Gauge({ name: "poison_gauge", help: "Gauge", registry });
    const h = new Histogram({ name: "poison_hist", help: "Hist", buckets: [1], registry });
    await flush();
    // A field that is not a number makes HINCRBYFLOAT fail, whatever the increment.
    const client = new Redis(server.url);
    try {
      const key = seriesKey(prefix, "poison_gauge");
      const [field] = await client.hkeys(key);
      await client.hset(key, field, "not a number");
    } finally {
      await client.quit();
    }
    c.inc(1); // applied before the rejected change, in the same batch
    g.inc(1);
    h.observe(0.5);
    for (let i = 0; i < 3; i++) await flush();
    assert.equal(await c.get(), 1);
    c.inc(1);
    await flush();
    assert.equal(await c.get(), 2);
    const families = await registry.collect();
    assert.deepEqual(family(families, "poison_hist").series, [
      { labels: {}, buckets: [1, 1], sum: 0.5, count: 1 },
    ]);
    const health = defaultRegistry.get("theus_backend");
    assert.ok(health !== undefined);
    const rejected = valueOf(await health.collect(), "theus_backend_rejected_changes", {
      backend: "redis",
      key_prefix: prefix,
    });
    assert.equal(rejected, 1);
  });
});

test("a last-write index Redis cannot write is counted member by member, and the values still land", async () => {
  await withRedis(async (server) => {
    const prefix = "stamps";
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: prefix, flushIntervalMs: 0 },
    });
    const registry = new Registry();
    const c = new Counter({ name: "stamps_total", help: "Counter", labelNames: ["n"], registry });
    // Every shard's last-write index made a string: each new series' member is refused, and so
    // is each shard's trim of that index, once per batch.
    const client = new Redis(server.url);
    try {
      for (let shard = 0; shard < SHARDS; shard++) {
        await client.set(indexKey(prefix, "stamps_total", shard), "x");
      }
    } finally {
      await client.quit();
    }
    const names = Array.from({ length: 40 }, (_, i) => `s${i}`);
    for (const n of names) c.labels({ n }).inc(2);
    await flush();
    const shards = new Set(names.map((n) => shardOf("stamps_total", labelsText({ n }))));
    assert.ok(shards.size > 1 && shards.size < names.length);
    const health = defaultRegistry.get("theus_backend");
    assert.ok(health !== undefined);
    const rejected = valueOf(await health.collect(), "theus_backend_rejected_changes", {
      backend: "redis",
      key_prefix: prefix,
    });
    assert.equal(rejected, names.length + shards.size);
    for (const n of names) assert.equal(await c.labels({ n }).get(), 2, n);
  });
});

test("non-finite values read back as on the memory backend: Infinity and NaN", async () => {
  await withRedis(async (server) => {
    await loadBackend({
      backend: "redis",
      config: { url: server.url, keyPrefix: "inf", flushIntervalMs: 0 },
    });
    const registry = new Registry();
    const c = new Counter({ name: "inf_total", help: "Counter", registry });
    const g = new Gauge({ name: "inf_gauge", help: "Gauge", registry });
    const h = new Histogram({ name: "inf_hist", help: "Hist", buckets: [1], registry });
    c.inc(1);
    g.set(NaN);
    await flush();
    c.inc(Infinity); // 1 + Infinity
    g.inc(1); // NaN + 1
    h.observe(Infinity);
    h.observe(2);
    const families = await registry.collect();
    assert.equal(valueOf(families, "inf", {}), Infinity);
    assert.ok(Number.isNaN(valueOf(families, "inf_gauge", {})));
    assert.deepEqual(family(families, "inf_hist").series, [
      { labels: {}, buckets: [0, 2], sum: Infinity, count: 2 },
    ]);
  });
});

test("health metrics stay valid when two stores share a keyPrefix", async () => {
  await withRedis(async (server) => {
    // Two loadBackend() calls with equal configs (two objects) make two stores of one prefix.
    for (let i = 0; i < 2; i++) {
      await loadBackend({
        backend: "redis",
        config: { url: server.url, keyPrefix: "twice", flushIntervalMs: 0 },
      });
      new Counter({ name: "twice_total", help: "Twice", registry: new Registry() }).inc();
    }
    await flush();
    const text = await generateLatest(defaultRegistry);
    const lines = text.split("\n").filter((line) => line.includes('key_prefix="twice"'));
    const names = lines.map((line) => line.slice(0, line.indexOf("{")));
    assert.equal(new Set(names).size, names.length, `duplicate series:\n${lines.join("\n")}`);
    assert.ok(lines.includes('theus_backend_pending_series{backend="redis",key_prefix="twice"} 0'), text);
  });
});

/** Series in the order of their labels, as JSON. */
function byLabels(series: readonly { labels: Record<string, string> }[]): unknown[] {
  const key = (s: { labels: Record<string, string> }) => JSON.stringify(Object.entries(s.labels).sort());
  return [...series].sort((a, b) => key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
}

// The environment path is a first-class path: the conformance suite with the redis backend
// selected through THEUS_BACKEND (its config inline JSON in THEUS_BACKEND_CONFIG), each test's
// metrics created while the backend module is still loading, exactly as an application's first
// metrics are. Then remove() and clear() while it loads, against a real redis-server.

import assert from "node:assert/strict";
import process from "node:process";
import { Counter, flush, loadBackend, Registry } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { labelsText, metricKey, shardOf, SHARDS } from "../backends/_remote/layout.ts";
import { selectBinding } from "../metrics/_binding.ts";
import { bindingFromEnvironment } from "../setup/_resolve.ts";
import { test } from "./_harness.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { conformance } from "./conformance.ts";

/**
 * Sets THEUS_BACKEND=redis and an inline JSON THEUS_BACKEND_CONFIG, then does what the first
 * metric of a process does: applies the environment. The class is then still loading.
 */
function selectFromEnvironment(server: RedisServer, keyPrefix: string): void {
  const saved = [process.env.THEUS_BACKEND, process.env.THEUS_BACKEND_CONFIG];
  process.env.THEUS_BACKEND = "redis";
  process.env.THEUS_BACKEND_CONFIG = ` ${JSON.stringify({ url: server.url, keyPrefix, flushIntervalMs: 0 })}`;
  try {
    const binding = bindingFromEnvironment();
    assert.ok(
      binding !== undefined && binding.loading,
      "the binding is still loading when metrics are created",
    );
    selectBinding(binding);
  } finally {
    for (const [name, value] of [["THEUS_BACKEND", saved[0]], ["THEUS_BACKEND_CONFIG", saved[1]]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
}

/** A metric's fields over the hashes of all its shards, as redis-cli prints them: field, value, ... */
async function hgetall(server: RedisServer, prefix: string, name: string): Promise<string[]> {
  const pairs: [string, string][] = [];
  for (let shard = 0; shard < SHARDS; shard++) {
    const text = await server.cli("HGETALL", metricKey(prefix, name, shard));
    const lines = text === "" ? [] : text.split("\n");
    for (let i = 0; i < lines.length; i += 2) pairs.push([lines[i], lines[i + 1]]);
  }
  return pairs.sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0).flat();
}

/** Writes a series' value as another process would have, in the hash of the series' shard. */
async function hset(
  server: RedisServer,
  prefix: string,
  name: string,
  labels: Record<string, string>,
  value: string,
) {
  await server.cli(
    "HSET",
    metricKey(prefix, name, shardOf(name, labelsText(labels))),
    `${labelsText(labels)}||`,
    value,
  );
}

async function tearDown(server: RedisServer): Promise<void> {
  try {
    await flush();
    await loadBackend({ backend: "memory" });
    await RedisBackend.close();
  } finally {
    await server.stop();
  }
}

conformance("redis via THEUS_BACKEND", async () => {
  const server = await startRedis();
  selectFromEnvironment(server, "env");
  return { registry: new Registry(), cleanup: () => tearDown(server) };
});

test("remove() while THEUS_BACKEND's module loads: the series stays removed after the load and a flush", async () => {
  const server = await startRedis();
  try {
    selectFromEnvironment(server, "envremove");
    const registry = new Registry();
    const c = new Counter({ name: "env_removed_total", help: "Removed", labelNames: ["a"], registry });
    c.labels({ a: "x" }).inc(5);
    c.labels({ a: "kept" }).inc(2);
    assert.equal(c.remove({ a: "x" }), true);
    await flush();
    const [family] = await registry.collect();
    assert.deepEqual(family.series, [{ labels: { a: "kept" }, value: 2 }]);
    assert.deepEqual(await hgetall(server, "envremove", "env_removed_total"), [`["a","kept"]||`, "2"]);
  } finally {
    await tearDown(server);
  }
});

test("remove() and clear() while THEUS_BACKEND's module loads also delete what other processes wrote", async () => {
  const server = await startRedis();
  try {
    // Another process's values for the same series.
    await hset(server, "envshared", "env_shared_total", { a: "x" }, "40");
    await hset(server, "envshared", "env_shared_total", { a: "y" }, "7");
    await hset(server, "envshared", "env_cleared", { b: "z" }, "3");
    assert.deepEqual(await hgetall(server, "envshared", "env_shared_total"), [
      `["a","x"]||`,
      "40",
      `["a","y"]||`,
      "7",
    ]);
    selectFromEnvironment(server, "envshared");
    const registry = new Registry();
    const removed = new Counter({ name: "env_shared_total", help: "Shared", labelNames: ["a"], registry });
    const cleared = new Counter({ name: "env_cleared", help: "Cleared", labelNames: ["b"], registry });
    removed.labels({ a: "x" }).inc(1);
    cleared.labels({ b: "z" }).inc(1);
    assert.equal(removed.remove({ a: "x" }), true);
    cleared.clear();
    await flush();
    const families = await registry.collect();
    assert.deepEqual(families.map((f) => [f.name, f.series]), [
      ["env_shared", [{ labels: { a: "y" }, value: 7 }]],
      ["env_cleared", []],
    ]);
    assert.deepEqual(await hgetall(server, "envshared", "env_shared_total"), [`["a","y"]||`, "7"]);
    assert.deepEqual(await hgetall(server, "envshared", "env_cleared"), []);
  } finally {
    await tearDown(server);
  }
});

test("a series created again after its removal while loading writes only what came after", async () => {
  const server = await startRedis();
  try {
    selectFromEnvironment(server, "envagain");
    const registry = new Registry();
    const c = new Counter({ name: "env_again_total", help: "Again", labelNames: ["a"], registry });
    c.labels({ a: "x" }).inc(5);
    c.remove({ a: "x" });
    c.labels({ a: "x" }).inc(3);
    await flush();
    assert.equal(await c.labels({ a: "x" }).get(), 3);
    assert.deepEqual(await hgetall(server, "envagain", "env_again_total"), [`["a","x"]||`, "3"]);
  } finally {
    await tearDown(server);
  }
});

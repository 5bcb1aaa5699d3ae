// The shared conformance suite on the Redis backend against a real Redis Cluster of three
// masters: once with the Cluster client the backend opens from `cluster: [nodes]`, once with an
// ioredis Cluster client passed in. One cluster serves the whole file (started by the first
// test, stopped by the last); every test gets a key prefix of its own, so no test sees another's
// keys, and their series spread over every master.

import process from "node:process";
import { Cluster } from "ioredis";
import { flush, loadBackend, Registry } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { test } from "./_harness.ts";
import { type RedisCluster, startCluster } from "./_cluster.ts";
import { conformance } from "./conformance.ts";

let starting: Promise<RedisCluster> | undefined;
let prefixes = 0;

/** The file's cluster, started on first use. */
function cluster(): Promise<RedisCluster> {
  return starting ??= startCluster();
}

/** A key prefix no other test of this process uses. */
function nextPrefix(name: string): string {
  return `${name}-${process.pid}-${++prefixes}`;
}

conformance("redis cluster", async () => {
  const { addresses } = await cluster();
  await loadBackend({
    backend: "redis",
    config: { cluster: [...addresses], keyPrefix: nextPrefix("conformance") },
  });
  return {
    registry: new Registry(),
    async cleanup() {
      await flush();
      await loadBackend({ backend: "memory" });
      await RedisBackend.close();
    },
  };
});

conformance("redis cluster (client passed in)", async () => {
  const { nodes } = await cluster();
  const client = new Cluster(nodes.map(({ host, port }) => ({ host, port })));
  try {
    await loadBackend({ backend: RedisBackend, config: { client, keyPrefix: nextPrefix("given") } });
  } catch (error) {
    client.disconnect();
    throw error;
  }
  return {
    registry: new Registry(),
    async cleanup() {
      try {
        await flush();
        await loadBackend({ backend: "memory" });
      } finally {
        await client.quit();
      }
    },
  };
});

// Runners run a file's tests in order, one at a time: this one comes last.
test("redis cluster conformance: the cluster stops", async () => {
  const started = starting;
  starting = undefined;
  if (started !== undefined) await (await started).stop();
});

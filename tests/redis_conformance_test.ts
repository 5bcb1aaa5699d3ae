// The shared conformance suite on the Redis backend, against a real redis-server: once with the
// connection the backend opens from a url, once with an ioredis client passed in. Every test
// gets its own server and store.

import { Redis } from "ioredis";
import { flush, loadBackend, Registry } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { startRedis } from "./_redis.ts";
import { conformance } from "./conformance.ts";

conformance("redis", async () => {
  const server = await startRedis();
  try {
    await loadBackend({ backend: "redis", config: { url: server.url, keyPrefix: "conformance" } });
  } catch (error) {
    await server.stop();
    throw error;
  }
  return {
    registry: new Registry(),
    async cleanup() {
      try {
        await flush();
        await loadBackend({ backend: "memory" });
        await RedisBackend.close();
      } finally {
        await server.stop();
      }
    },
  };
});

conformance("redis (client passed in)", async () => {
  const server = await startRedis();
  const client = new Redis(server.url);
  try {
    await loadBackend({ backend: RedisBackend, config: { client, keyPrefix: "given" } });
  } catch (error) {
    client.disconnect();
    await server.stop();
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
        await server.stop();
      }
    },
  };
});

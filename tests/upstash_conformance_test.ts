// The shared conformance suite on the Upstash backend: the real @upstash/redis client, created by
// the backend from url and token, against the REST bridge over a real redis-server. Every test
// gets its own server, bridge and store.

import { flush, loadBackend, Registry } from "../mod.ts";
import { UpstashBackend } from "../backends/upstash.ts";
import { startRedis } from "./_redis.ts";
import { startUpstashBridge } from "./_upstash_bridge.ts";
import { conformance } from "./conformance.ts";

conformance("upstash", async () => {
  const redis = await startRedis();
  let bridge;
  try {
    bridge = await startUpstashBridge({ redisPort: redis.port });
    await loadBackend({ backend: UpstashBackend, config: { url: bridge.url, token: bridge.token } });
  } catch (error) {
    await bridge?.close();
    await redis.stop();
    throw error;
  }
  const started = bridge;
  return {
    registry: new Registry(),
    async cleanup() {
      try {
        // Nothing stays buffered for a bridge that is about to go away.
        await flush();
        await loadBackend({ backend: "memory" });
      } finally {
        await started.close();
        await redis.stop();
      }
    },
  };
});

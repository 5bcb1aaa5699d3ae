/**
 * The Upstash backend: Redis over HTTP (@upstash/redis), for serverless and edge functions.
 * Same data and key layout as the Redis backend, so functions and long-running servers can
 * share one set of metrics.
 *
 * @module
 */

import { Redis } from "@upstash/redis";
import type { BackendConfig } from "../core/backend.ts";
import { errorMessage, readEnv } from "../core/_runtime.ts";
import { RemoteBackend, useStores } from "./_remote/backend.ts";
import { checkClient, configError } from "./_remote/options.ts";
import type { Script } from "./_remote/scripts.ts";
import { type Argument, bounded, runScript, type ScriptCalls, type Transport } from "./_remote/transport.ts";

/** The members of an @upstash/redis client the backend uses. */
export interface UpstashClientLike {
  /** Runs a cached Lua script by its SHA1 (`EVALSHA`); rejects with `NOSCRIPT` if not cached. */
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  /** Runs a Lua script from its source (`EVAL`), caching it. */
  eval(script: string, keys: string[], args: string[]): Promise<unknown>;
}

/** Configuration of the Upstash backend; every field is optional. */
export interface UpstashBackendConfig extends BackendConfig {
  /** The REST URL; `UPSTASH_REDIS_REST_URL` by default. */
  url?: string;
  /** The REST token; `UPSTASH_REDIS_REST_TOKEN` by default. Never written to errors or logs. */
  token?: string;
  /** An @upstash/redis client to use instead of creating one. */
  client?: UpstashClientLike;
  /** The prefix of every key, "theus" by default: the same keys as the Redis backend. */
  keyPrefix?: string;
  /**
   * Seconds after which a series that no process writes any more is deleted (between this and
   * 1.1 times this), 3600 by default; a metric's keys go with their last series.
   */
  expireSeconds?: number;
  /**
   * Milliseconds between background flushes; 0 (none) by default, since serverless functions
   * flush once per invocation (see `withFlush`). Set it for long-running servers.
   */
  flushIntervalMs?: number;
  /** Milliseconds before a request counts as failed (and is retried later), 5000 by default. */
  requestTimeoutMs?: number;
  /** This process's id in per-instance gauges; random by default. */
  instanceId?: string;
  /** Seconds an instance counts as live after its last heartbeat, 60 by default. */
  instanceTtlSeconds?: number;
  /**
   * The largest request a flush sends, in bytes, 10,000,000 by default (Upstash's limit on its
   * free and pay-as-you-go plans); a larger flush is split into several requests, each batch
   * still applied exactly once.
   */
  maxRequestBytes?: number;
}

class UpstashTransport implements Transport {
  readonly description: string;
  readonly clustered = false;
  readonly ordered: boolean;
  readonly timeoutMs: number;
  readonly owned: boolean;
  #calls: ScriptCalls;
  #secret: string | undefined;
  #timeout: number;
  // A client that joins the commands of one tick into one request (auto-pipelining, on by
  // default in @upstash/redis) would join a split flush back into one request over the limit:
  // its calls go one at a time.
  #serial: boolean;
  #tail: Promise<unknown> = Promise.resolve();

  constructor(client: UpstashClientLike, description: string, secret: string | undefined, timeout: number) {
    this.#serial = (client as { enableAutoPipelining?: boolean }).enableAutoPipelining === true;
    this.ordered = this.#serial;
    this.timeoutMs = timeout;
    this.#calls = {
      evalsha: (sha, keys, args) => client.evalsha(sha, [...keys], args.map(text)),
      eval: (source, keys, args) => client.eval(source, [...keys], args.map(text)),
    };
    this.description = description;
    this.owned = secret !== undefined;
    this.#secret = secret;
    this.#timeout = timeout;
  }

  run(
    script: Script,
    keys: readonly string[],
    args: readonly Argument[],
    settled?: (reply: unknown, error?: unknown) => void,
  ): Promise<unknown> {
    if (!this.#serial) return this.#run(script, keys, args, settled);
    const result = this.#tail.then(() => this.#run(script, keys, args, settled));
    this.#tail = result.catch(() => {});
    return result;
  }

  // An answer that does not come in time counts as a failure, and the call as ended: each
  // request is its own, so sending the batch again queues nothing behind it, and a late answer
  // to it cannot count twice. (A Worker may never see that answer once its invocation is over.)
  async #run(
    script: Script,
    keys: readonly string[],
    args: readonly Argument[],
    settled?: (reply: unknown, error?: unknown) => void,
  ): Promise<unknown> {
    try {
      const reply = await bounded(runScript(this.#calls, script, keys, args), this.#timeout);
      settled?.(reply);
      return reply;
    } catch (error) {
      settled?.(undefined, error);
      throw new Error(this.#redact(errorMessage(error)));
    }
  }

  // Nothing to close: every request is its own HTTP exchange.
  async close(): Promise<void> {}

  // @upstash/redis appends the whole request body (every change of a batch, or the script) to
  // its HTTP errors; a message keeps the reason only.
  #redact(text: string): string {
    const reason = text.replace(/, command was: [\s\S]*$/, "");
    return this.#secret ? reason.split(this.#secret).join("<token>") : reason;
  }
}

// The client takes text only (a JSON request): bytes go as the text they encode. (A flush sends
// none: this transport has no `encode`.)
const decoder = new TextDecoder();
function text(arg: Argument): string {
  return typeof arg === "string" ? arg : decoder.decode(arg);
}

function createTransport(config: UpstashBackendConfig): UpstashTransport {
  const fail = configError("upstash");
  const timeout = config.requestTimeoutMs ?? 5000;
  if (typeof timeout !== "number" || !(timeout >= 0)) fail("requestTimeoutMs must be a number >= 0");
  if (config.client !== undefined) {
    const client = checkClient<UpstashClientLike>(config.client, "upstash", "@upstash/redis");
    return new UpstashTransport(client, "the given Upstash client", undefined, timeout);
  }
  const url = config.url ?? readEnv("UPSTASH_REDIS_REST_URL");
  const token = config.token ?? readEnv("UPSTASH_REDIS_REST_TOKEN");
  if (typeof url !== "string" || url === "") fail("no url: set config.url or UPSTASH_REDIS_REST_URL");
  if (typeof token !== "string" || token === "") {
    fail("no token: set config.token or UPSTASH_REDIS_REST_TOKEN");
  }
  let where = "";
  try {
    const parsed = new URL(url as string);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") throw new Error("not http");
    where = parsed.origin;
  } catch {
    fail("url must be an http:// or https:// URL");
  }
  // Replies stay as Redis sent them: the backend converts numbers itself.
  // One quick retry of a network error; beyond that the batch is kept and retried by the next
  // flush, so a long client-side retry loop would only hold up the invocation.
  const client = new Redis({
    url: url as string,
    token: token as string,
    automaticDeserialization: false,
    // Each call is a request of its own, within maxRequestBytes; calls are sent at once.
    enableAutoPipelining: false,
    retry: { retries: 1, backoff: () => 50 },
  });
  return new UpstashTransport(client as unknown as UpstashClientLike, where, token as string, timeout);
}

/**
 * UpstashBackend keeps every value in Redis over Upstash's REST API, with the data and key
 * layout of the Redis backend. Updates are synchronous and buffered; a flush is one HTTP
 * request (one billed command), and a collection one more. In a serverless function, flush at
 * the end of each invocation: `withFlush(handler)` hands the flush to `ctx.waitUntil`.
 *
 * @example On Cloudflare Workers
 * ```ts ignore
 * import { env } from "cloudflare:workers";
 * import { Counter, loadBackend, withFlush } from "@theus/theus";
 * import { UpstashBackend } from "@theus/theus/upstash";
 *
 * await loadBackend({
 *   backend: UpstashBackend,
 *   config: { url: env.UPSTASH_REDIS_REST_URL, token: env.UPSTASH_REDIS_REST_TOKEN },
 * });
 * const hits = new Counter({ name: "hits_total", help: "Hits" });
 * export default { fetch: withFlush(() => (hits.inc(), new Response("ok"))) };
 * ```
 */
export class UpstashBackend extends RemoteBackend {}

// Serverless functions flush once per invocation (withFlush), not on an interval.
useStores(
  UpstashBackend,
  "upstash",
  { flushIntervalMs: 0, maxRequestBytes: 10_000_000 },
  (config) => createTransport(config as UpstashBackendConfig),
);

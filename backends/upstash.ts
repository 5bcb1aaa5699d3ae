/**
 * The Upstash backend: Redis over HTTP (@upstash/redis), for serverless and edge functions.
 * Same data and key layout as the Redis backend, so functions and long-running servers can
 * share one set of metrics.
 *
 * @module
 */

import { Redis } from "@upstash/redis";
import { readEnv } from "./load.ts";
import { remoteOptions, RemoteStore, RemoteValue, StoreSet, type Transport } from "./_remote.ts";
import type { Script } from "./_scripts.ts";
import type { BackendConfig, CollectTarget, MetricInfo } from "./types.ts";
import type { Labels, MetricFamily } from "../metrics/types.ts";

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
  /** Seconds before a key that is not written again expires, 3600 by default. */
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
}

class UpstashTransport implements Transport {
  readonly description: string;
  #client: UpstashClientLike;
  #secret: string | undefined;
  #timeout: number;

  constructor(client: UpstashClientLike, description: string, secret: string | undefined, timeout: number) {
    this.#client = client;
    this.description = description;
    this.#secret = secret;
    this.#timeout = timeout;
  }

  async run(script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      try {
        return await this.#bounded(this.#client.evalsha(script.sha, [...keys], [...args]));
      } catch (error) {
        if (!/NOSCRIPT/.test(message(error))) throw error;
        return await this.#bounded(this.#client.eval(script.source, [...keys], [...args]));
      }
    } catch (error) {
      throw new Error(this.#redact(message(error)));
    }
  }

  // An answer that does not come in time counts as a failure; the batch is retried with its
  // id, so a late answer to this request cannot count twice.
  #bounded<T>(request: Promise<T>): Promise<T> {
    if (this.#timeout <= 0) return request;
    request.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.#timeout} ms`)), this.#timeout);
    });
    return Promise.race([request, timeout]).finally(() => clearTimeout(timer));
  }

  // @upstash/redis appends the whole request body (every change of a batch, or the script) to
  // its HTTP errors; a message keeps the reason only.
  #redact(text: string): string {
    const reason = text.replace(/, command was: [\s\S]*$/, "");
    return this.#secret ? reason.split(this.#secret).join("<token>") : reason;
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const stores = new StoreSet(
  "upstash",
  (config) =>
    new RemoteStore(
      createTransport(config as UpstashBackendConfig),
      remoteOptions({ flushIntervalMs: 0, ...config }, "upstash"),
    ),
);

function createTransport(config: UpstashBackendConfig): UpstashTransport {
  const fail = (why: string): never => {
    throw new TypeError(`Invalid upstash backend config: ${why}`);
  };
  const timeout = config.requestTimeoutMs ?? 5000;
  if (typeof timeout !== "number" || !(timeout >= 0)) fail("requestTimeoutMs must be a number >= 0");
  if (config.client !== undefined) {
    const client = config.client;
    if (typeof client?.evalsha !== "function" || typeof client?.eval !== "function") {
      fail("client must be an @upstash/redis client (with evalsha() and eval())");
    }
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
export class UpstashBackend extends RemoteValue {
  /**
   * Creates one value of one series.
   *
   * @param config The backend config, as given to `loadBackend`.
   * @param metric The series.
   * @param histogramBucket Which value of a histogram or summary series.
   */
  constructor(config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
    super(stores.get(config), metric, histogramBucket);
  }

  /**
   * Validates the config and creates the client; called by `loadBackend`.
   *
   * @param config The backend config.
   * @throws {TypeError} For an invalid config, or no url or token.
   */
  static initialize(config: BackendConfig): void {
    stores.get(config);
  }

  /**
   * Flushes every Upstash store of this isolate: one request each. Never rejects: failures
   * are counted and the changes kept for the next flush.
   *
   * @returns Once the flush has been attempted.
   */
  static flush(): Promise<void> {
    return stores.flush();
  }

  /**
   * Reads every series of these metrics in one request.
   *
   * @param config The backend config.
   * @param targets The metrics to read.
   * @returns One family per target.
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  static collect(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    return stores.collect(config, targets);
  }

  /**
   * Removes a series from Redis with the next flush, after `remove()` or `clear()`.
   *
   * @param config The backend config.
   * @param target The metric.
   * @param labels The series' complete label set.
   */
  static remove(config: BackendConfig, target: CollectTarget, labels: Labels): void {
    stores.remove(config, target, labels);
  }
}

/**
 * The Redis backend: every process and machine records into one Redis, over TCP (ioredis).
 *
 * Select it with configuration only: `THEUS_BACKEND=redis` (and `THEUS_BACKEND_CONFIG`
 * pointing at a JSON file), or `await loadBackend({ backend: "redis", config })`.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import Redis, { Cluster } from "ioredis";
import type { BackendConfig } from "../core/backend.ts";
import { RemoteBackend, useStores } from "./_remote/backend.ts";
import { checkClient, configError } from "./_remote/options.ts";
import type { Script } from "./_remote/scripts.ts";
import { type Argument, bounded, runScript, type ScriptCalls, type Transport } from "./_remote/transport.ts";

/** The members of an ioredis client (a `Redis` or a `Cluster`) the backend uses. */
export interface RedisClientLike {
  /** True for an ioredis `Cluster`: every shard then gets script calls of its own. */
  readonly isCluster?: boolean;
  /**
   * Runs a cached Lua script by its SHA1 (`EVALSHA`); rejects with `NOSCRIPT` if not cached.
   * Arguments are strings, but a flush's changes on Node and Deno: `Buffer`s of their UTF-8 text.
   */
  evalsha(sha: string, numKeys: number, args: readonly (string | Uint8Array)[]): Promise<unknown>;
  /** Runs a Lua script from its source (`EVAL`), caching it; arguments as for `evalsha`. */
  eval(script: string, numKeys: number, args: readonly (string | Uint8Array)[]): Promise<unknown>;
}

/** Configuration of the Redis backend; every field is optional. */
export interface RedisBackendConfig extends BackendConfig {
  /** `redis://[user:password@]host:port/db`; overrides host, port, db and password. */
  url?: string;
  /** 127.0.0.1 by default. */
  host?: string;
  /** 6379 by default. */
  port?: number;
  /** The database number, 0 by default. */
  db?: number;
  /** The ACL user name. */
  username?: string;
  /** The password. */
  password?: string;
  /**
   * The nodes of a Redis Cluster (`"host:port"` or `{ host, port }`; a few are enough, the rest
   * are discovered), instead of `url`, `host` and `port`. Keys are spread over the masters.
   */
  cluster?: (string | { host: string; port: number })[];
  /**
   * An ioredis client (`Redis` or `Cluster`) to use instead of creating one; its lifecycle stays
   * yours.
   */
  client?: RedisClientLike;
  /** The prefix of every key (`{theus}:m:<metric>`), "theus" by default. */
  keyPrefix?: string;
  /**
   * Seconds after which a series that no process writes any more is deleted (between this and
   * 1.1 times this), 3600 by default; a metric's keys go with their last series.
   */
  expireSeconds?: number;
  /** Milliseconds between background flushes, 1000 by default; 0 for none. */
  flushIntervalMs?: number;
  /** Milliseconds before a command counts as failed (and is retried), 2000 by default. */
  commandTimeoutMs?: number;
  /** This process's id in per-instance gauges; random by default. */
  instanceId?: string;
  /** Seconds an instance counts as live after its last heartbeat, 60 by default. */
  instanceTtlSeconds?: number;
  /** The largest script call a flush sends, in bytes; no bound by default. */
  maxRequestBytes?: number;
}

interface OwnedClient extends RedisClientLike {
  stream?: { ref?(): void; unref?(): void };
  reconnectTimeout?: { unref?(): void } | null;
  status: string;
  isCluster?: boolean;
  nodes?(role: "all"): { status: string; stream?: { ref?(): void; unref?(): void } }[];
  on(event: string, listener: (...args: unknown[]) => void): unknown;
  once(event: string, listener: (...args: unknown[]) => void): unknown;
  off(event: string, listener: (...args: unknown[]) => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

// How long a command waits for a connection that is being (re)established.
const READY_WAIT_MS = 1000;

// A flush's changes as bytes (ioredis sends a Buffer as it is, any other object as its string),
// on the engines whose young-generation collector copies the strings that outlive it (V8: Node,
// Deno). JavaScriptCore (Bun) never moves an object, and there the bytes only cost their
// encoding: in two runs of three, a flush of a million series took 12 % more of the process' CPU
// with them, and 18 % more time.
const encode = "Bun" in globalThis ? undefined : (text: string): Uint8Array => Buffer.from(text);

class IoredisTransport implements Transport {
  readonly description: string;
  readonly encode: ((text: string) => Uint8Array) | undefined = encode;
  readonly clustered: boolean;
  readonly ordered = true;
  readonly timeoutMs: number;
  #calls: ScriptCalls;
  #owned: OwnedClient | undefined;
  #inFlight = 0;
  #timeout: number;
  #waiting: Promise<void> | undefined;

  constructor(client: RedisClientLike, description: string, owned: OwnedClient | undefined, timeout: number) {
    this.#calls = {
      evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, [...keys, ...args]),
      eval: (source, keys, args) => client.eval(source, keys.length, [...keys, ...args]),
    };
    this.description = description;
    this.clustered = client.isCluster === true;
    this.timeoutMs = timeout;
    this.#owned = owned;
    this.#timeout = timeout;
    // A client of ours does not keep the process alive between flushes, so it can exit (and
    // flush at exit) like one without Redis.
    owned?.on("ready", () => this.#setRef(this.#inFlight > 0));
    // Nor does its timer between reconnection attempts: while Redis is away, a finished
    // process would otherwise live on (and never reach its exit flush) until Redis is back.
    owned?.on("reconnecting", () => owned.reconnectTimeout?.unref?.());
  }

  // The timeout is ours, not ioredis' `commandTimeout`: a call that times out stays on the
  // connection (ioredis cannot take it back) and `settled` hears its answer when Redis sends it,
  // so the writer never sends a batch again while an earlier copy still waits there.
  async run(
    script: Script,
    keys: readonly string[],
    args: readonly Argument[],
    settled?: (reply: unknown, error?: unknown) => void,
  ): Promise<unknown> {
    this.#inFlight++;
    this.#setRef(true);
    try {
      const call = (async () => {
        await this.#ready();
        return await runScript(this.#calls, script, keys, args);
      })();
      return await bounded(call, this.#timeout, settled);
    } finally {
      if (--this.#inFlight === 0) this.#setRef(false);
    }
  }

  // Only on a connected socket: Node's ref()/unref() on a connecting one queue a listener each.
  // A cluster's connections are those of its nodes.
  #setRef(on: boolean): void {
    const client = this.#owned;
    if (client?.status !== "ready") return;
    for (const connection of client.isCluster ? client.nodes!("all") : [client]) {
      if (connection.status !== "ready") continue;
      if (on) connection.stream?.ref?.();
      else connection.stream?.unref?.();
    }
  }

  get owned(): boolean {
    return this.#owned !== undefined;
  }

  // Commands fail at once while disconnected (no offline queue); wait a little for a connection.
  // The calls of one flush wait together.
  #ready(): Promise<void> | undefined {
    const client = this.#owned;
    if (client === undefined || client.status === "ready") return;
    if (client.status === "end") return Promise.reject(new Error("the connection is closed"));
    return this.#waiting ??= new Promise<void>((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const wait = Math.min(this.#timeout, READY_WAIT_MS);
      const timer = setTimeout(() => {
        client.off("ready", onReady);
        reject(new Error(`not connected (${client.status}) after ${wait} ms`));
      }, wait);
      client.once("ready", onReady);
    }).finally(() => (this.#waiting = undefined));
  }

  // The connection is held (referenced) until QUIT is answered: a process that awaits close()
  // as its last step must not end first.
  async close(): Promise<void> {
    if (this.#owned === undefined) return;
    this.#inFlight++;
    this.#setRef(true);
    try {
      await this.#owned.quit();
    } catch {
      this.#owned.disconnect();
    } finally {
      this.#inFlight--;
    }
  }
}

function createTransport(config: RedisBackendConfig): IoredisTransport {
  const fail = configError("redis");
  if (config.client !== undefined) {
    const client = checkClient<RedisClientLike>(config.client, "redis", "ioredis");
    return new IoredisTransport(client, "the given Redis client", undefined, 0);
  }
  const optional = (name: keyof RedisBackendConfig, type: "string" | "number") => {
    const value = config[name];
    if (value !== undefined && typeof value !== type) {
      fail(`${name} must be a ${type}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const url = optional("url", "string") as string | undefined;
  const host = (optional("host", "string") as string | undefined) ?? "127.0.0.1";
  const port = (optional("port", "number") as number | undefined) ?? 6379;
  const db = optional("db", "number") as number | undefined;
  optional("username", "string");
  optional("password", "string");
  const timeout = (optional("commandTimeoutMs", "number") as number | undefined) ?? 2000;
  const options = {
    host,
    port,
    db,
    username: config.username,
    password: config.password,
    // Fail fast while disconnected: the batch stays buffered and is retried, never queued twice.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    retryStrategy: (times: number) => Math.min(100 * times, 2000),
  };
  if (config.cluster !== undefined) return clusterTransport(config, options, timeout);
  let where = `redis://${host}:${port}`;
  if (url !== undefined) {
    try {
      const parsed = new URL(url);
      if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") throw new Error("not redis:");
      where = `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
    } catch {
      fail(`url must be a redis:// or rediss:// URL`);
    }
  }
  // deno-lint-ignore no-explicit-any
  const RedisClient = Redis as any;
  const client =
    (url !== undefined ? new RedisClient(url, options) : new RedisClient(options)) as OwnedClient;
  // Connection errors surface as failed flushes (counted), never as unhandled error events.
  client.on("error", () => {});
  return new IoredisTransport(client, where, client, timeout);
}

// A Cluster client from `cluster: [nodes]`, with the options of a single connection per node.
function clusterTransport(
  config: RedisBackendConfig,
  options: Record<string, unknown>,
  timeout: number,
): IoredisTransport {
  const fail = configError("redis");
  const nodes = config.cluster as unknown;
  for (const name of ["url", "host", "port", "db"] as const) {
    if (config[name] !== undefined) {
      fail(`cluster cannot be combined with ${name}: list the nodes in cluster`);
    }
  }
  if (!Array.isArray(nodes) || nodes.length === 0) {
    fail(`cluster must be a non-empty array of "host:port" or { host, port }, got ${JSON.stringify(nodes)}`);
  }
  const parsed = (nodes as unknown[]).map((node) => {
    if (typeof node === "string") {
      const match = /^(.+):(\d+)$/.exec(node);
      if (match !== null) return { host: match[1], port: Number(match[2]) };
    } else if (
      typeof node === "object" && node !== null && typeof (node as { host?: unknown }).host === "string" &&
      Number.isInteger((node as { port?: unknown }).port)
    ) {
      return { host: (node as { host: string }).host, port: (node as { port: number }).port };
    }
    return fail(`a cluster node must be "host:port" or { host, port }, got ${JSON.stringify(node)}`);
  });
  const { host: _host, port: _port, db: _db, ...redisOptions } = options;
  const client = new Cluster(parsed, {
    redisOptions,
    enableOfflineQueue: false,
    // A master that does not answer fails the call; its batches are retried with the next flush.
    retryDelayOnFailover: 100,
    clusterRetryStrategy: (times: number) => Math.min(100 * times, 2000),
  }) as unknown as OwnedClient;
  client.on("error", () => {});
  const where = `redis cluster ${parsed.map(({ host, port }) => `${host}:${port}`).join(",")}`;
  return new IoredisTransport(client, where, client, timeout);
}

/**
 * RedisBackend keeps every value in Redis, shared by all processes that use the same Redis and
 * `keyPrefix`. Updates are synchronous and buffered; they reach Redis in one script per flush,
 * each batch applied exactly once, on an interval, before each collection, on `flush()` and at
 * exit.
 *
 * @example
 * ```ts ignore
 * import { Counter, loadBackend } from "@theus/theus";
 *
 * await loadBackend({ backend: "redis", config: { host: "127.0.0.1", port: 6379 } });
 * const jobs = new Counter({ name: "jobs_total", help: "Jobs done" });
 * jobs.inc(); // recorded by every process into one shared total
 * ```
 */
export class RedisBackend extends RemoteBackend {}

useStores(
  RedisBackend,
  "redis",
  { flushIntervalMs: 1000, maxRequestBytes: Infinity },
  (config) => createTransport(config as RedisBackendConfig),
);

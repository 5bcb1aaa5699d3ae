// The configuration every remote backend shares, validated once, when its store is created.

import type { BackendConfig } from "../../core/backend.ts";
import type { ScriptCalls } from "./transport.ts";

/** The options every remote backend shares, validated. */
export interface RemoteOptions {
  /** The prefix of every key, inside a Redis Cluster hash tag: `{theus}:...`. */
  readonly keyPrefix: string;
  /** Seconds before a key that is not written again expires. */
  readonly expireSeconds: number;
  /** Milliseconds between background flushes; 0 for none. */
  readonly flushIntervalMs: number;
  /** This process's id in per-instance gauges and heartbeats; random by default. */
  readonly instanceId: string | undefined;
  /** Seconds an instance counts as live after its last heartbeat. */
  readonly instanceTtlSeconds: number;
  /** The largest request a flush sends, in bytes as JSON; Infinity for no bound. */
  readonly maxRequestBytes: number;
}

/** What a remote backend's options default to. */
export interface RemoteDefaults {
  /** Milliseconds between background flushes. */
  readonly flushIntervalMs: number;
  /** The largest request a flush sends. */
  readonly maxRequestBytes: number;
}

/** Returns a function that throws the config error of a backend: `Invalid redis backend config: ...`. */
export function configError(backend: string): (why: string) => never {
  return (why) => {
    throw new TypeError(`Invalid ${backend} backend config: ${why}`);
  };
}

/** Validates the options every remote backend shares. */
export function remoteOptions(
  config: BackendConfig,
  backend: string,
  defaults: RemoteDefaults,
): RemoteOptions {
  const fail = configError(backend);
  const keyPrefix = config.keyPrefix ?? "theus";
  if (typeof keyPrefix !== "string" || keyPrefix === "" || /[{}]/.test(keyPrefix)) {
    fail(`keyPrefix must be a non-empty string without braces, got ${JSON.stringify(keyPrefix)}`);
  }
  const number = (name: string, fallback: number, min: number): number => {
    const value = config[name] ?? fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
      fail(`${name} must be a number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const instanceId = config.instanceId;
  if (instanceId !== undefined && (typeof instanceId !== "string" || !/^[\w.:-]+$/.test(instanceId))) {
    fail(`instanceId must be letters, digits, "_", ".", ":" or "-", got ${JSON.stringify(instanceId)}`);
  }
  return {
    keyPrefix: keyPrefix as string,
    expireSeconds: Math.round(number("expireSeconds", 3600, 1)),
    flushIntervalMs: number("flushIntervalMs", defaults.flushIntervalMs, 0),
    instanceId: instanceId as string | undefined,
    instanceTtlSeconds: number("instanceTtlSeconds", 60, 1),
    maxRequestBytes: config.maxRequestBytes === undefined || config.maxRequestBytes === Infinity
      ? (config.maxRequestBytes as number | undefined) ?? defaults.maxRequestBytes
      : number("maxRequestBytes", 0, 4096),
  };
}

/** Returns `config.client` when it can run scripts, failing with a clear error otherwise. */
export function checkClient<T>(client: unknown, backend: string, library: string): T {
  const calls = client as Partial<ScriptCalls> | null;
  if (typeof calls?.evalsha !== "function" || typeof calls?.eval !== "function") {
    configError(backend)(`client must be an ${library} client (with evalsha() and eval())`);
  }
  return client as T;
}

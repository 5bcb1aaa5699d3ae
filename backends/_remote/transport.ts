// How scripts reach Redis: the interface both transports implement, and the one place where a
// script the server does not know yet is sent whole.

import { errorMessage } from "../../core/_runtime.ts";
import type { Script } from "./scripts.ts";

/** A script argument: text, or UTF-8 bytes where the transport sends bytes (see `encode`). */
export type Argument = string | Uint8Array;

/** How scripts reach Redis: over TCP (ioredis) or over HTTP (Upstash's REST API). */
export interface Transport {
  /**
   * Runs a script in one round trip. The promise fails once the transport's timeout has passed;
   * the call itself may still be waiting on the connection, and `settled` hears when it ends:
   * with the reply, or with the error when it failed.
   */
  run(
    script: Script,
    keys: readonly string[],
    args: readonly Argument[],
    settled?: (reply: unknown, error?: unknown) => void,
  ): Promise<unknown>;
  /**
   * A large argument's UTF-8 bytes, sent as they are, where the transport takes bytes (ioredis
   * on V8); undefined where arguments go as text (JSON over HTTP). A flush keeps its batches'
   * changes as these until Redis confirms them: outside the engine's heap, they are never copied
   * by its young-generation collector. (As text, they made most of what that collector promoted
   * during a flush of a million series on Deno, about 3 MB at each collection, at 14-17 ms each;
   * as bytes, 0.2 MB at 2-3 ms.)
   */
  readonly encode?: (text: string) => Uint8Array;
  /** Where the transport connects, for error messages (never with credentials). */
  readonly description: string;
  /**
   * Whether the keys of one script must share a hash tag (Redis Cluster): then every shard gets
   * script calls of its own.
   */
  readonly clustered: boolean;
  /**
   * Whether calls run in the order they were sent (one connection per server, as ioredis
   * keeps); false where each call is a request of its own that may overtake another (HTTP).
   */
  readonly ordered: boolean;
  /** Milliseconds before a call counts as failed; 0 when the client passed in has its own. */
  readonly timeoutMs: number;
  /** Whether the backend created the connection (and so closes it); false for a client passed in. */
  readonly owned: boolean;
  /** Closes what the transport opened. */
  close(): Promise<void>;
}

/** The two calls a client offers to run a script, with keys and arguments as arrays. */
export interface ScriptCalls {
  /** Runs a script the server has cached, by its SHA-1 (`EVALSHA`). */
  evalsha(sha: string, keys: readonly string[], args: readonly Argument[]): Promise<unknown>;
  /** Runs a script from its source (`EVAL`), which also caches it. */
  eval(source: string, keys: readonly string[], args: readonly Argument[]): Promise<unknown>;
}

/**
 * Runs a script by its SHA-1, and sends the source only when the server answers `NOSCRIPT`
 * (after a restart or `SCRIPT FLUSH`): one round trip almost always, two at worst.
 */
export async function runScript(
  calls: ScriptCalls,
  script: Script,
  keys: readonly string[],
  args: readonly Argument[],
): Promise<unknown> {
  try {
    return await calls.evalsha(script.sha, keys, args);
  } catch (error) {
    if (!errorMessage(error).includes("NOSCRIPT")) throw error;
    return await calls.eval(script.source, keys, args);
  }
}

/**
 * The promise of a call, failing after `ms` milliseconds (never for 0), and `settled` told when
 * the call itself ends, even later.
 */
export function bounded<T>(
  call: Promise<T>,
  ms: number,
  settled?: (reply: unknown, error?: unknown) => void,
): Promise<T> {
  call.then((reply) => settled?.(reply), (error) => settled?.(undefined, error ?? new Error("failed")));
  if (ms <= 0) return call;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}

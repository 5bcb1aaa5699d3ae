/**
 * `shareMemory()`: one set of metrics for the threads of a process.
 *
 * @module
 */

import { Arena } from "../backends/shared/arena.ts";
import { sharedConfig, SharedMemoryBackend } from "../backends/shared/backend.ts";
import { SharedStore } from "../backends/shared/store.ts";
import { Binding, memoryBinding, selectBinding } from "../metrics/_binding.ts";

/**
 * What `shareMemory()` returns and a worker passes back to it: the shared arena. Send it to
 * workers with `postMessage` or `workerData`. Where the runtime cannot share memory, `memory`
 * is undefined and every thread keeps its own values.
 */
export interface SharedMemoryHandle {
  /** Marks the object as a handle. */
  readonly kind: "theus.shared-memory";
  /**
   * The arena: a shared `WebAssembly.Memory` (no WebAssembly code runs; its buffer is a
   * SharedArrayBuffer that grows), or undefined where memory cannot be shared.
   */
  readonly memory: WebAssembly.Memory | undefined;
}

/** Options of {@linkcode shareMemory}. */
export interface ShareMemoryOptions {
  /**
   * The most the arena may grow to, in bytes: from 64 KiB to 4 GiB, in steps of 64 KiB (rounded
   * down); 1 GiB by default. That is address space, not memory: the arena grows as series are
   * created. Only the thread that creates the arena uses this.
   */
  maxBytes?: number;
  /**
   * Seconds a thread counts as live after its last heartbeat (written every second), for the
   * gauge modes `livesum`, `livemax`, `livemin`, `livelatest` and `liveall`. 5 by default.
   */
  instanceTtlSeconds?: number;
}

const KIND = "theus.shared-memory";
const DEFAULT_MAX_BYTES = 2 ** 30;

/** Whether this runtime can share a growable memory between threads. */
function canShare(): boolean {
  try {
    return typeof Atomics === "object" && typeof SharedArrayBuffer === "function" &&
      new WebAssembly.Memory({ initial: 0, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

/**
 * Shares the memory backend's values with worker threads. Called without a handle, in the
 * thread that owns the metrics (the main thread), it creates the shared arena, selects it for
 * metrics created from then on, and returns a handle to pass to workers. Called with that handle
 * in a worker, it joins the arena. Call it before creating metrics.
 *
 * Metrics with the same name and labels in different threads are then the same series; a
 * collection from any thread sees every thread's values, with no message at scrape time. A
 * counter adds up exactly, under any contention: each thread writes its own slots, and a
 * collection adds them up. A thread that ends keeps what it recorded. Gauges combine threads by
 * their mode, the thread being the instance: `shared` (the default: `set()` is last-writer-wins,
 * `inc()` and `dec()` add up), `sum`, `max`, `min`, `latest`, `all` and the `live` variants.
 *
 * Where the runtime cannot share memory (Workers isolates, pages without cross-origin
 * isolation), each thread keeps its own values, without error.
 *
 * @param handle The handle the main thread's call returned; omit it to create the arena.
 * @param options The arena's maximum size, and the liveness of threads.
 * @returns The handle, to pass to workers.
 * @throws {TypeError} For a value that is not a handle, or a memory that holds no arena.
 *
 * @example Count in workers, expose in the main thread
 * ```ts ignore
 * // main.ts
 * import { Counter, metricsHandler, shareMemory } from "@theus/theus";
 *
 * const handle = await shareMemory();
 * const jobs = new Counter({ name: "jobs_total", help: "Jobs done", labelNames: ["kind"] });
 * const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
 * worker.postMessage(handle);
 * Deno.serve(metricsHandler());
 *
 * // worker.ts
 * import { Counter, shareMemory } from "@theus/theus";
 *
 * self.onmessage = async (event) => {
 *   await shareMemory(event.data);
 *   const jobs = new Counter({ name: "jobs_total", help: "Jobs done", labelNames: ["kind"] });
 *   jobs.labels({ kind: "resize" }).inc(); // seen by the main thread's /metrics
 * };
 * ```
 */
export async function shareMemory(
  handle?: SharedMemoryHandle,
  options: ShareMemoryOptions = {},
): Promise<SharedMemoryHandle> {
  if (typeof options !== "object" || options === null) {
    throw new TypeError("Invalid shareMemory() options: expected an object");
  }
  const ttl = options.instanceTtlSeconds ?? 5;
  if (typeof ttl !== "number" || !(ttl > 0)) {
    throw new TypeError(
      `Invalid instanceTtlSeconds for shareMemory(): expected a number > 0, got ${String(ttl)}`,
    );
  }
  let arena: Arena | undefined;
  if (handle === undefined) {
    if (canShare()) {
      const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
      if (
        typeof maxBytes !== "number" || !Number.isInteger(maxBytes) || maxBytes < 65536 || maxBytes > 2 ** 32
      ) {
        throw new TypeError(
          `Invalid maxBytes for shareMemory(): expected an integer from 65536 to 2^32, got ${
            String(maxBytes)
          }`,
        );
      }
      arena = Arena.create(maxBytes - (maxBytes % 65536));
    }
  } else {
    if (typeof handle !== "object" || handle === null || (handle as { kind?: unknown }).kind !== KIND) {
      throw new TypeError(
        "Invalid shareMemory() handle: expected what shareMemory() returned in the main thread",
      );
    }
    if (handle.memory !== undefined && canShare()) arena = new Arena(handle.memory);
  }
  if (arena === undefined) {
    selectBinding(memoryBinding());
    return { kind: KIND, memory: undefined };
  }
  const store = await SharedStore.join(arena, ttl * 1000);
  selectBinding(new Binding(SharedMemoryBackend, sharedConfig(store)));
  return { kind: KIND, memory: arena.memory };
}

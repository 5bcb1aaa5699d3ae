/**
 * The memory backend, the default: every value lives in this process.
 *
 * @module
 */

import type { Backend, BackendConfig, MetricInfo } from "./types.ts";

/**
 * MemoryBackend keeps one value in this process. Mutations are synchronous and a read always
 * returns the last value written. It is the default backend, so there is nothing to load.
 * Metrics on the memory backend keep their numbers in their own fields, which is smaller than
 * an instance per value and behaves the same; the class is the protocol's reference, and what
 * `loadBackend({ backend: MemoryBackend })` selects.
 *
 * @example Select it explicitly
 * ```ts
 * import { loadBackend } from "../mod.ts";
 * import { MemoryBackend } from "./memory.ts";
 *
 * await loadBackend({ backend: MemoryBackend });
 * ```
 */
export class MemoryBackend implements Backend {
  #value = 0;

  /**
   * Creates the value, starting at zero. The arguments are part of the protocol and unused.
   *
   * @param _config Ignored.
   * @param _metric Ignored.
   * @param _histogramBucket Ignored.
   */
  constructor(_config?: BackendConfig, _metric?: MetricInfo, _histogramBucket?: string) {}

  /**
   * Adds `value`.
   *
   * @param value The amount to add.
   */
  inc(value: number): void {
    this.#value += value;
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount to subtract.
   */
  dec(value: number): void {
    this.#value -= value;
  }

  /**
   * Replaces the value.
   *
   * @param value The new value.
   */
  set(value: number): void {
    this.#value = value;
  }

  /**
   * Returns the value.
   *
   * @returns The last value written.
   */
  get(): number {
    return this.#value;
  }
}

/**
 * The memory backend, the default: every value lives in this process.
 *
 * @module
 */

import type { Backend, BackendConfig, MetricInfo, SeriesValues } from "../core/backend.ts";
import type { Exemplar } from "../core/types.ts";

/**
 * MemoryBackend keeps values in this process. Mutations are synchronous and a read always
 * returns the last value written. It is the default backend, so there is nothing to load;
 * `loadBackend({ backend: MemoryBackend })` (or `"memory"`) selects it again.
 *
 * Metrics use its class-level `values` hook, which keeps a whole series in one small object; an
 * instance holds one value, as the protocol's reference.
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

  /**
   * Creates the values of one series, all in one object: a single number for a counter or a
   * gauge, an array for a histogram or a summary.
   *
   * @param _config Ignored.
   * @param _metric Ignored.
   * @param names The names of the values; undefined for a single value.
   * @returns The series' values, all zero.
   */
  static values(
    _config: BackendConfig,
    _metric: MetricInfo,
    names: readonly string[] | undefined,
  ): SeriesValues {
    return names === undefined ? new OneValue() : new ManyValues(names.length);
  }
}

// The value of a counter or gauge series.
class OneValue implements SeriesValues {
  #value = 0;
  #exemplar: Exemplar | undefined;

  exemplar(_index: number, exemplar: Exemplar): void {
    this.#exemplar = exemplar;
  }

  exemplars(): readonly (Exemplar | undefined)[] | undefined {
    return this.#exemplar === undefined ? undefined : [this.#exemplar];
  }

  inc(_index: number, value: number): void {
    this.#value += value;
  }

  dec(_index: number, value: number): void {
    this.#value -= value;
  }

  set(_index: number, value: number): void {
    this.#value = value;
  }

  get(_index: number): number {
    return this.#value;
  }

  getAll(): number[] {
    return [this.#value];
  }
}

// The values of a histogram or summary series.
class ManyValues implements SeriesValues {
  #values: number[];
  #exemplars: (Exemplar | undefined)[] | undefined;

  exemplar(index: number, exemplar: Exemplar): void {
    (this.#exemplars ??= [])[index] = exemplar;
  }

  exemplars(): readonly (Exemplar | undefined)[] | undefined {
    return this.#exemplars?.slice();
  }

  constructor(size: number) {
    this.#values = new Array<number>(size).fill(0);
  }

  inc(index: number, value: number): void {
    this.#values[index] += value;
  }

  dec(index: number, value: number): void {
    this.#values[index] -= value;
  }

  set(index: number, value: number): void {
    this.#values[index] = value;
  }

  get(index: number): number {
    return this.#values[index];
  }

  getAll(): number[] {
    return this.#values.slice();
  }
}

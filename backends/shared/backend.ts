// The shared memory backend: the memory backend, with the values in an arena that the threads
// of one process share. shareMemory() selects it; its config holds the thread's store.

import type { Backend, BackendConfig, CollectTarget, MetricInfo, SeriesValues } from "../../core/backend.ts";
import type { Labels, MetricFamily } from "../../core/types.ts";
import type { SharedStore } from "./store.ts";

/** The config shareMemory() selects the backend with. */
export interface SharedMemoryConfig extends BackendConfig {
  /** This thread's side of the arena. */
  readonly store: SharedStore;
}

// The stores this thread joined, for flush().
const joined = new Set<SharedStore>();

/** Makes the config that selects a store of this thread. */
export function sharedConfig(store: SharedStore): SharedMemoryConfig {
  joined.add(store);
  return { store };
}

function storeOf(config: BackendConfig): SharedStore {
  const store = (config as Partial<SharedMemoryConfig>).store;
  if (store === undefined) throw new TypeError("The shared memory backend is selected with shareMemory()");
  return store;
}

/**
 * Values kept in memory shared by the threads of a process (a shared WebAssembly.Memory): each thread
 * writes its own slots, and a collection from any thread adds them up. Selected by
 * `shareMemory()`.
 *
 * @internal Selected through `shareMemory()`, not an entry point.
 */
export class SharedMemoryBackend implements Backend {
  #values: SeriesValues;

  /**
   * Creates one value of one series.
   *
   * @param config The config shareMemory() made.
   * @param metric The series.
   * @param histogramBucket Which value of a histogram or summary series.
   */
  constructor(config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
    this.#values = storeOf(config).values(
      metric,
      histogramBucket === undefined ? undefined : [histogramBucket],
    );
  }

  /**
   * Adds `value`.
   *
   * @param value The amount.
   */
  inc(value: number): void {
    this.#values.inc(0, value);
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount.
   */
  dec(value: number): void {
    this.#values.dec(0, value);
  }

  /**
   * Replaces the value.
   *
   * @param value The new value.
   */
  set(value: number): void {
    this.#values.set(0, value);
  }

  /**
   * Returns the value, every thread's part added up.
   *
   * @returns The value.
   */
  get(): number | Promise<number> {
    return this.#values.get(0);
  }

  /**
   * Creates the values of one series.
   *
   * @param config The config shareMemory() made.
   * @param metric The series.
   * @param names The names of its values.
   * @returns The values.
   */
  static values(
    config: BackendConfig,
    metric: MetricInfo,
    names: readonly string[] | undefined,
  ): SeriesValues {
    return storeOf(config).values(metric, names);
  }

  /**
   * Checks a new metric against what other threads defined under its name.
   *
   * @param config The config.
   * @param target The metric.
   * @throws {TypeError} When another thread defined the name another way.
   */
  static define(config: BackendConfig, target: CollectTarget): void {
    storeOf(config).define(target);
  }

  /**
   * Waits until the series this thread created are registered in the arena.
   *
   * @returns Once registered.
   * @throws A registration that failed (a definition that conflicts with another thread's, an
   * arena that is full), once; every collection of the store fails with it too.
   */
  static async flush(): Promise<void> {
    let failed: unknown;
    for (const store of joined) {
      await store.settle();
      failed ??= store.unreported();
    }
    if (failed !== undefined) throw failed;
  }

  /**
   * Reads every series of these metrics, from every thread.
   *
   * @param config The config.
   * @param targets The metrics.
   * @returns One family per target.
   */
  static collect(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    return storeOf(config).collect(targets);
  }

  /**
   * Removes a series from every thread's memory.
   *
   * @param config The config.
   * @param target The metric.
   * @param labels The series' labels.
   */
  static remove(config: BackendConfig, target: CollectTarget, labels: Labels): void {
    storeOf(config).remove(target, labels);
  }
}

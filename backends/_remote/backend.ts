// What the Redis and Upstash backend classes share: every class-level hook of the protocol, over
// the stores of one class (one per config object). A subclass only says how its stores are made.

import type {
  Backend,
  BackendConfig,
  CollectTarget,
  FamilyPart,
  MetricInfo,
  SeriesValues,
} from "../../core/backend.ts";
import type { Collector, Labels, MetricFamily } from "../../core/types.ts";
import { healthCollector } from "./health.ts";
import { type RemoteDefaults, remoteOptions } from "./options.ts";
import { RemoteStore } from "./store.ts";
import type { Transport } from "./transport.ts";
import { kindOf, RemoteValue, remoteValues } from "./values.ts";

/** The stores of one remote backend class: one per config object, created on first use. */
export class StoreSet {
  readonly live: Set<RemoteStore> = new Set();
  #byConfig = new WeakMap<object, RemoteStore>();
  #create: (config: BackendConfig) => RemoteStore;

  constructor(create: (config: BackendConfig) => RemoteStore) {
    this.#create = create;
  }

  /** The store of a config, created (and its config validated) on first use, or after a close. */
  get(config: BackendConfig): RemoteStore {
    let store = this.#byConfig.get(config);
    if (store === undefined || store.closed) {
      store = this.#create(config);
      this.#byConfig.set(config, store);
      this.live.add(store);
    }
    return store;
  }

  /** Flushes every live store; never rejects. */
  async flush(): Promise<void> {
    await Promise.all([...this.live].map((store) => store.flush()));
  }

  /** Flushes, then closes the stores whose connection the backend opened. */
  async close(): Promise<void> {
    await this.flush();
    const closing = [...this.live].filter((store) => store.transport.owned);
    for (const store of closing) this.live.delete(store);
    await Promise.all(closing.map((store) => store.close()));
  }
}

const SETS = new WeakMap<object, StoreSet>();

/**
 * Gives a remote backend class its stores: one per config object, with the shared options
 * validated first, then the transport the class makes.
 */
export function useStores(
  cls: object,
  backend: string,
  defaults: RemoteDefaults,
  transport: (config: BackendConfig) => Transport,
): void {
  SETS.set(
    cls,
    new StoreSet((config) => {
      const options = remoteOptions(config, backend, defaults);
      return new RemoteStore(backend, transport(config), options);
    }),
  );
}

function storesOf(cls: object): StoreSet {
  for (let c: object | null = cls; c !== null; c = Object.getPrototypeOf(c)) {
    const stores = SETS.get(c);
    if (stores !== undefined) return stores;
  }
  throw new TypeError("A remote backend class needs its stores (useStores)");
}

/**
 * The class the remote backends share. Values are buffered in this process and flushed to
 * Redis in one script per flush; every series of a registry is read in one round trip.
 *
 * @internal The base of `RedisBackend` and `UpstashBackend`, not an entry point.
 */
export abstract class RemoteBackend implements Backend {
  /** The health metrics of every remote store, registered in `defaultRegistry` on selection. */
  static readonly health: Collector = healthCollector;
  #value: RemoteValue;

  /**
   * Creates one value of one series.
   *
   * @param config The backend config, as given to `loadBackend`.
   * @param metric The series.
   * @param histogramBucket Which value of a histogram or summary series.
   */
  constructor(config: BackendConfig, metric: MetricInfo, histogramBucket?: string) {
    this.#value = new RemoteValue(
      kindOf(storesOf(new.target).get(config), metric, [histogramBucket ?? ""]),
      metric,
    );
  }

  /**
   * Adds `value`.
   *
   * @param value The amount to add.
   */
  inc(value: number): void {
    this.#value.inc(0, value);
  }

  /**
   * Subtracts `value`.
   *
   * @param value The amount to subtract.
   */
  dec(value: number): void {
    this.#value.dec(0, value);
  }

  /**
   * Replaces the value.
   *
   * @param value The new value.
   */
  set(value: number): void {
    this.#value.set(0, value);
  }

  /**
   * Returns the value every process shares, after flushing this process's changes.
   *
   * @returns The value.
   */
  get(): Promise<number> {
    return this.#value.get(0);
  }

  /** Drops what is buffered; the series was removed. */
  dispose(): void {
    this.#value.dispose();
  }

  /**
   * Creates the values of one whole series, buffered together.
   *
   * @param config The backend config.
   * @param metric The series.
   * @param names The names of its values; undefined for a single value.
   * @returns The series' values.
   */
  static values(
    config: BackendConfig,
    metric: MetricInfo,
    names: readonly string[] | undefined,
  ): SeriesValues {
    return remoteValues(storesOf(this).get(config), metric, names);
  }

  /**
   * Validates the config and sets up its store; called by `loadBackend`.
   *
   * @param config The backend config.
   * @throws {TypeError} For an invalid config.
   */
  static initialize(config: BackendConfig): void {
    storesOf(this).get(config);
  }

  /**
   * Flushes every store of this class. Never rejects: failures are counted in
   * `theus_backend_flush_failures_total` and the changes kept for the next flush.
   *
   * @returns Once the flush has been attempted.
   */
  static flush(): Promise<void> {
    return storesOf(this).flush();
  }

  /**
   * Reads every series of these metrics in one round trip.
   *
   * @param config The backend config.
   * @param targets The metrics to read.
   * @returns One family per target.
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  static collect(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    return storesOf(this).get(config).collect(targets);
  }

  /**
   * Reads every series of these metrics as parts, given as they are read: a scrape's body goes
   * out while the rest is read.
   *
   * @param config The backend config.
   * @param targets The metrics to read.
   * @returns The parts of each target's family, in target order.
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  static stream(config: BackendConfig, targets: readonly CollectTarget[]): AsyncIterable<FamilyPart> {
    return storesOf(this).get(config).stream(targets);
  }

  /**
   * Removes a series from Redis with the next flush, after `remove()` or `clear()`.
   *
   * @param config The backend config.
   * @param target The metric.
   * @param labels The series' complete label set.
   */
  static remove(config: BackendConfig, target: CollectTarget, labels: Labels): void {
    storesOf(this).get(config).remove(target, labels);
  }

  /**
   * Flushes, then closes what the backend opened (not a client you passed in): its stores
   * leave the exit hooks and the health metrics. Metrics created earlier on them stop writing;
   * select the backend again for new ones.
   *
   * @returns Once closed.
   */
  static close(): Promise<void> {
    return storesOf(this).close();
  }
}

// The values of one series, as one thread writes them: into its own page of the arena, with
// plain stores (no other thread writes there). Until the series is registered (that takes the
// mutex, so it happens asynchronously) the changes are kept here and replayed once it is.
//
// Slots per thread and series:
//   sums (counters, histograms, summaries)   one number per value, added to
//   shared gauge                              [added, epoch of added, set value, epoch of set]
//   per-instance gauge                        [value, stamp]: 1, or the time of the last write for "latest"
//
// A shared gauge is last-writer-wins for set() and adds up inc()/dec() from every thread: set()
// starts a new epoch of the series (an atomic counter in the arena) and what any thread added
// under an older epoch no longer counts.

import type { GaugeMode, MetricInfo, SeriesValues } from "../../core/backend.ts";
import { labelsText } from "../../core/_labeltext.ts";
import { definitionOf, type Entry } from "./directory.ts";

/** What a series' values need from the thread's store. */
export interface SeriesStore {
  /** Queues a series for registration; `attach` follows. */
  register(series: SharedSeries): void;
  /** Reads the current value `index` of a series, every thread's part added up. */
  read(series: SharedSeries, index: number): number;
  /** Waits until every queued registration is done. */
  flush(): Promise<void>;
}

/** The number of slots a series takes per thread. */
export function widthOf(type: MetricInfo["type"], mode: GaugeMode | undefined, values: number): number {
  if (type !== "gauge") return values;
  return mode === undefined || mode === "shared" ? 4 : 2;
}

/** The values of a series in one thread. */
export abstract class SharedSeries implements SeriesValues {
  /** The metric's definition, for registration. */
  readonly definition: ReturnType<typeof definitionOf>;
  /** The canonical labels text. */
  readonly labels: string;
  /** Slots per thread. */
  readonly width: number;
  /** The arena entry, once registered. */
  entry: Entry | undefined;
  protected readonly store: SeriesStore;
  // This thread's page and the series' first slot in it; undefined until attached, and again
  // once the series is removed here.
  protected f64: Float64Array | undefined;
  protected slot = -1;
  protected disposed = false;

  constructor(store: SeriesStore, metric: MetricInfo, values: number) {
    this.store = store;
    this.definition = definitionOf({
      name: metric.name,
      exposedName: metric.name,
      help: "",
      type: metric.type,
      labelNames: metric.labelNames,
      buckets: undefined,
      gaugeMode: metric.gaugeMode,
    });
    this.labels = labelsText(metric.labelValues);
    this.width = widthOf(metric.type, this.definition.mode, values);
  }

  /** Points the values at this thread's page, then replays what was recorded before. */
  attach(entry: Entry, page: Float64Array): void {
    this.entry = entry;
    if (this.disposed) return;
    this.slot = entry.index;
    this.f64 = page;
    this.replay();
  }

  abstract inc(index: number, value: number): void;
  abstract set(index: number, value: number): void;
  protected abstract replay(): void;

  dec(index: number, value: number): void {
    this.inc(index, -value);
  }

  get(index: number): number | Promise<number> {
    if (this.entry !== undefined) return this.store.read(this, index);
    return this.store.flush().then(() => this.get(index));
  }

  getAll(): number[] | Promise<number[]> {
    if (this.entry === undefined) return this.store.flush().then(() => this.getAll());
    const out: number[] = [];
    for (let i = 0; i < this.width; i++) out.push(this.store.read(this, i));
    return out;
  }

  /** The series was removed here: later writes go nowhere. */
  dispose(): void {
    this.disposed = true;
    this.f64 = undefined;
  }
}

/** Counters, histograms and summaries: every thread adds into its own slots. */
export class SharedSums extends SharedSeries {
  #pending: number[];

  constructor(store: SeriesStore, metric: MetricInfo, values: number) {
    super(store, metric, values);
    this.#pending = new Array<number>(values).fill(0);
    store.register(this);
  }

  inc(index: number, value: number): void {
    const f64 = this.f64;
    if (f64 !== undefined) f64[this.slot + index] += value;
    else if (!this.disposed) this.#pending[index] += value;
  }

  set(index: number, value: number): void {
    const f64 = this.f64;
    if (f64 !== undefined) f64[this.slot + index] = value;
  }

  protected replay(): void {
    const f64 = this.f64!;
    for (let i = 0; i < this.#pending.length; i++) f64[this.slot + i] += this.#pending[i];
    this.#pending.fill(0);
  }
}

/** A gauge in the default "shared" mode: set() is last-writer-wins, inc() and dec() add up. */
export class SharedGauge extends SharedSeries {
  #added = 0;
  #setTo: number | undefined;

  constructor(store: SeriesStore, metric: MetricInfo) {
    super(store, metric, 1);
    store.register(this);
  }

  inc(_index: number, value: number): void {
    const f64 = this.f64;
    if (f64 === undefined) {
      if (!this.disposed) this.#added += value;
      return;
    }
    const slot = this.slot;
    // A plain read: an epoch missed by a moment orders this inc() before that set().
    const epoch = this.entry!.epoch![0];
    if (f64[slot + 1] !== epoch) {
      f64[slot + 1] = epoch;
      f64[slot] = 0;
    }
    f64[slot] += value;
  }

  set(_index: number, value: number): void {
    const f64 = this.f64;
    if (f64 === undefined) {
      if (this.disposed) return;
      this.#setTo = value;
      this.#added = 0;
      return;
    }
    const slot = this.slot;
    const epoch = Atomics.add(this.entry!.epoch!, 0, 1) + 1;
    f64[slot] = 0;
    f64[slot + 1] = epoch;
    f64[slot + 2] = value;
    f64[slot + 3] = epoch;
  }

  protected replay(): void {
    if (this.#setTo !== undefined) this.set(0, this.#setTo);
    if (this.#added !== 0) this.inc(0, this.#added);
    this.#setTo = undefined;
    this.#added = 0;
  }
}

/** A gauge with one value per thread (modes sum, max, min, latest, all and their live variants). */
export class InstanceGauge extends SharedSeries {
  #latest: boolean;
  #local = 0;
  #written = false;

  constructor(store: SeriesStore, metric: MetricInfo) {
    super(store, metric, 1);
    this.#latest = metric.gaugeMode === "latest" || metric.gaugeMode === "livelatest";
    store.register(this);
  }

  inc(_index: number, value: number): void {
    const f64 = this.f64;
    if (f64 === undefined) {
      if (!this.disposed) this.#written = (this.#local += value, true);
      return;
    }
    f64[this.slot] += value;
    f64[this.slot + 1] = this.#latest ? Date.now() : 1;
  }

  set(_index: number, value: number): void {
    const f64 = this.f64;
    if (f64 === undefined) {
      if (!this.disposed) this.#written = (this.#local = value, true);
      return;
    }
    f64[this.slot] = value;
    f64[this.slot + 1] = this.#latest ? Date.now() : 1;
  }

  protected replay(): void {
    // The thread is an instance of the gauge from the moment the series exists here.
    this.f64![this.slot + 1] = this.#latest ? Date.now() : 1;
    if (this.#written) this.set(0, this.#local);
  }
}

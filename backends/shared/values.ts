// The values of one series, as one thread writes them: into its own page of the arena, with
// plain stores (no other thread writes there). Until the series is registered (that takes the
// mutex, so it happens asynchronously) the changes are kept here and replayed once it is.
//
// Slots per thread and series:
//   sums (counters, histograms, summaries)   one value per number, added to
//   shared gauge                              [added, epoch of added, set value, epoch of set]
//                                             (the epochs in the Int32 parts)
//   per-instance gauge                        [value, stamp]: 1, or the time of the last write for "latest"
//
// A value in a page is a Float64 part plus an Int32 part. Sums, and what a shared gauge adds,
// put whole increments in the Int32 part: on every engine an integer add on an Int32Array is several times cheaper than a float add
// on a Float64Array (whose load, add and store wait on one another when one child is updated in
// a loop), and the counting that services do is whole numbers. Before the Int32 part would
// overflow, it is carried into the Float64 part under the thread's carry sequence, so that no
// reader ever adds a half-carried value. Per-instance gauges use the Float64 parts only.
//
// Exemplars (counters and histograms) go to the thread's own exemplar slot of the value (see
// exemplars.ts), once the store has claimed one; until then the store keeps them.
//
// A shared gauge is last-writer-wins for set() and adds up inc()/dec() from every thread: set()
// starts a new epoch of the series (an atomic counter in the arena) and what any thread added
// under an older epoch no longer counts.

import type { MetricInfo, SeriesValues } from "../../core/backend.ts";
import { labelsText } from "../../core/_labeltext.ts";
import type { Exemplar } from "../../core/types.ts";
import type { Entry, Page } from "./directory.ts";

/** What a series' values need from the thread's store. */
export interface SeriesStore {
  /** Queues a series for registration; `attach` follows. */
  register(series: SharedSeries): void;
  /** Reads the current value `index` of a series, every thread's part added up. */
  read(series: SharedSeries, index: number): number;
  /** Waits until every queued registration is done. */
  flush(): Promise<void>;
  /**
   * Writes an exemplar into this thread's slot of the value, or keeps it until the series is
   * registered or a slot is there.
   */
  exemplar(series: SharedSeries, index: number, exemplar: Exemplar): void;
  /** The newest exemplar of each value of a series, every thread's slots compared. */
  readExemplars(series: SharedSeries): (Exemplar | undefined)[] | undefined;
}

/** The number of slots a series takes per thread. */
export function widthOf(metric: Pick<MetricInfo, "type" | "gaugeMode">, values: number): number {
  if (metric.type !== "gauge") return values;
  return metric.gaugeMode === undefined || metric.gaugeMode === "shared" ? 4 : 2;
}

/** The values of a series in one thread. */
export abstract class SharedSeries implements SeriesValues {
  /** The metric's name. */
  readonly name: string;
  /** The canonical labels text (the entry's own, once attached). */
  labels: string;
  /** Slots per thread. */
  readonly width: number;
  /** The arena entry, once registered. */
  entry: Entry | undefined;
  protected readonly store: SeriesStore;
  // This thread's page and the series' first slot in it; undefined until attached, and again
  // once the series is removed here.
  protected f64: Float64Array | undefined;
  protected ints: Int32Array | undefined;
  protected carry: Int32Array | undefined;
  protected slot = -1;
  protected disposed = false;

  constructor(store: SeriesStore, metric: MetricInfo, values: number) {
    this.store = store;
    this.name = metric.name;
    this.labels = labelsText(metric.labelValues);
    this.width = widthOf(metric, values);
  }

  /** Points the values at this thread's page, then replays what was recorded before. */
  attach(entry: Entry, page: Page, carry: Int32Array): void {
    this.entry = entry;
    this.labels = entry.labels;
    if (this.disposed) return;
    this.slot = entry.index;
    this.f64 = page.f64;
    this.ints = page.ints;
    this.carry = carry;
    this.replay();
  }

  abstract inc(index: number, value: number): void;
  abstract set(index: number, value: number): void;
  protected abstract replay(): void;

  // Moves the Int32 part into the Float64 part (adding `value`, or setting it to `value`), with
  // the thread's carry sequence odd meanwhile: a reader that sees the sequence change reads again.
  protected carryInto(at: number, value: number, set = false): void {
    const f64 = this.f64!;
    const ints = this.ints!;
    const carry = this.carry!;
    Atomics.add(carry, 0, 1);
    f64[at] = set ? value : f64[at] + ints[at] + value;
    ints[at] = 0;
    Atomics.add(carry, 0, 1);
  }

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

  /** Whether the series was removed here. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The series was removed here: later writes go nowhere. */
  dispose(): void {
    this.disposed = true;
    this.f64 = undefined;
    this.ints = undefined;
  }
}

/** Counters, histograms and summaries: every thread adds into its own slots. */
export class SharedSums extends SharedSeries {
  #pending: number[] | undefined;

  constructor(store: SeriesStore, metric: MetricInfo, values: number) {
    super(store, metric, values);
    store.register(this);
  }

  // A whole number goes to the Int32 part, carried into the Float64 part when the Int32 part
  // would overflow; anything else to the Float64 part. (Written out again in SharedGauge: a
  // method both classes call sees both classes, and engines then index it more slowly.)
  inc(index: number, value: number): void {
    const ints = this.ints;
    if (ints !== undefined) {
      const at = this.slot + index;
      if ((value | 0) === value) {
        const sum = ints[at] + value;
        if ((sum | 0) === sum) ints[at] = sum;
        else this.carryInto(at, value);
      } else {
        this.f64![at] += value;
      }
    } else if (!this.disposed) {
      (this.#pending ??= new Array<number>(this.width).fill(0))[index] += value;
    }
  }

  set(index: number, value: number): void {
    if (this.ints !== undefined) this.carryInto(this.slot + index, value, true);
  }

  exemplar(index: number, exemplar: Exemplar): void {
    if (!this.disposed) this.store.exemplar(this, index, exemplar);
  }

  exemplars(): (Exemplar | undefined)[] | undefined | Promise<(Exemplar | undefined)[] | undefined> {
    if (this.entry !== undefined) return this.store.readExemplars(this);
    if (this.disposed) return undefined;
    return this.store.flush().then(() => this.exemplars());
  }

  protected replay(): void {
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending !== undefined) { for (let i = 0; i < pending.length; i++) this.inc(i, pending[i]); }
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
    const ints = this.ints;
    if (ints === undefined) {
      if (!this.disposed) this.#added += value;
      return;
    }
    const slot = this.slot;
    // A plain read: an epoch missed by a moment orders this inc() before that set().
    const epoch = this.entry!.epoch![0];
    if (ints[slot + 1] !== epoch) {
      // Added under an older epoch: no longer counts. Zeroed before the epoch is written, so a
      // reader that sees the new epoch never adds the old amount.
      this.f64![slot] = 0;
      ints[slot] = 0;
      ints[slot + 1] = epoch;
    }
    if ((value | 0) === value) {
      const sum = ints[slot] + value;
      if ((sum | 0) === sum) ints[slot] = sum;
      else this.carryInto(slot, value);
    } else {
      this.f64![slot] += value;
    }
  }

  set(_index: number, value: number): void {
    const ints = this.ints;
    if (ints === undefined) {
      if (this.disposed) return;
      this.#setTo = value;
      this.#added = 0;
      return;
    }
    const f64 = this.f64!;
    const slot = this.slot;
    const epoch = Atomics.add(this.entry!.epoch!, 0, 1) + 1;
    f64[slot] = 0;
    ints[slot] = 0;
    ints[slot + 1] = epoch;
    f64[slot + 2] = value;
    ints[slot + 3] = epoch;
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

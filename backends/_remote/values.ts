// The values of one series in a remote store. The object is its own pending entry: updates fold
// into it, and it joins the store's queue once per flush, so the hot path allocates nothing and
// the buffer grows with the series touched, never with the number of updates.

import { GAUGE_MODES, type GaugeMode, type MetricInfo, type SeriesValues } from "../../core/backend.ts";
import { field, labelsText, metricKey } from "./layout.ts";

// Every gauge mode but "shared" keeps one value per instance.
const PER_INSTANCE: ReadonlySet<GaugeMode> = new Set<GaugeMode>(GAUGE_MODES.slice(1));

/** Whether a gauge mode keeps one value per instance. */
export function perInstance(mode: GaugeMode | undefined): boolean {
  return mode !== undefined && PER_INSTANCE.has(mode);
}

/** What a series' values need from the store they belong to. */
export interface ValueStore {
  /** The store's key prefix. */
  readonly keyPrefix: string;
  /** This process's id in per-instance gauges. */
  readonly instanceId: string;
  /** Queues the values for the next flush. */
  enqueue(values: RemoteValues): void;
  /** Tells the store a gauge keeps one value per instance (it then sends heartbeats). */
  usePerInstance(): void;
  /** Pushes what is pending; never rejects. */
  flush(): Promise<void>;
  /** Reads fields of a metric hash, 0 for an absent one, in one round trip. */
  read(key: string, fields: readonly string[]): Promise<number[]>;
}

/** The changes of one batch: flat `key index, op, field, value` quadruples. */
export type Changes = string[];

/**
 * The values of one series. Changes are kept per value: added up (`inc`, `dec`), or replaced
 * (`set`, gauges only). A gauge in a per-instance mode owns its value and writes it whole.
 */
export class RemoteValues implements SeriesValues {
  /** The metric's hash. */
  readonly key: string;
  /** Whether the values wait in the store's queue. */
  queued = false;
  #store: ValueStore;
  #labels: string;
  #names: readonly string[] | undefined;
  #deltas: number[];
  #setTo = 0;
  #hasSet = false;
  // Not written yet: the first batch writes every value, so a new series shows up at once, as
  // it does in memory.
  #fresh = true;
  #disposed = false;
  #perInstance: boolean;
  #latest: boolean;
  #local = 0;

  constructor(store: ValueStore, metric: MetricInfo, names: readonly string[] | undefined) {
    this.#store = store;
    this.key = metricKey(store.keyPrefix, metric.name);
    this.#labels = labelsText(metric.labelValues);
    this.#names = names;
    this.#deltas = new Array<number>(names?.length ?? 1).fill(0);
    const mode = metric.type === "gauge" ? metric.gaugeMode : undefined;
    this.#perInstance = perInstance(mode);
    this.#latest = mode === "latest" || mode === "livelatest";
    if (this.#perInstance) store.usePerInstance();
    store.enqueue(this);
  }

  inc(index: number, value: number): void {
    if (this.#perInstance) this.#local += value;
    else this.#deltas[index] += value;
    if (!this.queued) this.#store.enqueue(this);
  }

  dec(index: number, value: number): void {
    this.inc(index, -value);
  }

  set(index: number, value: number): void {
    if (this.#perInstance) {
      this.#local = value;
    } else {
      this.#setTo = value;
      this.#hasSet = true;
      this.#deltas[index] = 0;
    }
    if (!this.queued) this.#store.enqueue(this);
  }

  /** The value shared by every process, after this process's pending changes are flushed. */
  async get(index: number): Promise<number> {
    if (this.#perInstance) return this.#local;
    await this.#store.flush();
    return (await this.#store.read(this.key, [field(this.#labels, this.#names?.[index])]))[0];
  }

  /** Every shared value of the series, in one round trip after the flush. */
  async getAll(): Promise<number[]> {
    if (this.#perInstance) return [this.#local];
    await this.#store.flush();
    const labels = this.#labels;
    return await this.#store.read(this.key, (this.#names ?? [""]).map((name) => field(labels, name)));
  }

  /** Drops what is pending; the series was removed, and later writes are ignored. */
  dispose(): void {
    this.#disposed = true;
    this.#reset();
  }

  /** Appends this series' changes to a batch, then starts afresh. Nothing once disposed. */
  drain(changes: Changes, keyIndex: string): void {
    this.queued = false;
    if (this.#disposed) return;
    const labels = this.#labels;
    if (this.#perInstance) {
      const value = this.#latest ? `${Date.now()}:${this.#local}` : String(this.#local);
      changes.push(keyIndex, "s", field(labels, "", this.#store.instanceId), value);
    } else if (this.#hasSet) {
      changes.push(keyIndex, "s", field(labels), String(this.#setTo + this.#deltas[0]));
    } else {
      const deltas = this.#deltas;
      const names = this.#names;
      for (let i = 0; i < deltas.length; i++) {
        if (deltas[i] !== 0 || this.#fresh) {
          changes.push(keyIndex, "i", field(labels, names?.[i]), String(deltas[i]));
        }
      }
    }
    this.#reset();
  }

  #reset(): void {
    this.#deltas.fill(0);
    this.#hasSet = false;
    this.#fresh = false;
  }
}

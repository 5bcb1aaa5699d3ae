// The values of one series in a remote store. The object is its own pending entry: updates fold
// into it, and it joins the store's queue once per flush, so the hot path allocates nothing and
// the buffer grows with the series touched, never with the number of updates. A counter or gauge
// has one value (RemoteValue), a histogram or summary several (RemoteValues). A counter series
// and a histogram's buckets also keep the latest exemplar given since the last flush, which the
// flush script writes only when no later one is stored.

import { GAUGE_MODES, type GaugeMode, type MetricInfo, type SeriesValues } from "../../core/backend.ts";
import type { Exemplar } from "../../core/types.ts";
import {
  exemplarField,
  exemplarText,
  field,
  indexMember,
  labelsText,
  type MetricKeys,
  parseExemplar,
  shardOf,
  whole,
} from "./layout.ts";

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
  /** A metric's keys in every shard, made once for all its series. */
  keysOf(name: string): MetricKeys;
  /** Queues the values for the next flush. */
  enqueue(values: Pending): void;
  /** Tells the store a gauge keeps one value per instance (it then sends heartbeats). */
  usePerInstance(): void;
  /** Pushes what is pending; never rejects. */
  flush(): Promise<void>;
  /** Reads fields of a metric hash, 0 for an absent one, in one round trip. */
  read(key: string, fields: readonly string[]): Promise<number[]>;
  /** Reads fields of a metric hash as text, undefined for an absent one, in one round trip. */
  readText(key: string, fields: readonly string[]): Promise<(string | undefined)[]>;
}

/** The exemplars of a series, by position, or undefined when there is none. */
type Exemplars = (Exemplar | undefined)[] | undefined;

// Whether `next` replaces `kept` as the latest exemplar: a tie replaces, as in the flush script.
function later(next: Exemplar, kept: Exemplar | undefined): boolean {
  return kept === undefined || (next.timestamp ?? Infinity) >= (kept.timestamp ?? 0);
}

/** The changes of one batch: flat `key index, op, field, value` quadruples. */
export type Changes = string[];

/** Creates the values of one series in a store. */
export function remoteValues(
  store: ValueStore,
  metric: MetricInfo,
  names: readonly string[] | undefined,
): SeriesValues {
  return names === undefined || names.length === 1
    ? new RemoteValue(store, metric, names?.[0] ?? "")
    : new RemoteValues(store, metric, names);
}

/** What every pending entry of a store's queue is. */
export abstract class Pending implements SeriesValues {
  /** The shard of the series. */
  readonly shard: number;
  /** The metric's hash in that shard. */
  readonly key: string;
  /** The metric's last-write index in that shard. */
  readonly index: string;
  /** The metric's value names, each followed by "|", for the flush script's expiry. */
  readonly valueNames: string;
  /** Whether the values wait in the store's queue. */
  queued = false;
  /** When this process last wrote the series into the last-write index (Unix ms). */
  touchedAt = -Infinity;
  protected readonly store: ValueStore;
  /**
   * The one string a series keeps of its labels: the field of its first value (labels text, "|",
   * value name, "|"), or for a series of this process's own instance, whose fields are made at its
   * first flush (see `instanceId`), the labels text. Its labels text, and a shared series' member
   * in the last-write index, are its start; the keys of its hash and index are its metric's. Kept
   * apart, these five strings made a series about 150 bytes larger (Deno: 674 against 518 bytes
   * of heap a counter series), and a flush of a million series started marking a gigabyte heap.
   */
  protected readonly text: string;
  // The length of the labels text at the start of `text`.
  readonly #cut: number;
  // Not written yet: the first batch writes every value, so a new series shows up at once, as
  // it does in memory.
  protected fresh = true;
  protected disposed = false;
  #member: string | undefined;
  #ownInstance: boolean;

  constructor(store: ValueStore, metric: MetricInfo, names: readonly string[]) {
    this.store = store;
    const labels = labelsText(metric.labelValues);
    this.shard = shardOf(metric.name, labels);
    const keys = store.keysOf(metric.name);
    this.key = keys.hashes[this.shard];
    this.index = keys.indexes[this.shard];
    this.valueNames = names.length === 1 ? `${names[0]}|` : names.map((name) => `${name}|`).join("");
    const mode = metric.type === "gauge" ? metric.gaugeMode : undefined;
    this.#ownInstance = metric.perInstance === true || perInstance(mode);
    this.text = this.#ownInstance ? labels : whole(field(labels, names[0]));
    this.#cut = labels.length;
  }

  /** The labels text of the series. */
  protected get labels(): string {
    return this.text.length === this.#cut ? this.text : this.text.slice(0, this.#cut);
  }

  /**
   * The series' member in the last-write index, as the flush script's "t" change takes it: a text
   * (`member`) less its last `memberCut` characters. A shared series' member is the start of its
   * text (its labels text and "|"), so a flush makes no string for it; a per-instance series' is
   * made at its first flush, and kept.
   */
  get member(): string {
    if (!this.#ownInstance) return this.text;
    return this.#member ??= whole(indexMember(this.text, this.store.instanceId));
  }

  /** How many characters at the end of `member` are not the member's, in decimal. */
  get memberCut(): string {
    return this.#ownInstance ? "0" : String(this.text.length - this.#cut - 1);
  }

  abstract inc(index: number, value: number): void;
  abstract set(index: number, value: number): void;
  abstract getAll(): Promise<number[]>;

  dec(index: number, value: number): void {
    this.inc(index, -value);
  }

  /** The value every process shares, after this process's pending changes are flushed. */
  async get(index: number): Promise<number> {
    return (await this.getAll())[index];
  }

  /** Drops what is pending; the series was removed, and later writes are ignored. */
  dispose(): void {
    this.disposed = true;
    this.reset();
  }

  /** Appends this series' changes to a batch, then starts afresh. Nothing once disposed. */
  drain(changes: Changes, keyIndex: string): void {
    this.queued = false;
    if (!this.disposed) this.append(changes, keyIndex);
    this.reset();
  }

  /** Flushes, then reads these fields in one round trip. */
  protected async read(fields: readonly string[]): Promise<number[]> {
    await this.store.flush();
    return await this.store.read(this.key, fields);
  }

  /** Flushes, then reads the exemplars in these fields in one round trip; undefined for none. */
  protected async readExemplars(fields: readonly string[]): Promise<Exemplars> {
    await this.store.flush();
    const texts = await this.store.readText(this.key, fields);
    let out: Exemplars;
    for (let i = 0; i < texts.length; i++) {
      const exemplar = texts[i] === undefined ? undefined : parseExemplar(texts[i]!);
      if (exemplar !== undefined) (out ??= [])[i] = exemplar;
    }
    return out;
  }

  protected abstract append(changes: Changes, keyIndex: string): void;

  protected reset(): void {
    this.fresh = false;
  }
}

/**
 * The one value of a counter or gauge series (or of one bucket, made by the per-value
 * constructor). Increments of exactly 1 are counted apart, as an integer: a fractional delta
 * would otherwise make engines keep every delta as a boxed double. A gauge in a per-instance
 * mode, and any per-instance metric, owns its value and writes it whole, with this process's
 * instance id.
 */
export class RemoteValue extends Pending {
  #name: string;
  // A per-instance series' field; a shared series' is `text`.
  #field: string | undefined;
  #delta = 0;
  #ones = 0;
  #setTo = 0;
  #hasSet = false;
  #perInstance: boolean;
  #latest: boolean;
  #local = 0;
  #counter: boolean;
  #exemplar: Exemplar | undefined;

  constructor(store: ValueStore, metric: MetricInfo, name: string) {
    super(store, metric, [name]);
    this.#name = name;
    const mode = metric.type === "gauge" ? metric.gaugeMode : undefined;
    this.#perInstance = metric.perInstance === true || perInstance(mode);
    this.#latest = mode === "latest" || mode === "livelatest";
    this.#counter = metric.type === "counter";
    if (this.#perInstance) store.usePerInstance();
    store.enqueue(this);
  }

  inc(_index: number, value: number): void {
    if (this.#perInstance) this.#local += value;
    else if (value === 1) this.#ones++;
    else this.#delta += value;
    if (!this.queued) this.store.enqueue(this);
  }

  set(_index: number, value: number): void {
    if (this.#perInstance) {
      this.#local = value;
    } else {
      this.#setTo = value;
      this.#hasSet = true;
      this.#delta = 0;
      this.#ones = 0;
    }
    if (!this.queued) this.store.enqueue(this);
  }

  /** Keeps the exemplar until the next flush, unless a later one is pending. Counters only. */
  exemplar(_index: number, exemplar: Exemplar): void {
    if (!this.#counter || !later(exemplar, this.#exemplar)) return;
    this.#exemplar = exemplar;
    if (!this.queued) this.store.enqueue(this);
  }

  /** The latest exemplar every process shares, after this process's are flushed; a counter's only. */
  exemplars(): Exemplars | Promise<Exemplars> {
    if (!this.#counter) return undefined;
    return this.readExemplars([exemplarField(this.labels, this.#name, this.#instance())]);
  }

  async getAll(): Promise<number[]> {
    return this.#perInstance ? [this.#local] : await this.read([this.#fieldName()]);
  }

  protected append(changes: Changes, keyIndex: string): void {
    if (this.#perInstance) {
      const value = this.#latest ? `${Date.now()}:${this.#local}` : String(this.#local);
      changes.push(keyIndex, "s", this.#fieldName(), value);
    } else if (this.#hasSet) {
      changes.push(keyIndex, "s", this.#fieldName(), String(this.#setTo + this.#delta + this.#ones));
    } else if (this.#delta !== 0 || this.#ones !== 0 || this.fresh) {
      changes.push(keyIndex, "i", this.#fieldName(), String(this.#delta + this.#ones));
    }
    const exemplar = this.#exemplar;
    if (exemplar !== undefined) {
      changes.push(
        keyIndex,
        "x",
        exemplarField(this.labels, this.#name, this.#instance()),
        exemplarText(exemplar),
      );
    }
  }

  protected override reset(): void {
    super.reset();
    this.#delta = 0;
    this.#ones = 0;
    this.#hasSet = false;
    this.#exemplar = undefined;
  }

  // A shared series' field is its text; a per-instance one's is made at its first flush.
  #fieldName(): string {
    if (!this.#perInstance) return this.text;
    return this.#field ??= whole(field(this.text, this.#name, this.store.instanceId));
  }

  #instance(): string {
    return this.#perInstance ? this.store.instanceId : "";
  }
}

/**
 * The values of a histogram series (its buckets, then its sum) or a summary's (count, sum). A
 * per-instance metric's fields carry this process's instance id.
 */
export class RemoteValues extends Pending {
  #names: readonly string[];
  #fields: string[] | undefined;
  #deltas: number[];
  #instance: string;
  // Histograms only: the exemplars of the buckets (every value but the last, the sum).
  #buckets: number;
  #exemplars: Exemplars;

  constructor(store: ValueStore, metric: MetricInfo, names: readonly string[]) {
    super(store, metric, names);
    this.#names = names;
    this.#deltas = new Array<number>(names.length).fill(0);
    this.#instance = metric.perInstance === true ? store.instanceId : "";
    this.#buckets = metric.type === "histogram" ? names.length - 1 : 0;
    if (metric.perInstance === true) store.usePerInstance();
    else this.#fieldNames();
    store.enqueue(this);
  }

  inc(index: number, value: number): void {
    this.#deltas[index] += value;
    if (!this.queued) this.store.enqueue(this);
  }

  set(): void {
    throw new TypeError("A histogram or summary value is never set, only added to");
  }

  /** Keeps a bucket's exemplar until the next flush, unless a later one is pending. Histograms only. */
  exemplar(index: number, exemplar: Exemplar): void {
    if (!(index >= 0 && index < this.#buckets)) return;
    const exemplars = this.#exemplars ??= [];
    if (!later(exemplar, exemplars[index])) return;
    exemplars[index] = exemplar;
    if (!this.queued) this.store.enqueue(this);
  }

  /** The latest exemplar of each bucket every process shares, after this process's are flushed. */
  exemplars(): Exemplars | Promise<Exemplars> {
    if (this.#buckets === 0) return undefined;
    return this.readExemplars(
      this.#names.slice(0, this.#buckets).map((name) => exemplarField(this.labels, name, this.#instance)),
    );
  }

  getAll(): Promise<number[]> {
    return this.read(this.#fieldNames());
  }

  protected append(changes: Changes, keyIndex: string): void {
    const deltas = this.#deltas;
    const fields = this.#fieldNames();
    for (let i = 0; i < deltas.length; i++) {
      if (deltas[i] !== 0 || this.fresh) changes.push(keyIndex, "i", fields[i], String(deltas[i]));
    }
    const exemplars = this.#exemplars;
    if (exemplars !== undefined) {
      for (let i = 0; i < exemplars.length; i++) {
        const exemplar = exemplars[i];
        if (exemplar === undefined) continue;
        changes.push(
          keyIndex,
          "x",
          exemplarField(this.labels, this.#names[i], this.#instance),
          exemplarText(exemplar),
        );
      }
    }
  }

  protected override reset(): void {
    super.reset();
    this.#deltas.fill(0);
    this.#exemplars = undefined;
  }

  // Made with the series, or for a per-instance one at its first flush: see `instanceId`.
  #fieldNames(): string[] {
    if (this.#fields !== undefined) return this.#fields;
    const shared = this.#instance === "";
    const labels = this.labels;
    return this.#fields = this.#names.map((name, i) =>
      shared && i === 0 ? this.text : whole(field(labels, name, this.#instance))
    );
  }
}

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
  metricKeys,
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

/**
 * What the series of one metric share in one store: where they are kept and how they are
 * written, made once (by `kindOf`) and held by each series rather than copied into it.
 */
export interface SeriesKind {
  readonly store: ValueStore;
  readonly type: MetricInfo["type"];
  readonly gaugeMode: GaugeMode | undefined;
  /** Whether the metric was made per instance (`MetricInfo.perInstance`). */
  readonly perInstanceMetric: boolean;
  /** Whether each series is this process's own: a per-instance metric, or a per-instance gauge mode. */
  readonly ownInstance: boolean;
  /** The names of a series' values. */
  readonly names: readonly string[];
  /** The value names, each followed by "|", for the flush script's expiry. */
  readonly valueNames: string;
  /** How many characters at the end of a series' `member` are not the member's, in decimal. */
  readonly memberCut: string;
  /** The metric's hash and last-write index in each shard. */
  readonly keys: MetricKeys;
}

// The kinds of series of each store, by metric name (a name may have several: other types or
// value names, in other registries).
const KINDS = new WeakMap<ValueStore, Map<string, SeriesKind[]>>();

/** The kind of a metric's series in a store, made at its first series. */
export function kindOf(store: ValueStore, metric: MetricInfo, names: readonly string[]): SeriesKind {
  let byName = KINDS.get(store);
  if (byName === undefined) KINDS.set(store, byName = new Map());
  const gaugeMode = metric.type === "gauge" ? metric.gaugeMode : undefined;
  const perInstanceMetric = metric.perInstance === true;
  const kinds = byName.get(metric.name) ?? [];
  for (const kind of kinds) {
    if (
      kind.type === metric.type && kind.gaugeMode === gaugeMode &&
      kind.perInstanceMetric === perInstanceMetric && kind.names.length === names.length &&
      kind.names.every((name, i) => name === names[i])
    ) return kind;
  }
  const ownInstance = perInstanceMetric || perInstance(gaugeMode);
  const kind: SeriesKind = {
    store,
    type: metric.type,
    gaugeMode,
    perInstanceMetric,
    ownInstance,
    names: [...names],
    valueNames: names.map((name) => `${name}|`).join(""),
    // A shared series' member is its first field less its value name and "|".
    memberCut: ownInstance ? "0" : String(names[0].length + 1),
    keys: metricKeys(store.keyPrefix, metric.name),
  };
  kinds.push(kind);
  byName.set(metric.name, kinds);
  return kind;
}

/** Creates the values of one series in a store. */
export function remoteValues(
  store: ValueStore,
  metric: MetricInfo,
  names: readonly string[] | undefined,
): SeriesValues {
  const kind = kindOf(store, metric, names ?? [""]);
  return kind.names.length === 1 ? new RemoteValue(kind, metric) : new RemoteValues(kind, metric);
}

/** What every pending entry of a store's queue is. */
export abstract class Pending implements SeriesValues {
  /** What the series shares with the others of its metric. */
  readonly kind: SeriesKind;
  /** The shard of the series. */
  readonly shard: number;
  /** Whether the values wait in the store's queue. */
  queued = false;
  /** When this process last wrote the series into the last-write index (Unix ms). */
  touchedAt = -Infinity;
  /**
   * The one string a series keeps of its labels: the field of its first value (labels text, "|",
   * value name, "|"), or for a series of this process's own instance, whose fields are made at its
   * first flush (see `instanceId`), the labels text. Its labels text, and a shared series' member
   * in the last-write index, are its start. A counter series that kept its labels text, member and
   * keys apart, and its metric's names, modes and store, took 674 bytes of heap on Deno (518 with
   * one string, about 460 with its kind too), and a flush of a million of them started the
   * engine's marking of that heap, which held the event loop for 100-190 ms at a time.
   */
  protected readonly text: string;
  // Not written yet: the first batch writes every value, so a new series shows up at once, as
  // it does in memory.
  protected fresh = true;
  protected disposed = false;
  // A per-instance series' member, made at its first flush.
  #member: string | undefined;

  constructor(kind: SeriesKind, metric: MetricInfo) {
    this.kind = kind;
    const labels = labelsText(metric.labelValues);
    this.shard = shardOf(metric.name, labels);
    this.text = kind.ownInstance ? labels : whole(field(labels, kind.names[0]));
  }

  /** The metric's hash in the series' shard. */
  get key(): string {
    return this.kind.keys.hashes[this.shard];
  }

  /** The metric's last-write index in the series' shard. */
  get index(): string {
    return this.kind.keys.indexes[this.shard];
  }

  /** The metric's value names, each followed by "|", for the flush script's expiry. */
  get valueNames(): string {
    return this.kind.valueNames;
  }

  protected get store(): ValueStore {
    return this.kind.store;
  }

  /** The labels text of the series. */
  protected get labels(): string {
    const { text } = this;
    return this.kind.ownInstance ? text : text.slice(0, text.length - this.kind.names[0].length - 2);
  }

  /** This process's instance id in the series' fields, or "" for a shared series. */
  protected get instance(): string {
    return this.kind.ownInstance ? this.kind.store.instanceId : "";
  }

  /**
   * The series' member in the last-write index, as the flush script's "t" change takes it: a text
   * (`member`) less its last `memberCut` characters. A shared series' member is the start of its
   * text (its labels text and "|"), so a flush makes no string for it; a per-instance series' is
   * made at its first flush, and kept.
   */
  get member(): string {
    if (!this.kind.ownInstance) return this.text;
    return this.#member ??= whole(indexMember(this.text, this.kind.store.instanceId));
  }

  /** How many characters at the end of `member` are not the member's, in decimal. */
  get memberCut(): string {
    return this.kind.memberCut;
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
  // A per-instance series' field; a shared series' is `text`.
  #field: string | undefined;
  #delta = 0;
  #ones = 0;
  #setTo = 0;
  #hasSet = false;
  // The kind's `ownInstance`, read by every inc().
  #perInstance: boolean;
  #local = 0;
  #exemplar: Exemplar | undefined;

  constructor(kind: SeriesKind, metric: MetricInfo) {
    super(kind, metric);
    this.#perInstance = kind.ownInstance;
    if (this.#perInstance) kind.store.usePerInstance();
    kind.store.enqueue(this);
  }

  inc(_index: number, value: number): void {
    if (this.#perInstance) this.#local += value;
    else if (value === 1) this.#ones++;
    else this.#delta += value;
    if (!this.queued) this.kind.store.enqueue(this);
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
    if (!this.queued) this.kind.store.enqueue(this);
  }

  /** Keeps the exemplar until the next flush, unless a later one is pending. Counters only. */
  exemplar(_index: number, exemplar: Exemplar): void {
    if (this.kind.type !== "counter" || !later(exemplar, this.#exemplar)) return;
    this.#exemplar = exemplar;
    if (!this.queued) this.kind.store.enqueue(this);
  }

  /** The latest exemplar every process shares, after this process's are flushed; a counter's only. */
  exemplars(): Exemplars | Promise<Exemplars> {
    if (this.kind.type !== "counter") return undefined;
    return this.readExemplars([exemplarField(this.labels, this.kind.names[0], this.instance)]);
  }

  async getAll(): Promise<number[]> {
    return this.#perInstance ? [this.#local] : await this.read([this.#fieldName()]);
  }

  protected append(changes: Changes, keyIndex: string): void {
    if (this.#perInstance) {
      const mode = this.kind.gaugeMode;
      const latest = mode === "latest" || mode === "livelatest";
      const value = latest ? `${Date.now()}:${this.#local}` : String(this.#local);
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
        exemplarField(this.labels, this.kind.names[0], this.instance),
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
    return this.#field ??= whole(field(this.text, this.kind.names[0], this.kind.store.instanceId));
  }
}

/**
 * The values of a histogram series (its buckets, then its sum) or a summary's (count, sum). A
 * per-instance metric's fields carry this process's instance id.
 */
export class RemoteValues extends Pending {
  #fields: string[] | undefined;
  #deltas: number[];
  #exemplars: Exemplars;

  constructor(kind: SeriesKind, metric: MetricInfo) {
    super(kind, metric);
    this.#deltas = new Array<number>(kind.names.length).fill(0);
    if (kind.ownInstance) kind.store.usePerInstance();
    else this.#fieldNames();
    kind.store.enqueue(this);
  }

  inc(index: number, value: number): void {
    this.#deltas[index] += value;
    if (!this.queued) this.kind.store.enqueue(this);
  }

  set(): void {
    throw new TypeError("A histogram or summary value is never set, only added to");
  }

  /** Keeps a bucket's exemplar until the next flush, unless a later one is pending. Histograms only. */
  exemplar(index: number, exemplar: Exemplar): void {
    if (!(index >= 0 && index < this.#buckets())) return;
    const exemplars = this.#exemplars ??= [];
    if (!later(exemplar, exemplars[index])) return;
    exemplars[index] = exemplar;
    if (!this.queued) this.kind.store.enqueue(this);
  }

  /** The latest exemplar of each bucket every process shares, after this process's are flushed. */
  exemplars(): Exemplars | Promise<Exemplars> {
    const buckets = this.#buckets();
    if (buckets === 0) return undefined;
    const labels = this.labels;
    const instance = this.instance;
    return this.readExemplars(
      this.kind.names.slice(0, buckets).map((name) => exemplarField(labels, name, instance)),
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
          exemplarField(this.labels, this.kind.names[i], this.instance),
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

  // Histograms only keep exemplars: of their buckets (every value but the last, the sum).
  #buckets(): number {
    return this.kind.type === "histogram" ? this.kind.names.length - 1 : 0;
  }

  // Made with the series, or for a per-instance one at its first flush: see `instanceId`. A
  // shared series' first field is its text.
  #fieldNames(): string[] {
    if (this.#fields !== undefined) return this.#fields;
    const shared = !this.kind.ownInstance;
    const labels = this.labels;
    const instance = this.instance;
    return this.#fields = this.kind.names.map((name, i) =>
      shared && i === 0 ? this.text : whole(field(labels, name, instance))
    );
  }
}

// The remote core shared by the Redis and Upstash backends: a write-behind buffer of pending
// changes, flushed in batches that a Lua script applies at most once, and collection of every
// series in one round trip. The transports differ only in how a script reaches Redis.

import { formatBound } from "../exposition/_number.ts";
import type { Labels, MetricFamily } from "../metrics/types.ts";
import { COLLECT_SCRIPT, FLUSH_SCRIPT, type Script } from "./_scripts.ts";
import { onExit } from "./_exit.ts";
import { Slicer } from "../metrics/_slice.ts";
import { trackStore } from "./_health.ts";
import {
  type Backend,
  type BackendConfig,
  BackendUnavailableError,
  type CollectTarget,
  GAUGE_MODES,
  type GaugeMode,
  INSTANCE_LABEL,
  type MetricInfo,
} from "./types.ts";

/** How scripts reach Redis. */
export interface Transport {
  /** Runs a script in one round trip: EVALSHA, and EVAL when the server does not know it. */
  run(script: Script, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** Where the transport connects, for error messages (never with credentials). */
  readonly description: string;
}

/** The options every remote backend shares, validated. */
export interface RemoteOptions {
  /** The prefix of every key, inside a Redis Cluster hash tag: `{theus}:...`. */
  keyPrefix: string;
  /** Seconds before a key that is not written again expires. */
  expireSeconds: number;
  /** Milliseconds between background flushes; 0 for none. */
  flushIntervalMs: number;
  /** This process's id in per-instance gauges and heartbeats; the process id by default. */
  instanceId: string | undefined;
  /** Seconds an instance counts as live after its last heartbeat. */
  instanceTtlSeconds: number;
}

/** What the library reports about a store, as its own metrics. */
export interface StoreStats {
  flushes: number;
  failures: number;
  /** Changes Redis refused to apply (an increment to infinity, a key of another type). */
  rejected: number;
  lastFlushSeconds: number;
  lastError: string | undefined;
}

// Every mode but "shared" keeps one value per instance.
const PER_INSTANCE = new Set<GaugeMode>(GAUGE_MODES.slice(1));

interface Batch {
  readonly seq: number;
  readonly keys: string[];
  readonly args: string[];
  readonly size: number;
}

// Starts with a letter, so no client mistakes it for a number.
function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return `i${[...bytes].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/**
 * One Redis as seen by this process: the pending changes of every value, the batch in flight,
 * and the background flush. Flushes never overlap; a failed batch is retried as it was, with
 * its id, while new changes gather for the next one.
 */
export class RemoteStore {
  readonly transport: Transport;
  readonly options: RemoteOptions;
  #processId: string | undefined;
  readonly stats: StoreStats = {
    flushes: 0,
    failures: 0,
    rejected: 0,
    lastFlushSeconds: 0,
    lastError: undefined,
  };
  #queue: RemoteValue[] = [];
  #removals: { key: string; op: "d" | "p"; field: string }[] = [];
  #outstanding: Batch | undefined;
  #seq = 0;
  #active: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #perInstance = false;
  #lastBeat = 0;
  #labels = new Map<string, Labels>();

  constructor(transport: Transport, options: RemoteOptions) {
    this.transport = transport;
    this.options = options;
    onExit(() => (this.pendingSeries > 0 ? this.flush() : undefined));
  }

  // Made on first use, inside a request: Workers forbid random values at module scope.
  /** This process's id, which marks its batches. */
  get processId(): string {
    return this.#processId ??= randomId();
  }

  /** This process's id in per-instance gauges and heartbeats. */
  get instanceId(): string {
    return this.options.instanceId ?? this.processId;
  }

  /** The key of a metric's hash. */
  metricKey(name: string): string {
    return `{${this.options.keyPrefix}}:m:${name}`;
  }

  get #instancesKey(): string {
    return `{${this.options.keyPrefix}}:instances`;
  }

  /** Series with changes not yet confirmed by Redis. */
  get pendingSeries(): number {
    return this.#queue.length + this.#removals.length + (this.#outstanding?.size ?? 0);
  }

  usePerInstance(): void {
    this.#perInstance = true;
    this.#startTimer();
  }

  enqueue(value: RemoteValue): void {
    value.queued = true;
    this.#queue.push(value);
    if (this.#timer === undefined) this.#startTimer();
  }

  #startTimer(): void {
    const interval = this.options.flushIntervalMs;
    if (this.#timer !== undefined || interval <= 0) return;
    // A tick that finds a flush running skips: queued behind it, background flushes would follow
    // one another with no gap while Redis is away (each waits out a timeout), and a process that
    // is done would never end, since its exit flush runs only once the event loop is idle.
    this.#timer = setInterval(() => this.#active === undefined && void this.flush(), interval);
    unrefTimer(this.#timer);
  }

  /** Flushes pending changes. Never rejects: a failure is counted and the batch kept for retry. */
  flush(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    if (this.#active === undefined) {
      this.#active = this.#flushOnce().finally(() => (this.#active = undefined));
      return this.#active;
    }
    this.#next = this.#active.then(() => {
      this.#next = undefined;
      return this.flush();
    });
    return this.#next;
  }

  async #flushOnce(): Promise<void> {
    const started = performance.now();
    try {
      if (this.#outstanding !== undefined) {
        await this.#send(this.#outstanding);
        this.#outstanding = undefined;
      }
      const beat = this.#perInstance && Date.now() - this.#lastBeat >= this.options.instanceTtlSeconds * 250;
      if (this.#queue.length > 0 || this.#removals.length > 0 || beat) {
        this.#outstanding = this.#drain();
        await this.#send(this.#outstanding);
        this.#outstanding = undefined;
      }
      this.stats.lastError = undefined;
    } catch (error) {
      this.stats.failures++;
      this.stats.lastError = error instanceof Error ? error.message : String(error);
    } finally {
      this.stats.flushes++;
      this.stats.lastFlushSeconds = (performance.now() - started) / 1000;
    }
  }

  #drain(): Batch {
    const queue = this.#queue;
    this.#queue = [];
    const keyIndex = new Map<string, number>();
    const keys = [`{${this.options.keyPrefix}}:applied:${this.processId}`, this.#instancesKey];
    const removals = this.#removals;
    this.#removals = [];
    const seq = ++this.#seq;
    const args = [
      String(this.options.expireSeconds),
      this.#perInstance ? this.instanceId : "",
      String(this.options.instanceTtlSeconds * 1000),
      "1",
      String(seq),
      "",
    ];
    const indexOf = (key: string): string => {
      let index = keyIndex.get(key);
      if (index === undefined) {
        keys.push(key);
        keyIndex.set(key, index = keys.length);
      }
      return String(index);
    };
    // Removals first: a series re-created after its removal writes after it.
    for (const { key, op, field } of removals) args.push(indexOf(key), op, field, "");
    for (const value of queue) value.drain(args, indexOf(value.key));
    args[5] = String((args.length - 6) / 4);
    return { seq, keys, args, size: queue.length + removals.length };
  }

  /** Queues the removal of every field of a series from its metric's hash. */
  remove(target: CollectTarget, labels: Labels): void {
    const key = this.metricKey(target.name);
    const start = `${fieldLabels(labels)}|`;
    const mode = target.type === "gauge" ? target.gaugeMode ?? "shared" : "shared";
    let buckets = [""];
    if (target.type === "histogram") buckets = [...target.buckets!.map(formatBound), "sum"];
    else if (target.type === "summary") buckets = ["count", "sum"];
    if (PER_INSTANCE.has(mode)) {
      // Other instances' ids are not known here: match every field of the label set.
      this.#removals.push({ key, op: "p", field: start });
    } else {
      for (const bucket of buckets) this.#removals.push({ key, op: "d", field: `${start}${bucket}|` });
    }
    if (this.#timer === undefined) this.#startTimer();
  }

  async #send(batch: Batch): Promise<void> {
    const reply = await this.transport.run(await FLUSH_SCRIPT, batch.keys, batch.args);
    this.stats.rejected += Number((reply as unknown[] | null)?.[1] ?? 0) || 0;
    if (this.#perInstance) this.#lastBeat = Date.now();
  }

  /**
   * Reads every series of these metrics in one round trip.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async collect(targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    // Collection follows a flush; when that just failed, reading would only fail more slowly.
    if (this.stats.lastError !== undefined) {
      throw new BackendUnavailableError(
        `Cannot write pending changes to ${this.transport.description}: ${this.stats.lastError}`,
      );
    }
    const keys = [this.#instancesKey, ...targets.map((target) => this.metricKey(target.name))];
    const parts = await this.#read(keys);
    const [seconds, micros] = (parts[0] as (string | number)[]).map(Number);
    const now = seconds * 1000 + Math.floor(micros / 1000);
    const live = new Set<string>();
    const beats = parts[1] as string[];
    for (let i = 0; i < beats.length; i += 2) if (Number(beats[i + 1]) > now) live.add(String(beats[i]));
    // Assembled in slices: ten thousand series take long enough to hold up the event loop.
    const slicer = new Slicer();
    const families: MetricFamily[] = [];
    for (const [i, target] of targets.entries()) {
      families.push(await this.#assemble(target, (parts[i + 2] ?? []) as string[], live, slicer));
    }
    return families;
  }

  /**
   * Reads one field, for `get()`.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async read(key: string, field: string): Promise<number> {
    const flat = (await this.#read([this.#instancesKey, key]))[2] as string[];
    for (let i = 0; i < flat.length; i += 2) if (String(flat[i]) === field) return Number(flat[i + 1]);
    return 0;
  }

  async #read(keys: string[]): Promise<unknown[][]> {
    try {
      return (await this.transport.run(await COLLECT_SCRIPT, keys, [])) as unknown[][];
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new BackendUnavailableError(`Cannot read metrics from ${this.transport.description}: ${reason}`, {
        cause: error,
      });
    }
  }

  #labelsOf(json: string, names: readonly string[]): Labels | undefined {
    const cacheKey = `${names.join(",")}|${json}`;
    const cached = this.#labels.get(cacheKey);
    if (cached !== undefined) return cached;
    const flat = JSON.parse(json) as string[];
    if (flat.length !== names.length * 2) return undefined;
    const given = new Map<string, string>();
    for (let i = 0; i < flat.length; i += 2) given.set(flat[i], flat[i + 1]);
    const labels: Record<string, string> = {};
    for (const name of names) {
      const value = given.get(name);
      if (value === undefined) return undefined;
      labels[name] = value;
    }
    Object.freeze(labels);
    this.#labels.set(cacheKey, labels);
    return labels;
  }

  async #assemble(
    target: CollectTarget,
    flat: readonly string[],
    live: ReadonlySet<string>,
    slicer: Slicer,
  ): Promise<MetricFamily> {
    // Group the fields of each series: label set -> bucket or instance -> value.
    const groups = new Map<string, Map<string, string>>();
    for (let i = 0; i < flat.length; i += 2) {
      // Split from the end: the labels may contain "|", the bucket and instance never do.
      const field = String(flat[i]);
      const b = field.lastIndexOf("|");
      const a = field.lastIndexOf("|", b - 1);
      if (a < 0) continue;
      const json = field.slice(0, a);
      let group = groups.get(json);
      if (group === undefined) groups.set(json, group = new Map());
      const instance = field.slice(b + 1);
      group.set(instance === "" ? field.slice(a + 1, b) : instance, String(flat[i + 1]));
      if (slicer.due()) await slicer.pause();
    }
    const jsons = [...groups.keys()].sort();
    const base = { name: target.exposedName, help: target.help };
    const labelNames = target.labelNames;
    if (target.type === "histogram") {
      const bounds = target.buckets!.map(formatBound);
      const series = [];
      for (const json of jsons) {
        if (slicer.due()) await slicer.pause();
        const labels = this.#labelsOf(json, labelNames);
        if (labels === undefined) continue;
        const group = groups.get(json)!;
        let count = 0;
        const buckets = bounds.map((bound) => (count += Number(group.get(bound) ?? 0)));
        series.push({ labels, buckets, sum: Number(group.get("sum") ?? 0), count });
      }
      return { ...base, type: "histogram", buckets: target.buckets!, series };
    }
    if (target.type === "summary") {
      const series = [];
      for (const json of jsons) {
        if (slicer.due()) await slicer.pause();
        const labels = this.#labelsOf(json, labelNames);
        if (labels === undefined) continue;
        const group = groups.get(json)!;
        series.push({ labels, sum: Number(group.get("sum") ?? 0), count: Number(group.get("count") ?? 0) });
      }
      return { ...base, type: "summary", series };
    }
    const mode = target.gaugeMode ?? "shared";
    const series = [];
    for (const json of jsons) {
      if (slicer.due()) await slicer.pause();
      const labels = this.#labelsOf(json, labelNames);
      if (labels === undefined) continue;
      const group = groups.get(json)!;
      if (!PER_INSTANCE.has(mode)) {
        series.push({ labels, value: Number(group.get("") ?? 0) });
        continue;
      }
      const onlyLive = mode.startsWith("live");
      const entries = [...group].filter(([instance]) => !onlyLive || live.has(instance));
      if (entries.length === 0) continue;
      const kind = onlyLive ? mode.slice(4) : mode;
      if (kind === "all") {
        for (const [instance, value] of entries) {
          series.push({ labels: { ...labels, [INSTANCE_LABEL]: instance }, value: Number(value) });
        }
        continue;
      }
      const values = entries.map(([, value]) => value);
      series.push({ labels, value: aggregate(kind, values) });
    }
    return { ...base, type: target.type as "counter" | "gauge", series };
  }
}

function aggregate(kind: string, values: string[]): number {
  if (kind === "latest") {
    // Values are "<unix ms>:<value>"; the most recent write wins.
    let best = -Infinity;
    let value = NaN;
    for (const text of values) {
      const colon = text.indexOf(":");
      const at = Number(text.slice(0, colon));
      if (at >= best) {
        best = at;
        value = Number(text.slice(colon + 1));
      }
    }
    return value;
  }
  const numbers = values.map(Number);
  if (kind === "max") return Math.max(...numbers);
  if (kind === "min") return Math.min(...numbers);
  return numbers.reduce((a, b) => a + b, 0);
}

/**
 * The stores of one remote backend class: one per config object, created on first use, so
 * the class-level hooks (`initialize`, `flush`, `collect`) share one implementation.
 */
export class StoreSet {
  readonly live: Set<RemoteStore> = new Set();
  #byConfig = new WeakMap<object, RemoteStore>();
  #backend: string;
  #create: (config: BackendConfig) => RemoteStore;

  constructor(backend: string, create: (config: BackendConfig) => RemoteStore) {
    this.#backend = backend;
    this.#create = create;
  }

  /** The store of a config, created (and its config validated) on first use. */
  get(config: BackendConfig): RemoteStore {
    let store = this.#byConfig.get(config);
    if (store === undefined) {
      store = this.#create(config);
      this.#byConfig.set(config, store);
      this.live.add(store);
      trackStore(store, this.#backend);
    }
    return store;
  }

  /** Flushes every live store; never rejects. */
  async flush(): Promise<void> {
    await Promise.all([...this.live].map((store) => store.flush()));
  }

  /** Queues the removal of a series from the store of a config. */
  remove(config: BackendConfig, target: CollectTarget, labels: Labels): void {
    this.get(config).remove(target, labels);
  }

  /** Reads every series of these metrics from the store of a config. */
  collect(config: BackendConfig, targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    return this.get(config).collect(targets);
  }
}

/**
 * One value of one series in a remote store. It is its own pending entry: updates fold into
 * `delta` (or `setTo`) and the value joins the store's queue once per flush, so the hot path
 * allocates nothing and the buffer grows with the series touched, not with the updates.
 *
 * @internal The shared base of `RedisBackend` and `UpstashBackend`, not an entry point.
 */
export class RemoteValue implements Backend {
  readonly key: string;
  #field: string | undefined;
  #fieldStart: string;
  queued = false;
  #store: RemoteStore;
  #delta = 0;
  // Increments of exactly 1 (counters, histogram buckets) counted apart, as an integer: a
  // fractional sum elsewhere would otherwise make engines keep every delta as a double.
  #ones = 0;
  #setTo = 0;
  #hasSet = false;
  #disposed = false;
  // Per-instance gauges: this process owns the value and writes it whole.
  #perInstance: boolean;
  #latest: boolean;
  #local = 0;

  constructor(store: RemoteStore, metric: MetricInfo, histogramBucket?: string) {
    this.#store = store;
    this.key = store.metricKey(metric.name);
    const mode = metric.type === "gauge" ? metric.gaugeMode ?? "shared" : "shared";
    this.#perInstance = PER_INSTANCE.has(mode);
    this.#latest = mode === "latest" || mode === "livelatest";
    if (this.#perInstance) store.usePerInstance();
    this.#fieldStart = `${fieldLabels(metric.labelValues)}|${histogramBucket ?? ""}|`;
    // Written once even without updates, so a new series shows up as it does in memory.
    store.enqueue(this);
  }

  inc(value: number): void {
    if (this.#perInstance) this.#local += value;
    else if (value === 1) this.#ones++;
    else this.#delta += value;
    if (!this.queued) this.#store.enqueue(this);
  }

  dec(value: number): void {
    this.inc(-value);
  }

  set(value: number): void {
    if (this.#perInstance) {
      this.#local = value;
    } else {
      this.#setTo = value;
      this.#delta = 0;
      this.#ones = 0;
      this.#hasSet = true;
    }
    if (!this.queued) this.#store.enqueue(this);
  }

  /** The field of this value in the metric's hash: `<labels>|<bucket>|<instance>`. */
  get field(): string {
    return this.#field ??= this.#perInstance ? this.#fieldStart + this.#store.instanceId : this.#fieldStart;
  }

  /** The shared value, after flushing this process's pending changes. */
  async get(): Promise<number> {
    if (this.#perInstance) return this.#local;
    await this.#store.flush();
    return await this.#store.read(this.key, this.field);
  }

  /** Drops what is buffered; the series was removed, and later writes are ignored. */
  dispose(): void {
    this.#disposed = true;
    this.#delta = 0;
    this.#ones = 0;
    this.#hasSet = false;
  }

  /** Appends this value's change to a batch (nothing once disposed) and resets it. */
  drain(args: string[], keyIndex: string): void {
    this.queued = false;
    if (this.#disposed) {
      this.#delta = 0;
      this.#ones = 0;
      this.#hasSet = false;
    } else if (this.#perInstance) {
      args.push(
        keyIndex,
        "s",
        this.field,
        this.#latest ? `${Date.now()}:${this.#local}` : String(this.#local),
      );
    } else if (this.#hasSet) {
      args.push(keyIndex, "s", this.field, String(this.#setTo + this.#delta + this.#ones));
    } else {
      args.push(keyIndex, "i", this.field, String(this.#delta + this.#ones));
    }
    this.#delta = 0;
    this.#ones = 0;
    this.#hasSet = false;
  }
}

/**
 * The canonical text of a label set in a field: its name/value pairs sorted by name, as a JSON
 * array. A field is `<labels>|<bucket>|<instance>`, which is never valid JSON itself, so a
 * client that parses JSON replies (as @upstash/redis does) leaves it alone.
 */
export function fieldLabels(labels: Labels): string {
  const names = Object.keys(labels).sort();
  const flat: string[] = [];
  for (const name of names) flat.push(name, labels[name]);
  return JSON.stringify(flat);
}

function unrefTimer(timer: unknown): void {
  const t = timer as { unref?: () => void };
  if (typeof t?.unref === "function") t.unref();
  // deno-lint-ignore no-explicit-any
  else (globalThis as any).Deno?.unrefTimer?.(timer);
}

/** Validates the options every remote backend shares. */
export function remoteOptions(config: Record<string, unknown>, backend: string): RemoteOptions {
  const fail = (why: string): never => {
    throw new TypeError(`Invalid ${backend} backend config: ${why}`);
  };
  const keyPrefix = config.keyPrefix ?? "theus";
  if (typeof keyPrefix !== "string" || keyPrefix === "" || /[{}]/.test(keyPrefix)) {
    fail(`keyPrefix must be a non-empty string without braces, got ${JSON.stringify(keyPrefix)}`);
  }
  const number = (name: string, fallback: number, min: number): number => {
    const value = config[name] ?? fallback;
    if (typeof value !== "number" || !Number.isFinite(value) || value < min) {
      fail(`${name} must be a number >= ${min}, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const instanceId = config.instanceId;
  if (instanceId !== undefined && (typeof instanceId !== "string" || !/^[\w.:-]+$/.test(instanceId))) {
    fail(`instanceId must be letters, digits, "_", ".", ":" or "-", got ${JSON.stringify(instanceId)}`);
  }
  return {
    keyPrefix: keyPrefix as string,
    expireSeconds: Math.round(number("expireSeconds", 3600, 1)),
    flushIntervalMs: number("flushIntervalMs", 1000, 0),
    instanceId: instanceId as string | undefined,
    instanceTtlSeconds: number("instanceTtlSeconds", 60, 1),
  };
}

// The machinery every metric type shares: options, labels, the cache of children, collection.

import type { CollectTarget, GaugeMode, MetricInfo, SeriesValues } from "../core/backend.ts";
import { checkMetricName, describe, quoteList } from "../core/_names.ts";
import { SLICE_MS, yieldToEventLoop } from "../core/_slice.ts";
import type {
  Collector,
  Exemplar,
  HistogramSeries,
  Labels,
  MetricFamily,
  MetricType,
  SummarySeries,
  ValueSeries,
} from "../core/types.ts";
import { type Binding, currentBinding } from "./_binding.ts";
import { checkUnit, familyName, sampleNames } from "./_check.ts";
import { checkLabelNames, checkLabels, type LabelSetConstructor, labelSetConstructor } from "./_labels.ts";
import { creatingPerInstance, INTERNAL, type MetricInternals, refreshOf, setRefresh } from "./_internal.ts";
import { checkMaxSeries, defaultRegistry, type Registry } from "./registry.ts";
import type { BucketOwner } from "./_sketch.ts";

/**
 * Label values of a metric whose label names are `L`: with `labelNames: ["method", "status"] as
 * const`, `labels({ methd: "GET" })` is a compile-time error.
 */
export type LabelValues<L extends string = string> = {
  readonly [
    // A label named like a member of Object.prototype (`constructor`, `toString`) is typed loosely:
    // TypeScript sees the inherited member in every object literal. Its value is checked at run time.
    K in L
  ]?: K extends keyof typeof Object.prototype ? unknown : string;
};

/** Options every metric takes. `L` is the label names, inferred from `labelNames`. */
export interface MetricOptions<L extends string = string> {
  /** The metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`. */
  name: string;
  /** The help text, any string. */
  help: string;
  /** The label names, `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`. */
  labelNames?: readonly L[];
  /** Values for some labels, used unless `labels()` gives others. Keys must be label names. */
  defaultLabels?: LabelValues<L>;
  /** Where to register the metric: `defaultRegistry` unless given; `null` for nowhere. */
  registry?: Registry | null;
  /**
   * The most series (label sets) this process keeps for the metric. Past it, a new label set is
   * recorded into one overflow series, whose every label is `"__overflow__"`, and counted in
   * `theus_series_overflow_total{metric}`; a warning is printed the first time. A whole number
   * of at least 1, or `Infinity`. The registry's `maxSeries` when not given (unlimited unless
   * the registry sets one).
   */
  maxSeries?: number;
  /**
   * Computes values at scrape time: called once per collection, with the metric as `this`,
   * before its values are read (`collect() { this.set(queue.length) }`); may be async. What it
   * sets is flushed before the read on shared backends, like any other value. When it throws,
   * that collection fails with an error naming the metric (a 500 from `metricsHandler`).
   */
  collect?(this: Metric<L>): void | Promise<void>;
  /**
   * The unit of the values (`"seconds"`, `"bytes"`), which OpenMetrics writes as `# UNIT`; text
   * 0.0.4 has no place for it. The name must end with an underscore and the unit, a counter's
   * before `_total` (`request_seconds`, `sent_bytes_total`), or the constructor throws a
   * `TypeError`. An `Info` or a `StateSet` has none.
   */
  unit?: string;
}

// The options every metric type knows; a type adds its own (TypeSpec.options).
const COMMON_OPTIONS = [
  "name",
  "help",
  "labelNames",
  "defaultLabels",
  "registry",
  "maxSeries",
  "collect",
  "unit",
];

// What a prom-client (or client_python) option is called here, or why it does not exist.
const OPTION_HINTS: Record<string, string> = {
  registers: `theus takes one registry: "registry" (a Registry, or null for none)`,
  percentiles: `theus calls them "quantiles"`,
  pruneAgedBuckets: `theus' summary window always drops slices older than "maxAgeSeconds"`,
  compressCount: `theus' quantiles need no compression: a summary keeps at most 2,048 buckets per slice`,
  aggregator:
    `on a shared backend, a gauge's "mode" says how the processes' values combine ("sum", "max", "min", …)`,
  labels: `label names are "labelNames", and values for some of them "defaultLabels"`,
};

function checkOptionNames(options: object, spec: TypeSpec, name: string): void {
  for (const key of Object.keys(options)) {
    if (COMMON_OPTIONS.includes(key) || spec.options?.includes(key)) continue;
    const hint = OPTION_HINTS[key];
    const known = [...COMMON_OPTIONS, ...(spec.options ?? [])].map((k) => `"${k}"`).join(", ");
    throw new TypeError(
      `Unknown option "${key}" of ${spec.type} "${name}": ${hint ?? `expected one of ${known}`}`,
    );
  }
}

/**
 * A number that goes up whenever children of the metric's family are removed (`remove()`,
 * `clear()`, unregistering for good): a cache of children is stale once it has changed.
 */
export let removals: (metric: Metric) => number;

/** The value of every label of the overflow series a metric records into past its `maxSeries`. */
export const OVERFLOW_LABEL_VALUE = "__overflow__";

// What a metric type tells the shared machinery about itself.
export interface TypeSpec {
  readonly type: MetricType;
  /** A label name the type reserves (`le`, `quantile`). */
  readonly reserved?: string;
  /** The sample names the type writes for a family name. */
  claims(name: string): string[];
  /** The options of the type's own, besides those every metric takes. */
  readonly options?: readonly string[];
  /**
   * A type that backends do not know (info, state set) stores its values as a gauge (mode
   * `shared`), each series with one label beyond the metric's label names: this one, named
   * for the metric. The type reads its series with it and `present()` reshapes them.
   */
  storedLabel?(name: string): string;
  /** What the stored series are: gauges in mode `shared` (the default), or counters. */
  readonly storedType?: "gauge" | "counter";
  /**
   * Reshapes a family as it was read (a gauge family of the stored series) into the family the
   * type exposes.
   *
   * @param family The family read, by a backend's `collect` hook or child by child.
   * @param extra The type's validated options.
   */
  present?(family: MetricFamily, extra: unknown): MetricFamily;
  /**
   * Whether a stored series, by the value of its stored label, has expired (a summary's bucket
   * of a slice that left the window): a collection that reads one deletes it from a shared
   * store, whoever wrote it (a process that has gone leaves its last slices behind).
   */
  expired?(value: string, extra: unknown): boolean;
  /** Whether a removed stored series is never written again (see `CollectTarget.windowed`). */
  readonly windowed?: boolean;
}

type Series = MetricFamily["series"][number];
// What one child reads: its series, or a type with a stored label's several.
type Read = Series | readonly ValueSeries[];
type Tree = Map<string, unknown>;

// Shared by a metric and all its children.
class Family {
  readonly tree: Tree = new Map();
  root!: Metric;
  // Makes the label sets of this family's children (see labelSetConstructor).
  readonly Labels: LabelSetConstructor;

  constructor(
    readonly name: string,
    readonly exposedName: string,
    readonly help: string,
    readonly spec: TypeSpec,
    readonly labelNames: readonly string[],
    readonly labelSet: ReadonlySet<string>,
    readonly binding: Binding,
    readonly extra: unknown,
    readonly perInstance: boolean,
    readonly maxSeries: number | undefined,
    readonly home: Registry | undefined,
    readonly unit: string | undefined,
  ) {
    this.Labels = labelSetConstructor(labelNames);
    const stored = spec.storedLabel?.(name);
    this.storedLabel = stored;
    this.storedNames = stored === undefined ? labelNames : Object.freeze([...labelNames, stored]);
    const reshape = spec.present;
    if (reshape !== undefined || unit !== undefined) {
      this.present = (read) => {
        if (spec.expired !== undefined) this.#sweep(read, spec.expired);
        const family = reshape === undefined ? read : reshape(read, extra);
        return unit === undefined ? family : { ...family, unit } as MetricFamily;
      };
    }
  }

  // Stored series already deleted as expired, so that each is deleted once.
  #swept = new WeakSet<Labels>();

  // Deletes the expired stored series of a family as read from a shared store.
  #sweep(read: MetricFamily, expired: (value: string, extra: unknown) => boolean): void {
    const label = this.storedLabel!;
    let target: CollectTarget | undefined;
    for (const series of read.series) {
      const value = series.labels[label];
      if (value === undefined || !expired(value, this.extra) || this.#swept.has(series.labels)) continue;
      if (Object.isFrozen(series.labels)) this.#swept.add(series.labels);
      this.binding.remove(target ??= this.root[INTERNAL].target, series.labels);
    }
  }

  // The label of the stored series beyond the label names, and all their label names.
  readonly storedLabel: string | undefined;
  readonly storedNames: readonly string[];
  // The family as exposed, from the family as read; undefined when they are the same.
  readonly present: ((family: MetricFamily) => MetricFamily) | undefined;

  // The leaves of the tree, the overflow series included once it exists.
  size = 0;
  overflow: Metric | undefined;
  warned = false;
  // Goes up whenever children are removed: what cached children must be checked against.
  version = 0;

  /** The cap on this process's series: the metric's own, its registry's, or none. */
  get cap(): number {
    return this.maxSeries ?? this.home?.maxSeries ?? Infinity;
  }
}

// The constructor argument of children and partially labelled metrics.
class ChildInit {
  constructor(readonly family: Family, readonly labels: Labels) {}
}

/**
 * Metric is what Counter, Gauge, Histogram and Summary share: the name, the labels and the
 * cache of children. It is not constructed directly.
 */
export abstract class Metric<L extends string = string> implements Collector {
  #family: Family;
  #labels: Labels;

  static {
    removals = (metric) => metric.#family.version;
  }

  /**
   * Validates the options and registers the metric, or takes the state of a child.
   *
   * @param options The metric's options.
   * @param spec The metric type's description.
   * @param extra Type-specific validated options (histogram buckets).
   */
  protected constructor(options: MetricOptions<L>, spec: TypeSpec, extra?: () => unknown) {
    if (options instanceof ChildInit) {
      this.#family = options.family;
      this.#labels = options.labels;
      return;
    }
    if (typeof options !== "object" || options === null) {
      throw new TypeError(`Invalid ${spec.type} options: expected an object, got ${describe(options)}`);
    }
    const name = checkMetricName(options.name);
    checkOptionNames(options, spec, name);
    if (typeof options.help !== "string") {
      throw new TypeError(
        `Invalid help for metric "${name}": expected a string, got ${describe(options.help)}`,
      );
    }
    const labelNames = checkLabelNames(options.labelNames, name, spec.reserved);
    const collect = options.collect;
    if (collect !== undefined && typeof collect !== "function") {
      throw new TypeError(
        `Invalid collect of metric "${name}": expected a function, got ${describe(collect)}`,
      );
    }
    const maxSeries = options.maxSeries === undefined
      ? undefined
      : checkMaxSeries(options.maxSeries, `maxSeries of metric "${name}"`);
    const registry = options.registry === undefined ? defaultRegistry : options.registry;
    const labelSet = new Set(labelNames);
    const defaults = checkLabels(options.defaultLabels ?? {}, name, labelSet, "default label");
    const exposedName = familyName(spec.type, name);
    const unit = options.unit === undefined
      ? undefined
      : checkUnit(options.unit, spec.type, exposedName, `${spec.type} "${name}"`);
    const family = new Family(
      name,
      exposedName,
      options.help,
      spec,
      labelNames,
      labelSet,
      bindingOverride ?? currentBinding(),
      extra?.(),
      creatingPerInstance(),
      maxSeries,
      registry ?? undefined,
      unit,
    );
    family.root = this;
    this.#family = family;
    // The backend checks the definition before anything is registered or recorded.
    family.binding.define(this[INTERNAL].target);
    const complete = labelNames.every((label) => Object.hasOwn(defaults, label));
    this.#labels = complete ? canonical(family, defaults) : Object.freeze({ ...defaults });
    if (complete && labelNames.length > 0) insert(family, this.#labels, this);
    if (collect !== undefined) setRefresh(this, () => scrapeTime(this, collect, name));
    registry?.register(this);
  }

  /** The metric name, as given at construction. */
  get name(): string {
    return this.#family.name;
  }

  /** The help text. */
  get help(): string {
    return this.#family.help;
  }

  /** The metric type. */
  get type(): MetricType {
    return this.#family.spec.type;
  }

  /** The unit of the values, as given in the options, or undefined. */
  get unit(): string | undefined {
    return this.#family.unit;
  }

  /**
   * Whether each process keeps series of its own on a shared backend, labelled `theus_instance`
   * (the runtime metrics of `theus/runtime`); false for metrics created any other way.
   */
  get perInstance(): boolean {
    return this.#family.perInstance;
  }

  /**
   * The most series this process keeps for the metric before new label sets go to the overflow
   * series: the `maxSeries` option, else the registry's, else `Infinity`.
   */
  get maxSeries(): number {
    return this.#family.cap;
  }

  /** The label names, in declaration order. */
  get labelNames(): readonly L[] {
    return this.#family.labelNames as readonly L[];
  }

  /** The label values bound so far, default labels included. A frozen object. */
  get labelValues(): Labels {
    return this.#labels;
  }

  /** Whether every label has a value, so the metric can be observed. */
  get isObservable(): boolean {
    // Bound labels only ever hold known names, so counting them is enough.
    let count = 0;
    for (const _ in this.#labels) count++;
    return count === this.#family.labelNames.length;
  }

  /**
   * Binds label values. When every label then has a value, returns the cached child for that
   * label set: the same object every time, whatever the order the labels came in. Otherwise
   * returns a partially labelled metric, which binds the rest with another `labels()` call.
   * The given object is copied, never kept.
   *
   * @param labels Label values; they override values bound earlier and default labels.
   * @returns The child, or a partially labelled metric.
   * @throws {TypeError} For an unknown label name or a value that is not a string.
   */
  labels(labels: LabelValues<L>): this {
    const family = this.#family;
    const names = family.labelNames;
    const n = names.length;
    if (typeof labels === "object" && labels !== null && n > 0) {
      // Fast path: a complete label set that is already cached. Keys in declaration order are
      // read as for-in gives them; any other order is looked up by name.
      let node: unknown = family.tree;
      let i = 0;
      let extra = false;
      for (const name in labels) {
        if (i === n) {
          extra = true;
          break;
        }
        // A value that is not a string finds no child: the tree's keys are all strings.
        if (name !== names[i]) break;
        node = (node as Tree).get((labels as Record<string, string>)[name]);
        if (node === undefined) break;
        i++;
      }
      if (i === n && !extra) return node as this;
      if (i < n) {
        let given = 0;
        for (const _ in labels) given++;
        if (given === n) {
          node = family.tree;
          for (let j = 0; j < n; j++) {
            const value = (labels as Record<string, unknown>)[names[j]];
            if (typeof value !== "string") break;
            node = (node as Tree).get(value);
            if (node === undefined) break;
            if (j === n - 1) return node as this;
          }
        }
      }
    }
    if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
      // prom-client's positional form, labels("GET", "200"), and other shapes. Only the first value
      // is shown: reading `arguments` here slows the lookup above by 15 % on V8.
      throw positionalLabels(family.name, family.labelNames, labels);
    }
    const merged = { ...this.#labels, ...checkLabels(labels, family.name, family.labelSet, "label") };
    if (!names.every((label) => Object.hasOwn(merged, label))) {
      return this.#make(new ChildInit(family, Object.freeze(merged))) as this;
    }
    const canon = canonical(family, merged);
    if (n === 0) return family.root as this;
    return (lookup(family, canon) ?? this.#create(canon)) as this;
  }

  /**
   * Removes the child with this label set (merged onto the labels bound so far) from the
   * metric, so it is no longer collected. A removed child keeps working but is not exported;
   * `labels()` then creates a fresh child. On a shared backend the series is also deleted from
   * the store. The metric itself is never removed.
   *
   * @param labels A label set that, with the bound labels, gives every label a value.
   * @returns Whether a child was removed.
   * @throws {TypeError} For unknown labels, non-string values, or an incomplete label set.
   */
  remove(labels: LabelValues<L>): boolean {
    const family = this.#family;
    const merged = { ...this.#labels, ...checkLabels(labels, family.name, family.labelSet, "label") };
    const missing = family.labelNames.filter((label) => !Object.hasOwn(merged, label));
    if (missing.length > 0) {
      throw new TypeError(
        `Cannot remove a child of metric "${family.name}": missing values for ${quoteList(missing)}`,
      );
    }
    const canon = canonical(family, merged);
    const path: Tree[] = [];
    let node: unknown = family.tree;
    for (const label of family.labelNames) {
      path.push(node as Tree);
      node = (node as Tree).get(canon[label]);
      if (node === undefined) return false;
    }
    if (node === family.root || family.labelNames.length === 0) return false;
    // Delete the leaf, then every map the deletion left empty.
    for (let i = path.length - 1; i >= 0; i--) {
      path[i].delete(canon[family.labelNames[i]]);
      if (path[i].size > 0) break;
    }
    family.size--;
    family.version++;
    if (node === family.overflow) family.overflow = undefined;
    this.#drop(node as Metric);
    return true;
  }

  /**
   * Resets the metric: every child is dropped, and the metric's own value, when it has one, is
   * zero again. On a shared backend the series are deleted from the store as well, at the next
   * flush (other processes that record into them write them again).
   */
  reset(): void {
    const family = this.#family;
    const root = family.root;
    root.clear();
    if (root.isObservable) {
      root.#drop(root);
      root._renew();
    }
  }

  /** Removes every child, except the metric itself when it is observable. */
  clear(): void {
    const family = this.#family;
    if (family.labelNames.length > 0) {
      walk(family.tree, family.labelNames.length, (child) => child !== family.root && this.#drop(child));
    }
    family.tree.clear();
    family.size = 0;
    family.version++;
    family.overflow = undefined;
    const root = family.root;
    if (root.isObservable && family.labelNames.length > 0) insert(family, root.#labels, root);
  }

  /**
   * Collects the metric: a single family holding every child, including children created by
   * other processes when the backend is shared.
   *
   * @returns One family.
   */
  async collect(): Promise<MetricFamily[]> {
    const { binding, target } = this[INTERNAL];
    await refreshOf(this.#family.root)?.();
    await binding.settle();
    const hook = binding.cls?.collect;
    const read = hook !== undefined
      ? await hook.call(binding.cls, binding.config, [target])
      : [await this.#collectFamily()];
    const present = this.#family.present;
    return present === undefined ? read : read.map(present);
  }

  /**
   * The registry's view of the metric.
   *
   * @ignore
   */
  get [INTERNAL](): MetricInternals {
    const family = this.#family;
    const stored = family.storedLabel !== undefined;
    const type = stored ? family.spec.storedType ?? "gauge" : family.spec.type;
    return {
      binding: family.binding,
      claims: family.spec.claims(family.exposedName),
      type: family.spec.type,
      target: {
        name: family.name,
        exposedName: family.exposedName,
        help: family.help,
        type,
        labelNames: family.storedNames,
        buckets: type === "histogram" ? family.extra as readonly number[] : undefined,
        gaugeMode: type !== "gauge" ? undefined : stored ? "shared" : family.extra as GaugeMode,
        perInstance: family.perInstance || undefined,
        ...(family.spec.windowed === true ? { windowed: true } : {}),
      },
      family: () => this.#collectFamily(),
      parts: () => this.#familyParts(),
      present: family.present,
      retire: () => {
        this.clear();
        if (family.root.isObservable) this.#drop(family.root);
      },
    };
  }

  /**
   * Creates the values of this series in the backend; for a metric whose labels are not all
   * bound, values that throw the error naming the missing labels.
   *
   * @param names The names of the values (histogram buckets and sum, summary count and sum);
   * undefined for the single value of a counter or gauge.
   */
  protected _values(names?: readonly string[]): SeriesValues {
    if (!this.isObservable) return new Incomplete(() => this._incomplete());
    return this.#family.binding.values(this, names);
  }

  /** Type-specific validated options. */
  protected get _extra(): unknown {
    return this.#family.extra;
  }

  /**
   * The labels of one stored series of this child, for a type with a stored label (info, state
   * set): the child's labels, then the stored label with this value. Frozen.
   *
   * @param value The value of the stored label.
   */
  protected _storedLabels(value: string): Labels {
    return Object.freeze({ ...this.#labels, [this.#family.storedLabel!]: value });
  }

  /**
   * Creates the values of one stored series of this child, for a type with a stored label: a
   * gauge's single value, in mode `shared`. For a metric whose labels are not all bound, values
   * that throw the error naming the missing labels.
   *
   * @param value The value of the stored label.
   * @param labels The labels of the stored series, if already made (`_storedLabels(value)`).
   */
  protected _storedValues(value: string, labels?: Labels): SeriesValues {
    if (!this.isObservable) return new Incomplete(() => this._incomplete());
    const family = this.#family;
    const type = family.spec.storedType ?? "gauge";
    const metric: MetricInfo = {
      name: family.name,
      type,
      labelValues: labels ?? this._storedLabels(value),
      labelNames: family.storedNames,
      gaugeMode: type === "gauge" ? "shared" : undefined,
      perInstance: family.perInstance || undefined,
    };
    return family.binding.values(metric, undefined);
  }

  /**
   * What the sparse buckets of this child (a summary's quantiles, a native histogram's buckets)
   * need of it: the labels and values of their stored series, and their deletion.
   *
   * @ignore
   */
  protected _bucketOwner(): BucketOwner {
    return {
      labels: (value) => this._storedLabels(value),
      values: (value, labels) => this._storedValues(value, labels),
      remove: (value) => this._removeStored(value),
    };
  }

  /**
   * Deletes one stored series of this child from a shared store (a replaced info).
   *
   * @param value The value of the stored label.
   */
  protected _removeStored(value: string): void {
    this.#family.binding.remove(this[INTERNAL].target, this._storedLabels(value));
  }

  /**
   * The label sets under which this child's series are stored, for removal: its labels, or, for
   * a type with a stored label, those of each stored series.
   */
  protected _stored(): readonly Labels[] {
    return [this.#labels];
  }

  /** The registry the metric was created in, if any: where its series are collected. */
  protected get _home(): Registry | undefined {
    return this.#family.home;
  }

  /** The error thrown when an incomplete metric is observed. */
  protected _incomplete(): TypeError {
    const missing = this.#family.labelNames.filter((label) => !Object.hasOwn(this.#labels, label));
    return new TypeError(
      `Cannot observe metric "${this.#family.name}": missing values for ${
        quoteList(missing)
      }; bind them with labels()`,
    );
  }

  /** Tells this child's backend values that the series was removed. */
  protected abstract _dispose(): void;

  /** Creates the values of this series afresh, after `reset()` dropped the old ones. */
  protected abstract _renew(): void;

  /**
   * Reads the current series of this child: one, or, for a type with a stored label, every
   * stored series (none before the first write).
   */
  protected abstract _read():
    | ValueSeries
    | HistogramSeries
    | SummarySeries
    | readonly ValueSeries[]
    | Promise<ValueSeries | HistogramSeries | SummarySeries | readonly ValueSeries[]>;

  // A removed child's values stop writing, and a shared store forgets its series.
  #drop(child: Metric): void {
    const stored = child._stored();
    child._dispose();
    const { binding } = this.#family;
    if (stored.length === 0) return;
    const target = this[INTERNAL].target;
    for (const labels of stored) binding.remove(target, labels);
  }

  // A new child, or, once the family holds its cap of series, the overflow series.
  #create(labels: Labels): Metric {
    const family = this.#family;
    if (family.size - (family.overflow === undefined ? 0 : 1) < family.cap) {
      return insert(family, labels, this.#make(new ChildInit(family, labels)));
    }
    let overflow = family.overflow;
    if (overflow === undefined) {
      const all: Record<string, string> = {};
      for (const name of family.labelNames) all[name] = OVERFLOW_LABEL_VALUE;
      const canon = canonical(family, all);
      overflow = lookup(family, canon) ?? insert(family, canon, this.#make(new ChildInit(family, canon)));
      family.overflow = overflow;
    }
    if (!family.warned) {
      family.warned = true;
      const counted = overflowCounter(family)
        ? "counted in theus_series_overflow_total"
        : family.home === undefined
        ? "not counted, as the metric is in no registry"
        : `not counted, as its registry refused theus_series_overflow_total (${
          overflowRefusals.get(family.home)
        })`;
      console.warn(
        `theus: metric "${family.name}" has reached its maxSeries (${family.cap} series in this process): ` +
          `new label sets are recorded into the series whose every label is "${OVERFLOW_LABEL_VALUE}", ${counted}`,
      );
    }
    overflowCounter(family)?.labels({ metric: family.name }).inc();
    return overflow;
  }

  #make(init: ChildInit): Metric {
    const Ctor = this.constructor as new (init: MetricOptions) => Metric;
    return new Ctor(init as unknown as MetricOptions);
  }

  #collectFamily(): MetricFamily | Promise<MetricFamily> {
    const family = this.#family;
    if (family.size > WHOLE_SERIES) {
      // A large family is read in slices, giving the event loop a turn in between.
      const reading = this.#reading();
      return (async () => {
        while (reading.read()) await yieldToEventLoop();
        return this.#familyOf(await reading.take());
      })();
    }
    const children: Metric[] = [];
    if (family.labelNames.length === 0) children.push(family.root);
    else walk(family.tree, family.labelNames.length, (child) => children.push(child));
    const series: (Read | Promise<Read>)[] = new Array(children.length);
    const started = performance.now();
    for (let i = 0; i < children.length; i++) {
      series[i] = children[i]._read();
      // A family read for longer than a slice gives the event loop a turn in between.
      if ((i & 63) === 63 && performance.now() - started >= SLICE_MS) {
        return this.#readRest(children, series, i + 1).then((all) => this.#familyOf(all));
      }
    }
    return series.some((s) => s instanceof Promise)
      ? Promise.all(series).then((all) => this.#familyOf(all))
      : this.#familyOf(series as Read[]);
  }

  async #readRest(children: Metric[], series: (Read | Promise<Read>)[], from: number): Promise<Read[]> {
    await yieldToEventLoop();
    let started = performance.now();
    for (let i = from; i < children.length; i++) {
      series[i] = children[i]._read();
      if ((i & 63) === 63 && performance.now() - started >= SLICE_MS) {
        await yieldToEventLoop();
        started = performance.now();
      }
    }
    return series.some((s) => s instanceof Promise) ? await Promise.all(series) : series as Read[];
  }

  // The family in parts, each read when the one before was taken, so that the series of a part
  // written out die young: of at most PART_SERIES children past WHOLE_SERIES children, whole
  // otherwise.
  async *#familyParts(): AsyncGenerator<MetricFamily, void, undefined> {
    if (this.#family.size <= WHOLE_SERIES) {
      yield await this.#collectFamily();
      return;
    }
    const reading = this.#reading();
    let first = true;
    let more: boolean;
    do {
      more = reading.read(PART_SERIES);
      const series = await reading.take();
      if (series.length > 0 || first) yield this.#familyOf(series);
      first = false;
    } while (more);
  }

  // Only a family of children (its size counts them) is large enough to be read this way.
  #reading(): Reading {
    const family = this.#family;
    return new Reading(family.tree, family.labelNames.length, Metric.#readChild);
  }

  // How a reading reads a child: `_read` is protected, and this one function serves every reading.
  static #readChild(child: Metric): Read | Promise<Read> {
    return child._read();
  }

  #familyOf(all: Read[]): MetricFamily {
    const family = this.#family;
    // A type with a stored label is read as the gauge it is stored as, several series a child.
    const stored = family.storedLabel !== undefined;
    return {
      name: family.exposedName,
      help: family.help,
      type: stored ? family.spec.storedType ?? "gauge" : family.spec.type,
      series: stored ? (all as (Series | readonly Series[])[]).flat() : all,
      ...(!stored && family.spec.type === "histogram" ? { buckets: family.extra } : {}),
    } as MetricFamily;
  }
}

/** The most children in one part of a family streamed to the exposition... */
const PART_SERIES = 4_096;
/**
 * ...of a family of more children than this, read as it walks the tree. A smaller family is read
 * whole, from a list of its children: parts, and the walk, made an exposition of two families of
 * 10,000 series 10–30 % slower.
 */
const WHOLE_SERIES = 16_384;

// Reads the series of a family's children in the order they were made, walking the tree as it
// goes (no step walks a million children at once), and awaits only where a read gave a promise.
class Reading {
  #series: (Read | Promise<Read>)[] = [];
  #promised = false;
  // The walk through the tree: an iterator a level, the children's level last.
  readonly #levels: IterableIterator<unknown>[];
  readonly #depth: number;
  readonly #read: (child: Metric) => Read | Promise<Read>;

  constructor(tree: Tree, depth: number, read: (child: Metric) => Read | Promise<Read>) {
    this.#levels = [tree.values()];
    this.#depth = depth;
    this.#read = read;
  }

  // Reads children until `limit` are read since the last take or SLICE_MS have passed; true
  // when some are left. A level's iterator is left where it stopped and taken up again (iterators
  // of maps and arrays have no `return`, so leaving a for-of loop does not close them).
  read(limit: number = Infinity): boolean {
    const levels = this.#levels;
    const series = this.#series;
    const read = this.#read;
    const depth = this.#depth;
    const started = performance.now();
    let promised = false;
    let more = false;
    walk: while (levels.length > 0) {
      const level = levels[levels.length - 1];
      if (levels.length < depth) {
        const step = level.next();
        if (step.done === true) levels.pop();
        else levels.push((step.value as Tree).values());
        continue;
      }
      for (const child of level) {
        const value = read(child as Metric);
        if (value instanceof Promise) promised = true;
        series.push(value);
        if (
          series.length >= limit || ((series.length & 63) === 0 && performance.now() - started >= SLICE_MS)
        ) {
          more = true;
          break walk;
        }
      }
      levels.pop();
    }
    if (promised) this.#promised = true;
    return more;
  }

  // The series read since the last take: as they are, or once every read given as a promise has
  // settled.
  take(): Read[] | Promise<Read[]> {
    const series = this.#series;
    const promised = this.#promised;
    this.#series = [];
    this.#promised = false;
    return promised ? Promise.all(series) : series as Read[];
  }
}

/** Reads the single value of a counter or gauge series, and a counter's exemplar. */
export function readValue(labels: Labels, values: SeriesValues): ValueSeries | Promise<ValueSeries> {
  const value = values.get(0);
  const exemplars = values.exemplars?.();
  if (typeof value === "number" && !(exemplars instanceof Promise)) {
    return valueSeries(labels, value, exemplars);
  }
  return Promise.all([value, exemplars]).then(([value, exemplars]) => valueSeries(labels, value, exemplars));
}

function valueSeries(
  labels: Labels,
  value: number,
  exemplars: readonly (Exemplar | undefined)[] | undefined,
): ValueSeries {
  const exemplar = exemplars?.[0];
  return exemplar === undefined ? { labels, value } : { labels, value, exemplar };
}

function walk(tree: Tree, depth: number, visit: (child: Metric) => void): void {
  if (depth === 1) {
    for (const child of tree.values()) visit(child as Metric);
  } else {
    for (const sub of tree.values()) walk(sub as Tree, depth - 1, visit);
  }
}

function lookup(family: Family, labels: Labels): Metric | undefined {
  let node: unknown = family.tree;
  for (const label of family.labelNames) {
    node = (node as Tree).get(labels[label]);
    if (node === undefined) return undefined;
  }
  return node as Metric;
}

// A frozen copy with keys in declaration order, so equal label sets look alike everywhere.
function canonical(family: Family, labels: Record<string, string>): Labels {
  return Object.freeze(new family.Labels(labels));
}

function insert(family: Family, labels: Labels, child: Metric): Metric {
  const names = family.labelNames;
  let node = family.tree;
  for (let i = 0; i < names.length - 1; i++) {
    let next = node.get(labels[names[i]]) as Tree | undefined;
    if (next === undefined) node.set(labels[names[i]], next = new Map());
    node = next;
  }
  const last = labels[names[names.length - 1]];
  if (!node.has(last)) family.size++;
  node.set(last, child);
  return child;
}

// The binding the next metric is created on, instead of the current one.
let bindingOverride: Binding | undefined;

// theus_series_overflow_total, one per registry, created at the first overflow of one of its
// metrics, on that metric's backend.
class OverflowCounter extends Metric {
  #values: SeriesValues;

  constructor(options: MetricOptions) {
    super(options, OVERFLOW_SPEC);
    this.#values = this._values();
  }

  inc(): void {
    this.#values.inc(0, 1);
  }

  protected _dispose(): void {
    this.#values.dispose?.();
  }

  protected _renew(): void {
    this.#values = this._values();
  }

  protected _read(): ValueSeries | Promise<ValueSeries> {
    return readValue(this.labelValues, this.#values);
  }
}

const OVERFLOW_SPEC: TypeSpec = { type: "counter", claims: (name) => sampleNames("counter", name) };
const overflowCounters = new WeakMap<Registry, OverflowCounter | null>();
const overflowRefusals = new WeakMap<Registry, string>();

function overflowCounter(family: Family): OverflowCounter | null {
  const registry = family.home;
  if (registry === undefined) return null;
  let counter = overflowCounters.get(registry);
  if (counter !== undefined) return counter;
  const options: MetricOptions = {
    name: "theus_series_overflow_total",
    help: "Label sets recorded into a metric's overflow series, as the metric had its maxSeries series",
    labelNames: ["metric"],
    maxSeries: Infinity,
    registry,
  };
  bindingOverride = family.binding;
  try {
    counter = new OverflowCounter(options);
  } catch (error) {
    // The registry refuses it (another collector has the name, or the registry adds a label
    // named "metric"): the overflow is only warned, with the reason.
    if (!(error instanceof Error)) throw error;
    overflowRefusals.set(registry, error.message);
    counter = null;
  } finally {
    bindingOverride = undefined;
  }
  overflowCounters.set(registry, counter);
  return counter;
}

// The values of a metric whose labels are not all bound: every use names the missing labels.
class Incomplete implements SeriesValues {
  #error: () => Error;

  constructor(error: () => Error) {
    this.#error = error;
  }

  inc(): void {
    throw this.#error();
  }

  dec(): void {
    throw this.#error();
  }

  set(): void {
    throw this.#error();
  }

  get(): number {
    throw this.#error();
  }

  getAll(): number[] {
    throw this.#error();
  }

  exemplar(): void {
    throw this.#error();
  }
}

// Runs a metric's collect option, naming the metric in the error when it throws.
async function scrapeTime<M>(
  metric: M,
  collect: (this: M) => void | Promise<void>,
  name: string,
): Promise<void> {
  try {
    await collect.call(metric);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`The collect() of metric "${name}" failed: ${reason}`, { cause: error });
  }
}

/** The error for a call shape that takes labels positionally, the way prom-client does. */
export function positionalLabels(metric: string, names: readonly string[], first: unknown): TypeError {
  const pairs = names.map((name, i) => `${name}: ${JSON.stringify(i === 0 ? String(first) : "…")}`);
  return new TypeError(
    `Invalid labels for metric "${metric}": labels() takes an object of label values, got ${
      describe(first)
    }; write labels({ ${pairs.join(", ")} })`,
  );
}

/**
 * The error for a value method called with labels first, prom-client's `inc({ method: "GET" }, 2)`:
 * theus binds labels with `labels()`.
 */
export function labelsFirst(metric: string, method: string, labels: object, value: unknown): TypeError {
  const text = Object.entries(labels).map(([k, v]) => `${k}: ${JSON.stringify(String(v))}`).join(", ");
  return new TypeError(
    `Invalid value for ${method}() on metric "${metric}": expected a number, got an object; bind labels ` +
      `first: metric.labels({ ${text} }).${method}(${value === undefined ? "" : String(value)})`,
  );
}

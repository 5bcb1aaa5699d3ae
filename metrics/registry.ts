/**
 * Registry: the collectors a scrape collects.
 *
 * @module
 */

import { checkLabelName, checkMetricName, describe } from "../core/_names.ts";
import type { FamilyPart } from "../core/backend.ts";
import { Slicer } from "../core/_slice.ts";
import type { Collector, Labels, MetricFamily, StateSetFamily } from "../core/types.ts";
import type { Binding } from "./_binding.ts";
import { checkFamily, sampleNames } from "./_check.ts";
import { INTERNAL, type MaybeInternal, refreshOf } from "./_internal.ts";

/** A family, or a further piece of the family before it (`continued`), as a scrape reads them. */
export interface FamilyPiece {
  /** The family, or some of its series. */
  readonly family: MetricFamily;
  /** Whether these are more series of the family given just before. */
  readonly continued: boolean;
}

/** The method of a registry that collects in pieces, for the exposition. */
export const STREAM: unique symbol = Symbol("theus.stream");

/**
 * Thrown when a collector is registered under a name that is taken. `existing` is the
 * collector that holds it, so code that creates metrics lazily can reuse it.
 */
export class AlreadyRegisteredError extends Error {
  /** The collector already registered under the name. */
  readonly existing: Collector;

  /**
   * Creates the error.
   *
   * @param name The name that is taken.
   * @param existing The collector that holds it.
   */
  constructor(name: string, existing: Collector) {
    super(`Cannot register collector "${name}": a collector with that name is already registered`);
    this.name = "AlreadyRegisteredError";
    this.existing = existing;
  }
}

/** Options of {@linkcode Registry}. */
export interface RegistryOptions {
  /** Prepended, with an underscore, to the name of every family the registry collects. */
  prefix?: string;
  /**
   * The `maxSeries` of the metrics created in this registry that do not set their own: the
   * most series each keeps in this process before new label sets go to its overflow series.
   * `Infinity` (no cap) when not given.
   */
  maxSeries?: number;
  /**
   * Labels added to every series the registry collects, custom collectors' included (an
   * `instance`, a `region`). A metric with a label of the same name cannot be registered.
   */
  labels?: Readonly<Record<string, string>>;
}

// Label names the registry cannot add: the types' own, and the one shared backends add.
const RESERVED_LABELS = new Set(["le", "quantile", "theus_instance"]);

function checkRegistryLabels(labels: unknown): Labels {
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new TypeError(`Invalid registry labels: expected an object, got ${describe(labels)}`);
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(labels)) {
    checkLabelName(name, "registry labels");
    if (RESERVED_LABELS.has(name)) {
      throw new TypeError(`Invalid registry label "${name}": theus writes that label itself`);
    }
    if (typeof value !== "string") {
      throw new TypeError(
        `Invalid value for registry label "${name}": expected a string, got ${describe(value)}`,
      );
    }
    out[name] = value.toWellFormed();
  }
  return Object.freeze(out);
}

/**
 * Checks a series cap: a whole number of at least 1, or `Infinity`.
 *
 * @param value The cap given.
 * @param what What it is, for the error message.
 * @returns The cap.
 */
export function checkMaxSeries(value: unknown, what: string): number {
  if (typeof value !== "number" || !(value === Infinity || (Number.isInteger(value) && value >= 1))) {
    throw new TypeError(
      `Invalid ${what}: expected a whole number of at least 1, or Infinity, got ${describe(value)}`,
    );
  }
  return value;
}

/**
 * Registry holds collectors: metrics and custom collectors. Metrics register themselves in
 * {@linkcode defaultRegistry} unless told otherwise. Names are checked when a collector is
 * registered, never at scrape time.
 *
 * @example
 * ```ts
 * import { Counter, generateLatest, Registry } from "../mod.ts";
 *
 * const registry = new Registry({ prefix: "shop" });
 * new Counter({ name: "orders_total", help: "Orders", registry }).inc();
 * const text = await generateLatest(registry); // shop_orders_total 1
 * ```
 */
export class Registry {
  /** The prefix of every collected family name, if any. */
  readonly prefix: string | undefined;
  #maxSeries = Infinity;
  #labels: Labels = Object.freeze({});
  #labelNames: string[] = [];
  #collectors = new Map<Collector, readonly string[]>();
  #names = new Map<string, Collector>();

  /**
   * Creates an empty registry.
   *
   * @param options The optional name prefix and series cap.
   * @throws {TypeError} For a prefix that is not a valid metric name, or an invalid cap.
   */
  constructor(options: RegistryOptions = {}) {
    if (options.prefix !== undefined) checkMetricName(options.prefix, "registry prefix");
    this.prefix = options.prefix || undefined;
    if (options.maxSeries !== undefined) this.maxSeries = options.maxSeries;
    if (options.labels !== undefined) this.setDefaultLabels(options.labels);
  }

  /** The labels added to every series collected (see {@linkcode setDefaultLabels}); frozen. */
  get defaultLabels(): Labels {
    return this.#labels;
  }

  /**
   * Sets the labels added to every series the registry collects, custom collectors' included,
   * replacing those set before (`{}` removes them). Each series keeps its own labels first.
   *
   * @param labels Label names and values.
   * @throws {TypeError} For an invalid name or value, a name theus writes itself (`le`,
   * `quantile`, `theus_instance`), or a name a registered metric has as a label.
   */
  setDefaultLabels(labels: Readonly<Record<string, string>>): void {
    const checked = checkRegistryLabels(labels);
    const names = Object.keys(checked);
    for (const collector of this.#collectors.keys()) {
      const clash = labelClash(collector, names, this.prefix);
      if (clash !== undefined) {
        throw new TypeError(
          `Cannot set the registry label "${clash}": metric "${collector.name}" has a label of that name`,
        );
      }
    }
    this.#labels = checked;
    this.#labelNames = names;
  }

  /**
   * The series cap of the metrics created in this registry without a `maxSeries` of their own.
   * Setting it applies to them at once, to their label sets created from then on (`Infinity`
   * by default). `defaultRegistry.maxSeries = 10_000` caps every metric that does not say.
   *
   * @throws {TypeError} On set, for anything but a whole number of at least 1 or `Infinity`.
   */
  get maxSeries(): number {
    return this.#maxSeries;
  }

  set maxSeries(value: number) {
    this.#maxSeries = checkMaxSeries(value, "registry maxSeries");
  }

  /**
   * Registers a collector.
   *
   * @param collector A metric, or any object with a `collect()` method.
   * @throws {AlreadyRegisteredError} When the collector, or one with a name it would expose,
   * is already registered.
   * @throws {TypeError} For an object without `collect()`, or with an invalid `name`.
   */
  register(collector: Collector): void {
    if (typeof collector?.collect !== "function") {
      throw new TypeError(`Cannot register ${describe(collector)}: a collector needs a collect() method`);
    }
    const internal = (collector as MaybeInternal)[INTERNAL];
    let claims: readonly string[] = [];
    if (internal !== undefined) claims = internal.claims;
    else if (collector.name !== undefined) claims = [checkMetricName(collector.name, "collector name")];
    if (this.#collectors.has(collector)) {
      throw new AlreadyRegisteredError(claims[0] ?? "collector", collector);
    }
    if (internal?.type === "stateset" && this.prefix !== undefined) {
      // A state set's state label is named after the family, prefix included.
      const label = `${this.prefix}_${internal.target.name}`;
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) {
        throw new TypeError(
          `Cannot register state set "${internal.target.name}": its state label, named after the family, ` +
            `would be "${label}" with the registry prefix, which is not a valid label name`,
        );
      }
    }
    const clash = labelClash(collector, this.#labelNames, this.prefix);
    if (clash !== undefined) {
      throw new TypeError(
        `Cannot register metric "${collector.name}": its label "${clash}" is one the registry adds to every series`,
      );
    }
    for (const name of claims) {
      const existing = this.#names.get(name);
      if (existing !== undefined) throw new AlreadyRegisteredError(claims[0], existing);
    }
    this.#collectors.set(collector, claims);
    for (const name of claims) this.#names.set(name, collector);
  }

  /**
   * Removes a collector.
   *
   * @param collector The collector to remove.
   * @returns Whether it was registered.
   */
  unregister(collector: Collector): boolean {
    const claims = this.#collectors.get(collector);
    if (claims === undefined) return false;
    this.#collectors.delete(collector);
    for (const name of claims) this.#names.delete(name);
    return true;
  }

  /**
   * Returns the collector registered under a name: a metric's own name, or any sample name it
   * writes (`x_total`, `x_bucket`).
   *
   * @param name The name, without the registry prefix.
   * @returns The collector, or undefined.
   */
  get(name: string): Collector | undefined {
    return this.#names.get(name);
  }

  /**
   * Collects every registered collector, after pushing what remote backends have buffered.
   *
   * @returns The families, in registration order, names prefixed.
   * @throws {BackendUnavailableError} When a backend cannot be read.
   * @throws {TypeError} When a custom collector returns an invalid family.
   */
  async collect(): Promise<MetricFamily[]> {
    const out: MetricFamily[] = [];
    // The series of the last family, when it came in parts: more are appended, in slices.
    let joined: unknown[] | undefined;
    const slicer = new Slicer();
    for await (const { family, continued } of this[STREAM](false)) {
      if (!continued) {
        out.push(family);
        joined = undefined;
        continue;
      }
      if (joined === undefined) {
        joined = [...out[out.length - 1].series];
        out[out.length - 1] = { ...out[out.length - 1], series: joined } as MetricFamily;
      }
      for (const series of family.series) {
        if (slicer.due()) await slicer.pause();
        joined.push(series);
      }
    }
    return out;
  }

  /**
   * Collects as `collect()` does, giving each family as soon as it is read: a family read from a
   * backend with a `stream` hook comes in pieces, one after another, each after the first marked
   * `continued`, so that a scrape's body goes out while the rest is read. So does a metric read
   * child by child (no `collect` hook), in parts, unless `inParts` is false (`collect()`, which
   * wants whole families).
   *
   * @internal For the exposition; `collect()` is the API.
   */
  async *[STREAM](inParts = true): AsyncGenerator<FamilyPiece, void, undefined> {
    // Metrics on a backend with a class-level collect hook are read together, in one call. Values
    // computed at scrape time are set first, so that the flushes below carry them.
    const bindings = new Map<Binding, Collector[]>();
    for (const collector of this.#collectors.keys()) {
      const refresh = refreshOf(collector);
      if (refresh !== undefined) await refresh();
      const internal = (collector as MaybeInternal)[INTERNAL];
      if (internal === undefined) continue;
      const group = bindings.get(internal.binding);
      if (group === undefined) bindings.set(internal.binding, [collector]);
      else group.push(collector);
    }
    const read = new Map<Collector, MetricFamily>();
    // A binding read in parts: the parts not used yet, and which target each collector is.
    const streams = new Map<Binding, Parts>();
    const positions = new Map<Collector, number>();
    try {
      for (const [binding, collectors] of bindings) {
        await binding.settle();
        const cls = binding.cls;
        if (cls?.collect === undefined) continue;
        const targets = collectors.map((collector) => (collector as MaybeInternal)[INTERNAL]!.target);
        if (cls.stream !== undefined) {
          // The first part is read now, so that a store that cannot be read fails the scrape
          // before anything is written.
          const parts = cls.stream(binding.config, targets)[Symbol.asyncIterator]();
          const first = await parts.next();
          streams.set(binding, {
            parts,
            next: first.done ? undefined : first.value,
            done: first.done === true,
          });
          collectors.forEach((collector, i) => positions.set(collector, i));
          continue;
        }
        const families = await cls.collect(binding.config, targets);
        collectors.forEach((collector, i) => read.set(collector, families[i]));
      }
      const prefix = this.prefix;
      const labels = this.#labelNames.length > 0 ? this.#labels : undefined;
      const written = new Map<string, string>();
      const claim = (family: MetricFamily) => {
        for (const sample of sampleNames(family.type, family.name)) {
          const other = written.get(sample);
          if (other !== undefined) {
            throw new TypeError(
              `Cannot collect family "${family.name}": its sample name "${sample}" is also written by family "${other}"`,
            );
          }
          written.set(sample, family.name);
        }
      };
      for (const collector of this.#collectors.keys()) {
        const internal = (collector as MaybeInternal)[INTERNAL];
        if (internal !== undefined) {
          const stream = streams.get(internal.binding);
          if (stream !== undefined) {
            // A family reshaped when presented is read whole first: its parts' series, appended.
            const whole = internal.present !== undefined;
            const series: unknown[] = [];
            let family: MetricFamily | undefined;
            for await (const part of partsOf(stream, positions.get(collector)!)) {
              if (whole) {
                family ??= part;
                for (const one of part.series) series.push(one);
                continue;
              }
              if (family === undefined) claim(part);
              yield { family: withRegistry(part, prefix, labels), continued: family !== undefined };
              family = part;
            }
            if (whole) {
              family = internal.present!({ ...family!, series } as MetricFamily);
              claim(family);
              yield { family: withRegistry(family, prefix, labels), continued: false };
            }
            continue;
          }
          const whole = read.get(collector);
          if (inParts && whole === undefined && internal.present === undefined) {
            // Read and written a part at a time, so that a large family's series die young.
            let first = true;
            for await (const part of internal.parts()) {
              if (first) claim(part);
              yield { family: withRegistry(part, prefix, labels), continued: !first };
              first = false;
            }
            continue;
          }
          let family: MetricFamily | Promise<MetricFamily> = whole ?? internal.family();
          if (family instanceof Promise) family = await family;
          if (internal.present !== undefined) family = internal.present(family);
          claim(family);
          yield { family: withRegistry(family, prefix, labels), continued: false };
          continue;
        }
        const families = await collector.collect();
        if (!Array.isArray(families)) {
          throw new TypeError(
            `Invalid result from collector${
              collector.name ? ` "${collector.name}"` : ""
            }: collect() must return an array of families`,
          );
        }
        for (const family of families) {
          const checked = checkFamily(family);
          claim(checked);
          yield { family: withRegistry(checked, prefix, labels), continued: false };
        }
      }
    } finally {
      for (const { parts } of streams.values()) await parts.return?.();
    }
  }
}

// The parts of a backend's stream, and the one taken but not used yet.
interface Parts {
  readonly parts: AsyncIterator<FamilyPart>;
  next: FamilyPart | undefined;
  done: boolean;
}

// The parts of one target, in order: the stream's targets come in the order of the registry's
// collectors, so every part before the target's are other targets' and were used already. The
// next part is read only once this one was used (written out).
async function* partsOf(stream: Parts, index: number): AsyncGenerator<MetricFamily, void, undefined> {
  while (true) {
    if (stream.next === undefined) {
      if (stream.done) return;
      const result = await stream.parts.next();
      if (result.done) {
        stream.done = true;
        return;
      }
      stream.next = result.value;
    }
    const part = stream.next;
    if (part.index !== index) return;
    stream.next = undefined;
    yield part.family;
    if (part.last) return;
  }
}

// The family as the registry shows it: the name prefixed, and the registry's labels added to
// every series, after the series' own. A custom collector's series that has one of those labels
// is an error: the registry's would hide it, or it would hide the registry's.
function withRegistry(
  family: MetricFamily,
  prefix: string | undefined,
  labels: Labels | undefined,
): MetricFamily {
  let out = prefix === undefined ? family : { ...family, name: `${prefix}_${family.name}` };
  if (prefix !== undefined && family.type === "stateset") out = renameState(family, out.name);
  if (labels !== undefined) {
    const series = (out.series as readonly { labels: Labels }[]).map((s) => {
      for (const name in labels) {
        if (Object.hasOwn(s.labels, name)) {
          throw new TypeError(
            `Cannot collect family "${family.name}": its series has the label "${name}", which the registry adds to every series`,
          );
        }
      }
      return { ...s, labels: { ...s.labels, ...labels } };
    });
    out = { ...out, series } as unknown as MetricFamily;
  }
  return out;
}

// A state set's series labelled by their state under the family's prefixed name: OpenMetrics
// names the state label after the family. The label keeps its place among the others.
function renameState(family: StateSetFamily, name: string): StateSetFamily {
  const from = family.name;
  checkLabelName(name, name);
  const series = family.series.map((s) => {
    const labels: Record<string, string> = {};
    for (const label in s.labels) {
      if (label === name && label !== from) {
        throw new TypeError(
          `Cannot collect family "${name}": its series has a label named like the family, which holds the state`,
        );
      }
      labels[label === from ? name : label] = s.labels[label];
    }
    return { ...s, labels: Object.freeze(labels) };
  });
  return { ...family, name, series };
}

// The first of `names` that a theus metric has as a label name: a state set's state label is
// named after the family, prefix included.
function labelClash(collector: Collector, names: readonly string[], prefix?: string): string | undefined {
  if (names.length === 0) return undefined;
  const internal = (collector as MaybeInternal)[INTERNAL];
  if (internal === undefined) return undefined;
  const own = internal.target.labelNames;
  const state = internal.type === "stateset" ? internal.target.name : undefined;
  for (const label of own) {
    const exposed = label === state && prefix !== undefined ? `${prefix}_${label}` : label;
    if (names.includes(exposed)) return exposed;
  }
  return undefined;
}

/** The registry metrics join unless their options say otherwise. */
export const defaultRegistry: Registry = new Registry();

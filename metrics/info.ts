/**
 * Info: textual information as labels (a version, a build), the OpenMetrics info type.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import { checkLabelName, describe } from "../core/_names.ts";
import type { InfoFamily, Labels, MetricFamily, ValueSeries } from "../core/types.ts";
import { sampleNames } from "./_check.ts";
import { toWellFormed } from "./_labels.ts";
import { Metric, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";

/** Options of {@linkcode Info}. */
export interface InfoOptions<L extends string = string> extends MetricOptions<L> {
  /** Called once per collection, with the info as `this`, before its values are read. */
  collect?(this: Info<L>): void | Promise<void>;
  /** An info has no unit (OpenMetrics). */
  unit?: undefined;
}

// The label an info's series are stored under: its own labels, as one canonical text. No label
// name of a metric starts with `__`, so it never meets one.
const INFO_LABEL = "__info";

// The info's labels as one value: name/value pairs sorted by name, as a JSON array, so that equal
// label sets are one stored series, whatever the order they were given in.
function encode(labels: Labels): string {
  const flat: string[] = [];
  for (const name of Object.keys(labels).sort()) flat.push(name, labels[name]);
  return JSON.stringify(flat);
}

// The exposed labels of a stored series: the metric's labels, then the info's, sorted by name.
const decoded = new WeakMap<Labels, Labels | null>();

function decode(stored: Labels): Labels | undefined {
  const known = decoded.get(stored);
  if (known !== undefined) return known ?? undefined;
  let labels: Record<string, string> | null = {};
  for (const name in stored) if (name !== INFO_LABEL) labels[name] = stored[name];
  try {
    const flat = JSON.parse(stored[INFO_LABEL]) as unknown;
    if (!Array.isArray(flat)) throw new TypeError("not an array");
    for (let i = 0; i + 1 < flat.length; i += 2) labels[String(flat[i])] = String(flat[i + 1]);
  } catch {
    // Not written by an Info: left out.
    labels = null;
  }
  const out = labels === null ? null : Object.freeze(labels);
  if (Object.isFrozen(stored)) decoded.set(stored, out);
  return out ?? undefined;
}

const SPEC: TypeSpec = {
  type: "info",
  claims: (name) => sampleNames("info", name),
  storedLabel: () => INFO_LABEL,
  present(family: MetricFamily): InfoFamily {
    const series: ValueSeries[] = [];
    for (const s of family.series as readonly ValueSeries[]) {
      const labels = decode(s.labels);
      if (labels !== undefined) series.push({ labels, value: 1 });
    }
    return { name: family.name, help: family.help, type: "info", series };
  },
};

/**
 * Info exposes textual information about the process as labels: a version, a commit, a build
 * host. OpenMetrics writes it as `# TYPE build info` with the sample `build_info{version="1.2.3"} 1`;
 * text 0.0.4, which has no info type, as the gauge `build_info` with the same sample (as
 * client_python does). The name may end with `_info` or not: the family is named without it,
 * and the sample adds it.
 *
 * The info's own labels are given to `set()`, any names, and replace those set before. With
 * `labelNames`, each child (`labels({...})`) holds its own info, and its series carries the
 * child's labels first, then the info's, sorted by name; an info label cannot have the name of
 * one of the `labelNames`.
 *
 * On a shared backend each process's `set()` replaces the series that process set before; an
 * info set by another process, with other labels, shows as a series of its own.
 *
 * @example Expose the version
 * ```ts
 * import { generateLatest, Info, Registry } from "../mod.ts";
 *
 * const registry = new Registry();
 * const build = new Info({ name: "build", help: "The build", registry });
 * build.set({ version: "1.2.3", commit: "4f2a9c1" });
 * const text = await generateLatest(registry); // build_info{commit="4f2a9c1",version="1.2.3"} 1
 * ```
 */
export class Info<const L extends string = string> extends Metric<L> {
  #values: SeriesValues | undefined;
  // The info's labels as stored, the labels of the stored series, and the labels themselves.
  #encoded: string | undefined;
  #stored: Labels | undefined;
  #info: Labels | undefined;

  /**
   * Creates an info and registers it. It has no series until `set()` is called.
   *
   * @param options Name, help, labels and registry.
   * @throws {TypeError} For an invalid name, label name or default label, or a unit.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: InfoOptions<L>) {
    super(options, SPEC);
  }

  /**
   * Sets the info's labels, replacing those set before (the series of the old ones is dropped,
   * and deleted from a shared store). Setting the same labels again writes them again.
   *
   * @param labels Label names and string values: any names but the metric's label names (and
   * those its registry adds to every series).
   * @throws {TypeError} For an invalid label name, one of the metric's label names, a value that
   * is not a string, or when labels of the metric are missing.
   */
  set(labels: Readonly<Record<string, string>>): void {
    if (!this.isObservable) throw this._incomplete();
    const checked = this.#check(labels);
    const encoded = encode(checked);
    if (encoded !== this.#encoded) {
      const old = this.#encoded;
      if (old !== undefined) {
        this.#values?.dispose?.();
        this._removeStored(old);
      }
      this.#values = this._storedValues(encoded);
      this.#encoded = encoded;
      this.#stored = this._storedLabels(encoded);
      this.#info = checked;
    }
    this.#values!.set(0, 1);
  }

  /**
   * The info's labels as this process last set them, sorted by name; undefined before `set()`.
   *
   * @returns A frozen label set, or undefined.
   */
  get(): Labels | undefined {
    return this.#info;
  }

  /** The label sets of this child's stored series. */
  protected override _stored(): readonly Labels[] {
    return this.#stored === undefined ? [] : [this.#stored];
  }

  /** Tells this child's backend values that the series was removed. */
  protected _dispose(): void {
    this.#values?.dispose?.();
  }

  /** Forgets the info, after `reset()`: no series until the next `set()`. */
  protected _renew(): void {
    this.#values = undefined;
    this.#encoded = undefined;
    this.#stored = undefined;
    this.#info = undefined;
  }

  /** Reads the series of this child: none before `set()`. */
  protected _read(): readonly ValueSeries[] | ValueSeries | Promise<ValueSeries> {
    if (this.#values === undefined) return [];
    return readValue(this.#stored!, this.#values);
  }

  #check(labels: unknown): Labels {
    if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
      throw new TypeError(
        `Invalid labels for info "${this.name}": set() takes an object of label values, got ${
          describe(labels)
        }`,
      );
    }
    const own = new Set<string>(this.labelNames);
    const added = this._home?.defaultLabels ?? {};
    const out: Record<string, string> = {};
    for (const name of Object.keys(labels).sort()) {
      checkLabelName(name, this.name);
      if (own.has(name)) {
        throw new TypeError(
          `Invalid label "${name}" for info "${this.name}": it is one of the metric's label names, ` +
            `whose values labels() binds`,
        );
      }
      if (Object.hasOwn(added, name)) {
        throw new TypeError(
          `Invalid label "${name}" for info "${this.name}": its registry adds that label to every series`,
        );
      }
      const value = (labels as Record<string, unknown>)[name];
      if (typeof value !== "string") {
        throw new TypeError(
          `Invalid value for label "${name}" of info "${this.name}": expected a string, got ${
            describe(value)
          }`,
        );
      }
      out[name] = toWellFormed(value);
    }
    return Object.freeze(out);
  }
}

/**
 * StateSet: a set of states, each true or false, the OpenMetrics stateset type; and Enum, the
 * state set of which exactly one state is true.
 *
 * @module
 */

import type { SeriesValues } from "../core/backend.ts";
import { describe, quoteList } from "../core/_names.ts";
import type { Labels, MetricFamily, StateSetFamily, ValueSeries } from "../core/types.ts";
import { toWellFormed } from "./_labels.ts";
import { Metric, type MetricOptions, readValue, type TypeSpec } from "./_metric.ts";

/** Options of {@linkcode StateSet}. `S` is the states, inferred from `states`. */
export interface StateSetOptions<L extends string = string, S extends string = string>
  extends MetricOptions<L> {
  /** The states, in the order they are written: at least one, each a distinct string. */
  states: readonly S[];
  /** Called once per collection, with the state set as `this`, before its values are read. */
  collect?(this: StateSet<L, S>): void | Promise<void>;
  /** A state set has no unit (OpenMetrics). */
  unit?: undefined;
}

/** Options of {@linkcode Enum}. `S` is the states, inferred from `states`. */
export interface EnumOptions<L extends string = string, S extends string = string>
  extends StateSetOptions<L, S> {
  /** Called once per collection, with the enum as `this`, before its values are read. */
  collect?(this: Enum<L, S>): void | Promise<void>;
}

/** The truth of each state of a state set whose states are `S`. */
export type StateValues<S extends string = string> = { readonly [K in S]: boolean };

// The states, checked once the name and label names are: the state label is named after the
// metric, so the name must be a label name and cannot be one of the metric's label names.
function checkStates(options: StateSetOptions, type: string): readonly string[] {
  const { name, labelNames, states } = options;
  if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name) || name.startsWith("__")) {
    throw new TypeError(
      `Invalid name "${name}" for ${type}: its state label is named after it, so it must be a label ` +
        `name too ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__")`,
    );
  }
  if (labelNames?.includes(name)) {
    throw new TypeError(
      `Invalid label name "${name}" for ${type} "${name}": the state label has the metric's name`,
    );
  }
  if (!Array.isArray(states) || states.length === 0) {
    throw new TypeError(
      `Invalid states of ${type} "${name}": expected a non-empty array of strings, got ${
        Array.isArray(states) ? "an empty array" : describe(states)
      }`,
    );
  }
  const seen = new Set<string>();
  for (const state of states as unknown[]) {
    if (typeof state !== "string") {
      throw new TypeError(`Invalid state of ${type} "${name}": expected a string, got ${describe(state)}`);
    }
    const written = toWellFormed(state);
    if (seen.has(written)) throw new TypeError(`Duplicate state "${state}" of ${type} "${name}"`);
    seen.add(written);
  }
  return Object.freeze([...seen]);
}

// The family as exposed: the series of one label set together, states in their declared order,
// a state no process wrote as 0 (false), and a state the metric does not declare left out.
function present(family: MetricFamily, extra: unknown): StateSetFamily {
  const states = extra as readonly string[];
  const label = family.name;
  const groups = new Map<string, (ValueSeries | undefined)[]>();
  const rank = new Map(states.map((state, i) => [state, i]));
  for (const s of family.series as readonly ValueSeries[]) {
    const at = rank.get(s.labels[label]);
    if (at === undefined) continue;
    let key = "";
    for (const name in s.labels) if (name !== label) key += `${JSON.stringify(s.labels[name])},`;
    let group = groups.get(key);
    if (group === undefined) groups.set(key, group = new Array(states.length).fill(undefined));
    group[at] = s.value === 1 || s.value === 0 ? s : { labels: s.labels, value: s.value ? 1 : 0 };
  }
  const series: ValueSeries[] = [];
  for (const group of groups.values()) {
    const template = group.find((s) => s !== undefined)!.labels;
    for (let i = 0; i < states.length; i++) {
      series.push(group[i] ?? { labels: Object.freeze({ ...template, [label]: states[i] }), value: 0 });
    }
  }
  return { name: family.name, help: family.help, type: "stateset", series };
}

const SPEC: TypeSpec = {
  type: "stateset",
  claims: (name) => [name],
  options: ["states"],
  storedLabel: (name) => name,
  present,
};

/**
 * StateSet is a set of named states, each true or false: the features turned on, the phases a
 * job has reached. OpenMetrics writes it as `# TYPE feature stateset`, one sample per state,
 * labelled by the state under the metric's own name: `feature{feature="dark_mode"} 1`, 0 for
 * false. Text 0.0.4, which has no state set type, writes the same samples as a gauge (as
 * client_python does). For states of which exactly one is true, use {@linkcode Enum}.
 *
 * The state label is named after the metric (after the registry prefix too), so the name must
 * also be a label name (no `:`) and cannot be one of `labelNames`. A series (a label set) shows
 * once it has been set, with every state: those never set are false.
 *
 * @example Feature flags
 * ```ts
 * import { Registry, StateSet } from "../mod.ts";
 *
 * const features = new StateSet({
 *   name: "feature",
 *   help: "Features turned on",
 *   states: ["dark_mode", "beta_search"],
 *   registry: new Registry(),
 * });
 * features.set({ dark_mode: true, beta_search: false }); // feature{feature="dark_mode"} 1
 * features.set({ beta_search: true }); // dark_mode stays true
 * ```
 */
export class StateSet<const L extends string = string, const S extends string = string> extends Metric<L> {
  // One value per state, created at the first write or read.
  #values: SeriesValues[] | undefined;
  #stored: Labels[] | undefined;
  #written = false;

  /**
   * Creates a state set and registers it.
   *
   * @param options Name, help, states, labels and registry.
   * @throws {TypeError} For an invalid name (it must be a label name too), label name, default
   * label or states, a label named like the metric, or a unit.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: StateSetOptions<L, S>) {
    super(options, SPEC, () => checkStates(options as StateSetOptions, kindOf(new.target)));
  }

  /** The states, in the order they are written. */
  get states(): readonly S[] {
    return this._extra as readonly S[];
  }

  /**
   * Sets the states given, true or false; the others keep their values (false until set).
   *
   * @param states State names mapped to whether they are true.
   * @throws {TypeError} For an unknown state, a value that is not a boolean, or when labels are
   * missing.
   */
  set(states: { readonly [K in S]?: boolean }): void {
    if (!this.isObservable) throw this._incomplete();
    const given = parseStates(this, states);
    const values = this.#open();
    for (const [at, value] of given) values[at].set(0, value ? 1 : 0);
    this.#written = true;
  }

  /**
   * Makes `state` the one true state: every other state is false.
   *
   * @param state One of the states.
   * @throws {TypeError} For an unknown state, or when labels are missing.
   */
  setState(state: S): void {
    if (!this.isObservable) throw this._incomplete();
    const at = indexOf(this, state);
    const values = this.#open();
    for (let i = 0; i < values.length; i++) values[i].set(0, i === at ? 1 : 0);
    this.#written = true;
  }

  /**
   * Returns whether each state is true (asynchronously on remote backends).
   *
   * @returns The states mapped to their truth.
   * @throws {TypeError} When labels are missing.
   */
  get(): StateValues<S> | Promise<StateValues<S>> {
    if (!this.isObservable) throw this._incomplete();
    const states = this.states;
    const read = this.#open().map((values) => values.get(0));
    const make = (numbers: readonly number[]) => {
      const out = {} as Record<S, boolean>;
      states.forEach((state, i) => (out[state] = numbers[i] === 1));
      return Object.freeze(out);
    };
    return read.every((value) => typeof value === "number")
      ? make(read as number[])
      : Promise.all(read).then(make);
  }

  /** The label sets of this child's stored series, one per state. */
  protected override _stored(): readonly Labels[] {
    return this.#labelSets();
  }

  /** Tells this child's backend values that the series were removed. */
  protected _dispose(): void {
    if (this.#values !== undefined) { for (const values of this.#values) values.dispose?.(); }
  }

  /** Forgets the states, after `reset()`: no series until the next write. */
  protected _renew(): void {
    this.#values = undefined;
    this.#written = false;
  }

  /** Reads the series of this child, one per state: none before the first write. */
  protected _read(): readonly ValueSeries[] | Promise<readonly ValueSeries[]> {
    const values = this.#values;
    if (!this.#written || values === undefined) return [];
    const labels = this.#labelSets();
    const series = values.map((v, i) => readValue(labels[i], v));
    return series.every((s) => !(s instanceof Promise)) ? series as ValueSeries[] : Promise.all(series);
  }

  #open(): SeriesValues[] {
    return this.#values ??= this.states.map((state) => this._storedValues(state));
  }

  #labelSets(): readonly Labels[] {
    return this.#stored ??= this.states.map((state) => this._storedLabels(state));
  }
}

// What the class is called in error messages.
function kindOf(cls: unknown): string {
  return cls === Enum || (typeof cls === "function" && cls.prototype instanceof Enum) ? "enum" : "state set";
}

// The position of a state, or a TypeError naming the states.
function indexOf(metric: StateSet, state: unknown): number {
  const at = typeof state === "string"
    ? (metric.states as readonly string[]).indexOf(toWellFormed(state))
    : -1;
  if (at === -1) {
    throw new TypeError(
      `Unknown state ${describe(state)} of ${kindOf(metric.constructor)} "${metric.name}": expected one of ${
        quoteList(metric.states)
      }`,
    );
  }
  return at;
}

// The states given to set(), by position, checked.
function parseStates(metric: StateSet, states: unknown): [number, boolean][] {
  if (typeof states !== "object" || states === null || Array.isArray(states)) {
    throw new TypeError(
      `Invalid states for ${kindOf(metric.constructor)} "${metric.name}": set() takes an object of ` +
        `states mapped to booleans, got ${describe(states)}`,
    );
  }
  const out: [number, boolean][] = [];
  for (const [state, value] of Object.entries(states)) {
    const at = indexOf(metric, state);
    if (typeof value !== "boolean") {
      throw new TypeError(
        `Invalid value for state "${state}" of ${kindOf(metric.constructor)} "${metric.name}": ` +
          `expected a boolean, got ${describe(value)}`,
      );
    }
    out.push([at, value]);
  }
  return out;
}

/**
 * Enum is a state set of which exactly one state is true: the state something is in (starting,
 * running, stopped), as client_python's Enum. It is exposed as a state set: one sample per
 * state, 1 for the current state and 0 for the others. A series shows once its state is set
 * (client_python starts in the first state; here a process that starts does not overwrite, on
 * a shared backend, the state another process set).
 *
 * @example A task's state
 * ```ts
 * import { Enum, Registry } from "../mod.ts";
 *
 * const task = new Enum({
 *   name: "task_state",
 *   help: "The state of the task",
 *   states: ["starting", "running", "stopped"],
 *   registry: new Registry(),
 * });
 * task.state("running"); // task_state{task_state="running"} 1, the others 0
 * ```
 */
export class Enum<const L extends string = string, const S extends string = string> extends StateSet<L, S> {
  /**
   * Creates an enum and registers it.
   *
   * @param options Name, help, states, labels and registry.
   * @throws {TypeError} For an invalid name (it must be a label name too), label name, default
   * label or states, a label named like the metric, or a unit.
   * @throws {AlreadyRegisteredError} When the registry already has a metric of that name.
   */
  constructor(options: EnumOptions<L, S>) {
    super(options);
  }

  /**
   * Makes `state` the current state: the one true state.
   *
   * @param state One of the states.
   * @throws {TypeError} For an unknown state, or when labels are missing.
   */
  state(state: S): void {
    this.setState(state);
  }

  /**
   * Sets the current state from an object in which exactly one state is true (others may be
   * given as false): `set({ running: true })` is `state("running")`.
   *
   * @param states State names mapped to whether they are true; exactly one true.
   * @throws {TypeError} For an unknown state, a value that is not a boolean, no true state or
   * more than one, or when labels are missing.
   */
  override set(states: { readonly [K in S]?: boolean }): void {
    if (!this.isObservable) throw this._incomplete();
    const on = parseStates(this, states).filter(([, value]) => value);
    if (on.length !== 1) {
      throw new TypeError(
        `Invalid states for enum "${this.name}": exactly one state is true, got ${
          on.length === 0 ? "none" : quoteList(on.map(([at]) => this.states[at]))
        }`,
      );
    }
    this.setState(this.states[on[0][0]]);
  }
}

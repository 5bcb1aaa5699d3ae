// What the registry needs from a theus metric beyond the public Collector interface.

import type { CollectTarget } from "../core/backend.ts";
import type { MetricFamily, MetricType } from "../core/types.ts";
import type { Binding } from "./_binding.ts";

/** The key of a metric's internal view. */
export const INTERNAL: unique symbol = Symbol("theus.metric");

/** A metric's internal view, read by the registry. */
export interface MetricInternals {
  /** The binding its values were created with, settled once per collection. */
  readonly binding: Binding;
  /** Every sample name the metric writes, for conflict checks at registration. */
  readonly claims: readonly string[];
  /** The type the metric is exposed as; `target.type` is the type its values are stored as. */
  readonly type: MetricType;
  /** The shape a backend's class-level `collect` hook reads. */
  readonly target: CollectTarget;
  /**
   * The family, read value by value, without settling the binding first: as stored, like what
   * the `collect` hook returns, so `present` applies to it too.
   */
  family(): MetricFamily | Promise<MetricFamily>;
  /**
   * The same family in parts of a bounded number of series (at least one part; each a family
   * with some of the series, in order), each read once the one before is taken: what the
   * exposition writes out a part at a time.
   */
  parts(): AsyncIterable<MetricFamily>;
  /**
   * Reshapes a family as read (by the backend's `collect` hook or by `family()`) into the family
   * exposed: an info's or a state set's from the gauge it is stored as, and the unit added.
   * Undefined when they are the same.
   */
  readonly present?: (family: MetricFamily) => MetricFamily;
  /**
   * Removes every series, the metric's own included, and deletes them from a shared store: for
   * a metric that is unregistered for good. Later writes are ignored.
   */
  retire(): void;
}

/** An object that may carry a metric's internal view. */
export interface MaybeInternal {
  readonly [INTERNAL]?: MetricInternals;
}

/** Work to do before a collector is collected: values computed at scrape time. */
export type Refresh = () => void | Promise<void>;

const refreshers = new WeakMap<object, Refresh>();

/** Makes a collector run `refresh` at the start of every collection that includes it. */
export function setRefresh(collector: object, refresh: Refresh): void {
  refreshers.set(collector, refresh);
}

/** The refresh of a collector, if it has one. */
export function refreshOf(collector: object): Refresh | undefined {
  return refreshers.get(collector);
}

let perInstanceScope = false;

/**
 * Creates metrics whose series are each instance's own (see `CollectTarget.perInstance`): every
 * metric constructed inside `create` is.
 */
export function perInstance<T>(create: () => T): T {
  const outer = perInstanceScope;
  perInstanceScope = true;
  try {
    return create();
  } finally {
    perInstanceScope = outer;
  }
}

/** Whether a metric constructed now is per instance. */
export function creatingPerInstance(): boolean {
  return perInstanceScope;
}

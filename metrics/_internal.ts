// What the registry needs from a theus metric beyond the public Collector interface.

import type { CollectTarget } from "../core/backend.ts";
import type { MetricFamily } from "../core/types.ts";
import type { Binding } from "./_binding.ts";

/** The key of a metric's internal view. */
export const INTERNAL: unique symbol = Symbol("theus.metric");

/** A metric's internal view, read by the registry. */
export interface MetricInternals {
  /** The binding its values were created with, settled once per collection. */
  readonly binding: Binding;
  /** Every sample name the metric writes, for conflict checks at registration. */
  readonly claims: readonly string[];
  /** The shape a backend's class-level `collect` hook reads. */
  readonly target: CollectTarget;
  /** The family, read value by value, without settling the binding first. */
  family(): MetricFamily | Promise<MetricFamily>;
}

/** An object that may carry a metric's internal view. */
export interface MaybeInternal {
  readonly [INTERNAL]?: MetricInternals;
}

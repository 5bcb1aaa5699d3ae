// The library's own health on the remote backends: flushes, failed flushes, rejected changes,
// the last flush's duration and the series waiting to be written. The backend classes expose
// the collector as their `health`, which `loadBackend` registers in defaultRegistry.

import type { Collector, MetricFamily, ValueSeries } from "../../core/types.ts";
import type { StoreStats } from "./writer.ts";

/** What the health metrics read of a store. */
export interface HealthSource {
  /** The backend's name: "redis" or "upstash". */
  readonly backend: string;
  /** The store's key prefix. */
  readonly keyPrefix: string;
  /** Its flush statistics. */
  readonly stats: StoreStats;
  /** Series and removals not yet written. */
  readonly pending: number;
}

const tracked = new Set<HealthSource>();

/** Adds a store to the health metrics. */
export function trackHealth(source: HealthSource): void {
  tracked.add(source);
}

/** Removes a closed store from the health metrics. */
export function untrackHealth(source: HealthSource): void {
  tracked.delete(source);
}

// Stores of one backend and prefix (several config objects) add up to one series.
function series(read: (source: HealthSource) => number, max = false): ValueSeries[] {
  const out = new Map<string, ValueSeries>();
  for (const source of tracked) {
    const id = `${source.backend}\n${source.keyPrefix}`;
    const value = read(source);
    const seen = out.get(id);
    if (seen === undefined) {
      out.set(id, { labels: { backend: source.backend, key_prefix: source.keyPrefix }, value });
    } else {
      out.set(id, { labels: seen.labels, value: max ? Math.max(seen.value, value) : seen.value + value });
    }
  }
  return [...out.values()];
}

/** The health metrics of every store of both remote backends. */
export const healthCollector: Collector = {
  name: "theus_backend",
  collect(): MetricFamily[] {
    return [
      {
        name: "theus_backend_flushes",
        help: "Flushes attempted",
        type: "counter",
        series: series((s) => s.stats.flushes),
      },
      {
        name: "theus_backend_flush_failures",
        help: "Flushes that failed; their changes stay buffered and are retried",
        type: "counter",
        series: series((s) => s.stats.failures),
      },
      {
        name: "theus_backend_rejected_changes",
        help: "Changes the backend refused to apply, such as an increment to infinity",
        type: "counter",
        series: series((s) => s.stats.rejected),
      },
      {
        name: "theus_backend_flush_duration_seconds",
        help: "Duration of the last flush",
        type: "gauge",
        series: series((s) => s.stats.lastFlushSeconds, true),
      },
      {
        name: "theus_backend_pending_series",
        help: "Series with changes not yet written to the backend",
        type: "gauge",
        series: series((s) => s.pending),
      },
    ];
  },
};

// The library's own health on remote backends, exposed through defaultRegistry:
// flushes, failed flushes, the last flush's duration and the series waiting to be written.

import { defaultRegistry } from "../metrics/registry.ts";
import type { MetricFamily, ValueSeries } from "../metrics/types.ts";
import type { RemoteStore } from "./_remote.ts";

const tracked: { store: RemoteStore; backend: string }[] = [];

const collector = {
  name: "theus_backend",
  collect(): MetricFamily[] {
    // Stores of one backend and prefix (several config objects) add up to one series.
    const series = (read: (store: RemoteStore) => number, max = false): ValueSeries[] => {
      const out = new Map<string, ValueSeries>();
      for (const { store, backend } of tracked) {
        const id = `${backend}\n${store.options.keyPrefix}`;
        const value = read(store);
        const seen = out.get(id);
        if (seen === undefined) {
          out.set(id, { labels: { backend, key_prefix: store.options.keyPrefix }, value });
        } else {
          out.set(id, { labels: seen.labels, value: max ? Math.max(seen.value, value) : seen.value + value });
        }
      }
      return [...out.values()];
    };
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
        series: series((s) => s.pendingSeries),
      },
    ];
  },
};

/** Adds a store to the health metrics, registering them on first use. */
export function trackStore(store: RemoteStore, backend: string): void {
  if (tracked.length === 0 && defaultRegistry.get(collector.name) === undefined) {
    defaultRegistry.register(collector);
  }
  tracked.push({ store, backend });
}

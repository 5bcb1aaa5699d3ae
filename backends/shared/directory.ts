// A thread's view of the arena's log: the metrics, series, pages and threads every thread has
// registered, read in order and without a lock, from where the last read stopped.

import type { CollectTarget, GaugeMode } from "../../core/backend.ts";
import { formatBound } from "../../core/_format.ts";
import type { MetricType } from "../../core/types.ts";
import { type Arena, KIND, PAGE_VALUES } from "./arena.ts";

/** A metric as the arena knows it: what every thread that defines the name must agree on. */
export interface Definition {
  readonly record: number;
  readonly name: string;
  readonly type: MetricType;
  /** The label names, sorted (their order does not change a series). */
  readonly labelNames: readonly string[];
  /** A histogram's bounds, written canonically (`"0.1"`, `"+Inf"`). */
  readonly buckets: readonly string[] | undefined;
  readonly mode: GaugeMode | undefined;
}

/** A series as the arena knows it. */
export interface Entry {
  readonly record: number;
  readonly definition: Definition;
  /** The canonical labels text. */
  readonly labels: string;
  /** Its first value position; the series holds `width` positions from there, in one page. */
  readonly position: number;
  readonly width: number;
  /** A shared gauge's epoch word (an Int32 view of it); undefined for anything else. */
  readonly epoch: Int32Array | undefined;
  /** Where the series starts in a page. */
  readonly index: number;
  removed: boolean;
}

/** The definition a metric brings, as the arena stores it. */
export function definitionOf(target: CollectTarget): Omit<Definition, "record"> {
  return {
    name: target.name,
    type: target.type,
    labelNames: [...target.labelNames].sort(),
    buckets: target.type === "histogram" ? target.buckets?.map(formatBound) : undefined,
    mode: target.type === "gauge" ? target.gaugeMode ?? "shared" : undefined,
  };
}

/** Why two definitions of one name differ, or undefined when they agree. */
export function difference(a: Omit<Definition, "record">, b: Omit<Definition, "record">): string | undefined {
  if (a.type !== b.type) return `it is a ${a.type} there, a ${b.type} here`;
  if (a.labelNames.join(",") !== b.labelNames.join(",")) {
    return `its label names are ${JSON.stringify(a.labelNames)} there, ${JSON.stringify(b.labelNames)} here`;
  }
  if (JSON.stringify(a.buckets) !== JSON.stringify(b.buckets)) {
    return `its buckets are ${JSON.stringify(a.buckets)} there, ${JSON.stringify(b.buckets)} here`;
  }
  if (a.mode !== b.mode) return `its gauge mode is "${a.mode}" there, "${b.mode}" here`;
  return undefined;
}

/** The key of a series in `Directory.series`. */
export function seriesKey(definition: Definition, labels: string): string {
  return `${definition.record}\n${labels}`;
}

/** What one thread has read of the log. */
export class Directory {
  readonly metrics: Map<string, Definition> = new Map();
  readonly series: Map<string, Entry> = new Map();
  readonly seriesOf: Map<Definition, Entry[]> = new Map();
  /** Thread index -> page index -> the page (a view of its numbers). */
  readonly pages: Map<number, Map<number, Float64Array>> = new Map();
  /** Thread index -> its heartbeat (a view of one number: Unix ms). */
  readonly threads: Map<number, Float64Array> = new Map();
  #byRecord = new Map<number, Definition | Entry>();
  #seen = 0;

  /**
   * Reads the records published since the last call, at most `limit` of them.
   *
   * @returns Whether every published record has been read.
   */
  scan(arena: Arena, limit = Infinity): boolean {
    const published = arena.records;
    const end = Math.min(published, this.#seen + limit);
    for (let n = this.#seen; n < end; n++) {
      const [chunk, at] = arena.record(n);
      const r = (i: number): number => chunk[at + i];
      switch (r(0)) {
        case KIND.metric: {
          const definition: Definition = { record: n, ...JSON.parse(arena.readText(r(1), r(2))) };
          this.metrics.set(definition.name, definition);
          this.seriesOf.set(definition, []);
          this.#byRecord.set(n, definition);
          break;
        }
        case KIND.series: {
          const definition = this.#byRecord.get(r(1)) as Definition;
          const entry: Entry = {
            record: n,
            definition,
            labels: arena.readText(r(2), r(3)),
            position: r(4),
            width: r(5),
            // Views of fixed length: engines index them as fast as plain arrays, unlike views that
            // follow a growable buffer's length.
            epoch: r(6) < 0 ? undefined : new Int32Array(arena.buffer, r(6), 1),
            index: r(4) % PAGE_VALUES,
            removed: false,
          };
          this.series.set(seriesKey(definition, entry.labels), entry);
          this.seriesOf.get(definition)!.push(entry);
          this.#byRecord.set(n, entry);
          break;
        }
        case KIND.page: {
          let pages = this.pages.get(r(1));
          if (pages === undefined) this.pages.set(r(1), pages = new Map());
          pages.set(r(2), new Float64Array(arena.buffer, r(3), PAGE_VALUES));
          break;
        }
        case KIND.thread:
          this.threads.set(r(1), new Float64Array(arena.buffer, r(2), 1));
          break;
        case KIND.remove:
          (this.#byRecord.get(r(1)) as Entry).removed = true;
          break;
        case KIND.revive:
          (this.#byRecord.get(r(1)) as Entry).removed = false;
          break;
      }
    }
    this.#seen = end;
    return end === published;
  }

  /** The series published as record `record`. */
  entry(record: number): Entry {
    return this.#byRecord.get(record) as Entry;
  }

  /** The page of a thread that holds a series (at `entry.index`), or undefined. */
  page(thread: number, entry: Entry): Float64Array | undefined {
    return this.pages.get(thread)?.get(Math.floor(entry.position / PAGE_VALUES));
  }
}

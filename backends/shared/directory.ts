// A thread's view of the arena's log: the metrics, series, pages, threads and exemplar chunks
// every thread has registered, read in order and without a lock, from where the last read
// stopped; and of the exemplar slots the threads claimed in their chunks.

import type { CollectTarget, GaugeMode } from "../../core/backend.ts";
import { formatBound } from "../../core/_format.ts";
import type { MetricType } from "../../core/types.ts";
import { type Arena, KIND, PAGE_VALUES } from "./arena.ts";
import { ExemplarChunk, type ExemplarSlot } from "./exemplars.ts";

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
  /** Whether the series are the process's own, shown from one thread (runtime metrics). */
  readonly perInstance: boolean;
  /**
   * Whether a removed series of the metric is never written again (a summary's past slices), so
   * that its record and values may be given to a new series of the metric.
   */
  readonly windowed?: boolean;
}

/** One thread's page of values: value `i` is `f64[i] + ints[i]`. */
export interface Page {
  readonly f64: Float64Array;
  readonly ints: Int32Array;
}

/** A thread that joined the arena. */
export interface Thread {
  /** Unix ms, written every second while the thread lives. */
  readonly heartbeat: Float64Array;
  /**
   * Odd while the thread moves an Int32 part into its Float64 part (a carry, when the Int32 part
   * would overflow): a reader that sees it change reads again.
   */
  readonly carry: Int32Array;
}

/** A series as the arena knows it. */
export interface Entry {
  readonly record: number;
  readonly definition: Definition;
  /** The canonical labels text. */
  labels: string;
  /** How many times its record was given to a new series, when this thread last read it. */
  generation: number;
  /** Its key in `Directory.seriesOf`: its labels, or, when another series has them too, more. */
  key: string;
  /** Its first value position; the series holds `width` positions from there, in one page. */
  readonly position: number;
  readonly width: number;
  /** A shared gauge's epoch word (an Int32 view of it); undefined for anything else. */
  readonly epoch: Int32Array | undefined;
  /** Where the series starts in a page. */
  readonly index: number;
  removed: boolean;
  /** The labels, parsed for the label names `parsedFor` at the last collection. */
  parsed: Readonly<Record<string, string>> | undefined;
  parsedFor: readonly string[] | undefined;
}

/** The exemplar slots of a series that has some. */
export interface SeriesSlots {
  /** This thread's slots, by value index, as it claimed them. */
  readonly own: (ExemplarSlot | undefined)[];
  /** Every thread's slots, by value index, as far as `scanExemplars` read them. */
  readonly all: (ExemplarSlot[] | undefined)[];
}

/** The definition a metric brings, as the arena stores it. */
export function definitionOf(target: CollectTarget): Omit<Definition, "record"> {
  return {
    name: target.name,
    type: target.type,
    labelNames: [...target.labelNames].sort(),
    buckets: target.type === "histogram" ? target.buckets?.map(formatBound) : undefined,
    mode: target.type === "gauge" ? target.gaugeMode ?? "shared" : undefined,
    perInstance: target.perInstance === true,
    ...(target.windowed === true ? { windowed: true } : {}),
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
  if ((a.windowed === true) !== (b.windowed === true)) {
    return `its series are ${a.windowed ? "" : "not "}windowed there, ${b.windowed ? "" : "not "}here`;
  }
  if (a.perInstance !== b.perInstance) {
    return `it is ${a.perInstance ? "" : "not "}per instance there, ${b.perInstance ? "" : "not "}here`;
  }
  return undefined;
}

// Files a series under its labels. Another series may hold those labels already (registered by a
// thread that had not seen a rename to them): both are kept, and both collected.
function file(series: Map<string, Entry>, entry: Entry): void {
  entry.key = series.has(entry.labels) ? `${entry.labels}\u0000${entry.record}` : entry.labels;
  series.set(entry.key, entry);
}

/** What one thread has read of the log. */
export class Directory {
  readonly metrics: Map<string, Definition> = new Map();
  /** A metric's series by their labels text, in the order they were registered. */
  readonly seriesOf: Map<Definition, Map<string, Entry>> = new Map();
  /** Thread index -> page index -> the page. */
  readonly pages: Map<number, Map<number, Page>> = new Map();
  /** Thread index -> the thread. */
  readonly threads: Map<number, Thread> = new Map();
  /** Every thread's exemplar chunks. */
  readonly chunks: ExemplarChunk[] = [];
  /** The exemplar slots of the series that have some; empty while no thread records exemplars. */
  readonly slots: Map<Entry, SeriesSlots> = new Map();
  #byRecord: (Definition | Entry | undefined)[] = [];
  #seen = 0;
  #renames = 0;
  #free = new Map<Definition, Set<Entry>>();

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
      let item: Definition | Entry | undefined;
      switch (r(0)) {
        case KIND.metric: {
          const definition: Definition = { record: n, ...JSON.parse(arena.readText(r(1), r(2))) };
          this.metrics.set(definition.name, definition);
          this.seriesOf.set(definition, new Map());
          item = definition;
          break;
        }
        case KIND.series: {
          const definition = this.#byRecord[r(1)] as Definition;
          // The generation first: a rename after it is seen by the next refreshRenames().
          const generation = arena.generation(n);
          const entry: Entry = {
            record: n,
            definition,
            generation,
            key: "",
            labels: arena.readText(r(2), r(3)),
            position: r(4),
            width: r(5),
            epoch: r(6) < 0 ? undefined : arena.i32(r(6), 1),
            index: r(4) % PAGE_VALUES,
            removed: false,
            parsed: undefined,
            parsedFor: undefined,
          };
          file(this.seriesOf.get(definition)!, entry);
          if ((generation & 1) === 1) this.#freed(entry);
          item = entry;
          break;
        }
        case KIND.page: {
          let pages = this.pages.get(r(1));
          if (pages === undefined) this.pages.set(r(1), pages = new Map());
          pages.set(r(2), {
            f64: arena.f64(r(3), PAGE_VALUES),
            ints: arena.i32(r(3) + PAGE_VALUES * 8, PAGE_VALUES),
          });
          break;
        }
        case KIND.thread:
          this.threads.set(r(1), {
            heartbeat: arena.f64(r(2), 1),
            carry: arena.i32(r(2) + 8, 1),
          });
          break;
        case KIND.remove:
          (this.#byRecord[r(1)] as Entry).removed = true;
          break;
        case KIND.revive:
          (this.#byRecord[r(1)] as Entry).removed = false;
          break;
        case KIND.exemplars:
          this.chunks.push(new ExemplarChunk(arena, r(1), r(2), r(3)));
          break;
      }
      this.#byRecord.push(item);
    }
    this.#seen = end;
    return end === published;
  }

  /**
   * Indexes the exemplar slots claimed since the last call, in the chunks the log announced so
   * far, under their series (`slots`). A slot of a series this view has not read yet waits for
   * the next call.
   */
  scanExemplars(): void {
    for (const chunk of this.chunks) {
      const claimed = chunk.claimed;
      while (chunk.seen < claimed) {
        const slot = chunk.slot(chunk.seen);
        const record = slot.record;
        if (record >= this.#byRecord.length) break;
        (this.slotsOf(this.#byRecord[record] as Entry).all[slot.index] ??= []).push(slot);
        chunk.seen++;
      }
    }
  }

  /** The exemplar slots of a series, made empty if it has none yet. */
  slotsOf(entry: Entry): SeriesSlots {
    let slots = this.slots.get(entry);
    if (slots === undefined) this.slots.set(entry, slots = { own: [], all: [] });
    return slots;
  }

  /**
   * Reads again the series of windowed metrics whose records were freed or given to new series
   * since the last call.
   */
  refreshRenames(arena: Arena): void {
    const renames = arena.renames;
    if (renames === this.#renames) return;
    this.#renames = renames;
    for (const [definition, series] of this.seriesOf) {
      if (definition.windowed !== true) continue;
      for (const entry of [...series.values()]) {
        const generation = arena.generation(entry.record);
        if (generation === entry.generation) continue;
        if ((generation & 1) === 1) {
          entry.generation = generation;
          this.#freed(entry);
          continue;
        }
        const [chunk, at] = arena.record(entry.record);
        this.rekey(entry, arena.readText(chunk[at + 2], chunk[at + 3]), generation);
      }
    }
  }

  /** The free series of a windowed metric, as far as this thread has seen. */
  free(definition: Definition): Set<Entry> {
    let free = this.#free.get(definition);
    if (free === undefined) this.#free.set(definition, free = new Set());
    return free;
  }

  #freed(entry: Entry): void {
    entry.removed = true;
    this.free(entry.definition).add(entry);
  }

  /** Files a series under new labels, given its record's generation. */
  rekey(entry: Entry, labels: string, generation: number): void {
    const series = this.seriesOf.get(entry.definition)!;
    if (series.get(entry.key) === entry) series.delete(entry.key);
    this.#free.get(entry.definition)?.delete(entry);
    entry.labels = labels;
    entry.generation = generation;
    entry.removed = false;
    entry.parsed = undefined;
    entry.parsedFor = undefined;
    file(series, entry);
  }

  /** The series published as record `record`. */
  entry(record: number): Entry {
    return this.#byRecord[record] as Entry;
  }

  /** The series of a metric with these labels, or undefined. */
  find(name: string, labels: string): Entry | undefined {
    const definition = this.metrics.get(name);
    return definition && this.seriesOf.get(definition)!.get(labels);
  }

  /** The page of a thread that holds a series (at `entry.index`), or undefined. */
  page(thread: number, entry: Entry): Page | undefined {
    return this.pages.get(thread)?.get(Math.floor(entry.position / PAGE_VALUES));
  }
}

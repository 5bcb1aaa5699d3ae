// One thread's side of a shared arena: its thread index and heartbeat, its view of the log, the
// series it writes, their registration (batched, under the mutex), collection and removal.

import {
  type CollectTarget,
  INSTANCE_LABEL,
  type MetricInfo,
  type SeriesValues,
} from "../../core/backend.ts";
import { labelsText, parseLabels } from "../../core/_labeltext.ts";
import { unrefTimer } from "../../core/_runtime.ts";
import { Slicer, yieldToEventLoop } from "../../core/_slice.ts";
import type { Labels, MetricFamily } from "../../core/types.ts";
import { type Arena, KIND, PAGE_VALUES } from "./arena.ts";
import { definitionOf, difference, Directory, type Entry, seriesKey } from "./directory.ts";
import { lock, unlock } from "./mutex.ts";
import { InstanceGauge, type SeriesStore, SharedGauge, type SharedSeries, SharedSums } from "./values.ts";

type Series = MetricFamily["series"][number];

/** How often a thread writes its heartbeat. */
const HEARTBEAT_MS = 1000;
/** Records read in one go where the event loop must not wait long. */
const SCAN_SLICE = 256;
/** Series registered under the mutex at once. */
const BATCH = 64;

/** One thread's view of an arena, and the series it writes there. */
export class SharedStore implements SeriesStore {
  readonly arena: Arena;
  /** This thread's index in the arena. */
  readonly thread: number;
  readonly dir: Directory = new Directory();
  #liveMs: number;
  #queue: SharedSeries[] = [];
  #definitions: CollectTarget[] = [];
  #removals: { target: CollectTarget; labels: string }[] = [];
  #task: Promise<void> | undefined;
  #error: unknown;
  #labels = new Map<string, Labels>();

  private constructor(arena: Arena, thread: number, liveMs: number) {
    this.arena = arena;
    this.thread = thread;
    this.#liveMs = liveMs;
  }

  /** Joins an arena as a new thread: its index, its heartbeat, and its record in the log. */
  static async join(arena: Arena, liveMs: number): Promise<SharedStore> {
    const store = new SharedStore(arena, arena.joinThread(), liveMs);
    await store.#locked(() => {
      const block = arena.allocate(8);
      new Float64Array(arena.buffer, block, 1)[0] = Date.now();
      arena.append([[KIND.thread, store.thread, block]]);
    });
    store.dir.scan(arena);
    const heartbeat = store.dir.threads.get(store.thread)!;
    const timer = setInterval(() => (heartbeat[0] = Date.now()), HEARTBEAT_MS);
    unrefTimer(timer);
    return store;
  }

  /** Creates the values of one series, attached at once when the arena knows it already. */
  values(metric: MetricInfo, names: readonly string[] | undefined): SeriesValues {
    if (metric.type !== "gauge") return new SharedSums(this, metric, names?.length ?? 1);
    const mode = metric.gaugeMode;
    return mode === undefined || mode === "shared"
      ? new SharedGauge(this, metric)
      : new InstanceGauge(this, metric);
  }

  /**
   * Checks a new metric against the arena's definition of its name, and queues its own.
   *
   * @throws {TypeError} When another thread defined the name another way.
   */
  define(target: CollectTarget): void {
    this.dir.scan(this.arena);
    const mine = definitionOf(target);
    const known = this.dir.metrics.get(target.name);
    if (known !== undefined) {
      const why = difference(known, mine);
      if (why !== undefined) throw conflict(target.name, why);
      return;
    }
    this.#definitions.push(target);
    this.#schedule();
  }

  register(series: SharedSeries): void {
    // A few records only: a thread that is behind catches up asynchronously, in #register, and
    // a burst of new children must not read the same burst of records once per child.
    this.dir.scan(this.arena, 16);
    const definition = this.dir.metrics.get(series.definition.name);
    const entry = definition && this.dir.series.get(seriesKey(definition, series.labels));
    if (entry !== undefined && !entry.removed && this.#attach(series, entry)) return;
    this.#queue.push(series);
    this.#schedule();
  }

  /** Queues the removal of a series from every thread's pages. */
  remove(target: CollectTarget, labels: Labels): void {
    this.#removals.push({ target, labels: labelsText(labels) });
    this.#schedule();
  }

  /** Waits for what is queued; rejects when a registration failed (a definition conflict). */
  async flush(): Promise<void> {
    await this.settle();
    if (this.#error !== undefined) throw this.#error;
  }

  /** Waits for what is queued. */
  async settle(): Promise<void> {
    while (this.#task !== undefined) await this.#task;
  }

  read(series: SharedSeries, index: number): number {
    this.dir.scan(this.arena);
    const entry = series.entry!;
    return this.#value(entry, index, Date.now(), this.#pages(entry));
  }

  /** Every series of these metrics, every thread's part added up. */
  async collect(targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    await this.flush();
    while (!this.dir.scan(this.arena, SCAN_SLICE)) await yieldToEventLoop();
    // Each series reads every thread's page: check the clock often.
    const slicer = new Slicer(32);
    const now = Date.now();
    const families: MetricFamily[] = [];
    for (const target of targets) {
      const series: Series[] = [];
      const definition = this.dir.metrics.get(target.name);
      for (const entry of (definition && this.dir.seriesOf.get(definition)) ?? []) {
        if (slicer.due()) await slicer.pause();
        const labels = this.#labelsOf(entry.labels, target.labelNames);
        if (labels !== undefined) this.#shape(target, entry, labels, now, series);
      }
      const family = { name: target.exposedName, help: target.help, type: target.type, series };
      families.push(
        (target.type === "histogram" ? { ...family, buckets: target.buckets } : family) as MetricFamily,
      );
    }
    return families;
  }

  // --- reading ---

  // The threads that hold a page with the series, and those pages.
  #pages(entry: Entry): [thread: number, page: Float64Array][] {
    const pages: [number, Float64Array][] = [];
    for (const thread of this.dir.pages.keys()) {
      const page = this.dir.page(thread, entry);
      if (page !== undefined) pages.push([thread, page]);
    }
    return pages;
  }

  #value(entry: Entry, index: number, now: number, pages: [number, Float64Array][]): number {
    const at = entry.index;
    if (entry.epoch !== undefined) {
      // A shared gauge: the last set() plus what was added since, by any thread.
      const epoch = Atomics.load(entry.epoch, 0);
      let base = 0;
      let added = 0;
      for (const [, page] of pages) {
        if (page[at + 3] === epoch) base = page[at + 2];
        if (page[at + 1] === epoch) added += page[at];
      }
      return base + added;
    }
    if (entry.definition.type === "gauge") {
      return this.#instances(entry, pages, now).reduce((sum, [, value]) => sum + value, 0);
    }
    let sum = 0;
    for (const [, page] of pages) sum += page[at + index];
    return sum;
  }

  // A per-instance gauge's [thread, value, stamp] for every thread that holds the series.
  #instances(
    entry: Entry,
    pages: [number, Float64Array][],
    now: number,
  ): [thread: number, value: number, stamp: number][] {
    const at = entry.index;
    const live = entry.definition.mode?.startsWith("live") ?? false;
    const out: [number, number, number][] = [];
    for (const [thread, page] of pages) {
      if (page[at + 1] === 0) continue;
      if (live && thread !== this.thread && !(now - this.dir.threads.get(thread)![0] < this.#liveMs)) {
        continue;
      }
      out.push([thread, page[at], page[at + 1]]);
    }
    return out;
  }

  #shape(target: CollectTarget, entry: Entry, labels: Labels, now: number, out: Series[]): void {
    const pages = this.#pages(entry);
    // A series removed is shown again once some thread wrote to it after the removal.
    if (entry.removed && !pages.some(([, page]) => written(page, entry.index, entry.width))) return;
    if (target.type === "histogram") {
      let count = 0;
      const last = entry.width - 1;
      const buckets = new Array<number>(last);
      for (let i = 0; i < last; i++) buckets[i] = count += this.#value(entry, i, now, pages);
      out.push({ labels, buckets, sum: this.#value(entry, last, now, pages), count });
    } else if (target.type === "summary") {
      out.push({ labels, count: this.#value(entry, 0, now, pages), sum: this.#value(entry, 1, now, pages) });
    } else if (target.type === "gauge" && entry.epoch === undefined) {
      const instances = this.#instances(entry, pages, now);
      const kind = entry.definition.mode!.replace(/^live/, "");
      if (kind === "all") {
        for (const [thread, value] of instances) {
          out.push({ labels: { ...labels, [INSTANCE_LABEL]: String(thread) }, value });
        }
      } else if (instances.length > 0) {
        out.push({ labels, value: aggregate(kind, instances) });
      }
    } else {
      out.push({ labels, value: this.#value(entry, 0, now, pages) });
    }
  }

  #labelsOf(text: string, names: readonly string[]): Labels | undefined {
    const key = `${names.join(",")}|${text}`;
    let labels = this.#labels.get(key);
    if (labels === undefined) {
      labels = parseLabels(text, names);
      if (labels !== undefined) this.#labels.set(key, labels);
    }
    return labels;
  }

  // --- registration ---

  #schedule(): void {
    this.#task ??= Promise.resolve().then(() => this.#register()).finally(() => (this.#task = undefined));
  }

  // Registers what is queued, in one critical section: definitions, then series and the pages
  // this thread needs, then removals; then attaches the series and replays their changes.
  async #register(): Promise<void> {
    try {
      // In batches, each under the mutex for a moment only, the event loop free in between.
      do {
        // Catch up with what other threads registered in slices, before the mutex: under it,
        // only what they added meanwhile is left to read.
        while (!this.dir.scan(this.arena, SCAN_SLICE)) await yieldToEventLoop();
        await this.#locked(() => this.#registerBatch());
      } while (this.#queue.length > 0);
    } catch (error) {
      this.#error ??= error;
    }
  }

  #registerBatch(): void {
    const arena = this.arena;
    const dir = this.dir;
    dir.scan(arena);
    const definitions = this.#definitions;
    this.#definitions = [];
    const records: number[][] = [];
    const defining = new Map<string, ReturnType<typeof definitionOf>>();
    for (const target of definitions) {
      const mine = definitionOf(target);
      const known = dir.metrics.get(target.name) ?? defining.get(target.name);
      if (known !== undefined) {
        const why = difference(known, mine);
        if (why !== undefined) this.#error ??= conflict(target.name, why);
        continue;
      }
      const [at, length] = arena.writeText(JSON.stringify(mine));
      records.push([KIND.metric, at, length]);
      defining.set(target.name, mine);
    }
    if (records.length > 0) arena.append(records.splice(0));
    dir.scan(arena);
    const queue = this.#queue.splice(0, BATCH);
    const attach: [SharedSeries, Entry | number][] = [];
    const created = new Map<string, number>();
    const adding = new Set<number>();
    for (const series of queue) {
      const definition = dir.metrics.get(series.definition.name);
      if (definition === undefined) continue; // its definition conflicted: it stays here
      const key = seriesKey(definition, series.labels);
      const entry = dir.series.get(key);
      if (entry !== undefined) {
        if (entry.removed) records.push([KIND.revive, entry.record]);
        this.#needPage(entry.position, records, adding);
        attach.push([series, entry]);
        continue;
      }
      let index = created.get(key);
      if (index === undefined) {
        const position = arena.positions(series.width);
        const epoch = definition.type === "gauge" && definition.mode === "shared" ? arena.allocate(8) : -1;
        const [at, length] = arena.writeText(series.labels);
        index = records.push([KIND.series, definition.record, at, length, position, series.width, epoch]) - 1;
        created.set(key, index);
        this.#needPage(position, records, adding);
      }
      attach.push([series, index]);
    }
    for (const { target, labels } of this.#removals.splice(0)) {
      const definition = dir.metrics.get(target.name);
      const entry = definition && dir.series.get(seriesKey(definition, labels));
      if (entry === undefined) continue;
      for (const thread of dir.pages.keys()) {
        dir.page(thread, entry)?.fill(0, entry.index, entry.index + entry.width);
      }
      records.push([KIND.remove, entry.record]);
    }
    const first = arena.append(records);
    dir.scan(arena);
    for (const [series, at] of attach) {
      const entry = typeof at === "number" ? dir.entry(first + at) : at;
      this.#attach(series, entry);
    }
  }

  // Adds a page record for this thread when it has no page for the position yet.
  #needPage(position: number, records: number[][], adding: Set<number>): void {
    const page = Math.floor(position / PAGE_VALUES);
    if (this.dir.pages.get(this.thread)?.has(page) || adding.has(page)) return;
    adding.add(page);
    records.push([KIND.page, this.thread, page, this.arena.allocate(PAGE_VALUES * 8)]);
  }

  // Attaches a series to this thread's page; false when the page is not there yet.
  #attach(series: SharedSeries, entry: Entry): boolean {
    const page = this.dir.page(this.thread, entry);
    if (page === undefined) return false;
    series.attach(entry, page);
    return true;
  }

  async #locked<T>(fn: () => T): Promise<T> {
    await lock(this.arena.header, this.arena.headerF64, this.thread);
    try {
      return fn();
    } finally {
      unlock(this.arena.header, this.thread);
    }
  }
}

function written(page: Float64Array, at: number, width: number): boolean {
  for (let i = 0; i < width; i++) if (page[at + i] !== 0) return true;
  return false;
}

function conflict(name: string, why: string): TypeError {
  return new TypeError(
    `Cannot define metric "${name}": another thread sharing the memory defined it differently (${why})`,
  );
}

function aggregate(kind: string, instances: [thread: number, value: number, stamp: number][]): number {
  if (kind === "latest") {
    let best = instances[0];
    for (const instance of instances) if (instance[2] >= best[2]) best = instance;
    return best[1];
  }
  const values = instances.map(([, value]) => value);
  if (kind === "max") return Math.max(...values);
  if (kind === "min") return Math.min(...values);
  return values.reduce((a, b) => a + b, 0);
}

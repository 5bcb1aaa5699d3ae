// One thread's side of a shared arena: its thread index and heartbeat, its view of the log, the
// series it writes, their registration (batched, under the mutex), its exemplar slots,
// collection and removal.

import {
  type CollectTarget,
  INSTANCE_LABEL,
  type MetricInfo,
  type SeriesValues,
} from "../../core/backend.ts";
import { labelsText, parseLabels } from "../../core/_labeltext.ts";
import { unrefTimer } from "../../core/_runtime.ts";
import { SLICE_MS, yieldToEventLoop } from "../../core/_slice.ts";
import type { Exemplar, Labels, MetricFamily } from "../../core/types.ts";
import { type Arena, KIND, PAGE_BYTES, PAGE_VALUES, THREAD_BYTES } from "./arena.ts";
import {
  type Definition,
  definitionOf,
  difference,
  Directory,
  type Entry,
  type Page,
  type SeriesSlots,
} from "./directory.ts";
import {
  chunkBytes,
  ExemplarChunk,
  type ExemplarSlot,
  FIRST_CHUNK_SLOTS,
  MAX_CHUNK_SLOTS,
} from "./exemplars.ts";
import { withLock } from "./mutex.ts";
import { InstanceGauge, type SeriesStore, SharedGauge, type SharedSeries, SharedSums } from "./values.ts";

type Series = MetricFamily["series"][number];

/** A thread's page that holds a series, with the thread's index and carry sequence. */
interface Held {
  readonly thread: number;
  readonly page: Page;
  readonly carry: Int32Array;
}

/** How often a thread writes its heartbeat. */
const HEARTBEAT_MS = 1000;
/** Records read in one go where the event loop must not wait long. */
const SCAN_SLICE = 256;
/** Series registered under the mutex at once. */
const BATCH = 64;
/** Series read at once in a collection, checking the threads' carry sequences once. */
const CHUNK = 32;
/** Reads of a chunk while a thread carries, before taking what is there (see `#consistent`). */
const CARRY_RETRIES = 1000;

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
  // The metric name and labels text of each queued removal.
  #removing = new Set<string>();
  #task: Promise<void> | undefined;
  #error: unknown;
  #reported = false;
  // This thread's exemplar chunk that slots are claimed from, how many are claimed, the next
  // chunk (allocated once the current one is half claimed), and the size of the one after.
  #chunk: ExemplarChunk | undefined;
  #claimed = 0;
  #spare: ExemplarChunk | undefined;
  #chunkSlots = FIRST_CHUNK_SLOTS;
  #wantChunk = false;
  // Exemplars kept for a series until it is registered, or until there is a slot for them.
  #waiting = new Map<SharedSeries, (Exemplar | undefined)[]>();

  private constructor(arena: Arena, thread: number, liveMs: number) {
    this.arena = arena;
    this.thread = thread;
    this.#liveMs = liveMs;
  }

  /** Joins an arena as a new thread: its index, its heartbeat, and its record in the log. */
  static async join(arena: Arena, liveMs: number): Promise<SharedStore> {
    const store = new SharedStore(arena, arena.joinThread(), liveMs);
    await store.#locked(() => {
      const block = arena.allocate(THREAD_BYTES);
      arena.f64(block, 1)[0] = Date.now();
      arena.append([[KIND.thread, store.thread, block]]);
    });
    store.dir.scan(arena);
    const { heartbeat } = store.dir.threads.get(store.thread)!;
    const timer = setInterval(() => (heartbeat[0] = Date.now()), HEARTBEAT_MS);
    unrefTimer(timer);
    return store;
  }

  /** Creates the values of one series, attached at once when the arena knows it already. */
  values(metric: MetricInfo, names: readonly string[] | undefined): SeriesValues {
    if (metric.type !== "gauge") return new SharedSums(this, metric, names?.length ?? 1);
    const mode = metric.gaugeMode;
    return (mode === undefined || mode === "shared") && metric.perInstance !== true
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
    const entry = this.dir.find(series.name, series.labels);
    // A series whose removal is still queued is registered after it, so the removal does not
    // zero what the new series writes.
    if (
      entry !== undefined && !entry.removed && !this.#removing.has(`${series.name}\n${series.labels}`) &&
      this.#attach(series, entry)
    ) return;
    this.#queue.push(series);
    this.#schedule();
  }

  // A free series of a windowed metric, given to `series` instead of a new record: mutex held.
  // Undefined when there is none that no thread wrote since it was freed.
  #reuse(definition: Definition, series: SharedSeries): Entry | undefined {
    const free = this.dir.free(definition);
    const arena = this.arena;
    // One whose labels text has room for the new one, among the first few, or else any.
    const bytes = encoder.encode(series.labels).length;
    let fallback: Entry | undefined;
    let looked = 0;
    for (const entry of free) {
      // Taken by another thread since, or of another width: not this one.
      const generation = arena.generation(entry.record);
      if ((generation & 1) === 0 || generation !== entry.generation || entry.width !== series.width) {
        free.delete(entry);
        continue;
      }
      const [chunk, at] = arena.record(entry.record);
      if (Math.ceil(chunk[at + 3] / 8) * 8 >= bytes) {
        const taken = this.#take(entry, series.labels);
        if (taken !== undefined) return taken;
      } else fallback ??= entry;
      if (++looked >= 64) break;
    }
    return fallback === undefined ? undefined : this.#take(fallback, series.labels);
  }

  // Gives a free series to new labels, unless a thread wrote it since it was freed. Mutex held.
  #take(entry: Entry, labels: string): Entry | undefined {
    const arena = this.arena;
    const dir = this.dir;
    dir.free(entry.definition).delete(entry);
    // Written since it was freed: some thread still writes it.
    for (const thread of dir.pages.keys()) {
      const page = dir.page(thread, entry);
      if (page !== undefined && written(page, entry.index, entry.width)) return undefined;
    }
    const [chunk, at] = arena.record(entry.record);
    const [offset, length] = arena.rewriteText(chunk[at + 2], chunk[at + 3], labels);
    arena.rename(entry.record, offset, length);
    dir.rekey(entry, labels, entry.generation + 1);
    return entry;
  }

  /** Queues the removal of a series from every thread's pages. */
  remove(target: CollectTarget, labels: Labels): void {
    const text = labelsText(labels);
    this.#removals.push({ target, labels: text });
    this.#removing.add(`${target.name}\n${text}`);
    this.#schedule();
  }

  /** Waits for what is queued; rejects when a registration failed (a definition conflict). */
  async flush(): Promise<void> {
    await this.settle();
    if (this.#error !== undefined) throw this.#error;
  }

  /** The error of a failed registration, the first time it is asked for; then undefined. */
  unreported(): unknown {
    if (this.#reported) return undefined;
    this.#reported = this.#error !== undefined;
    return this.#error;
  }

  /** Waits for what is queued. */
  async settle(): Promise<void> {
    while (this.#task !== undefined) await this.#task;
  }

  exemplar(series: SharedSeries, index: number, exemplar: Exemplar): void {
    const entry = series.entry;
    if (entry !== undefined) {
      const slot = this.dir.slots.get(entry)?.own[index] ?? this.#claim(entry, index, false);
      if (slot !== undefined) return slot.write(exemplar);
      this.#schedule();
    }
    let waiting = this.#waiting.get(series);
    if (waiting === undefined) this.#waiting.set(series, waiting = []);
    waiting[index] = exemplar;
  }

  readExemplars(series: SharedSeries): (Exemplar | undefined)[] | undefined {
    this.dir.scan(this.arena);
    this.dir.scanExemplars();
    const entry = series.entry!;
    const slots = this.dir.slots.get(entry);
    if (slots === undefined) return undefined;
    let held = this.#held(entry, new Map());
    if (entry.definition.perInstance) held = this.#oneThread(entry, held, Date.now());
    return newest(entry, slots, held);
  }

  read(series: SharedSeries, index: number): number {
    this.dir.scan(this.arena);
    const entry = series.entry!;
    const now = Date.now();
    return this.#consistent(() => this.#value(entry, index, now, this.#held(entry, new Map())));
  }

  /** Every series of these metrics, every thread's part added up. */
  async collect(targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    await this.flush();
    while (!this.dir.scan(this.arena, SCAN_SLICE)) await yieldToEventLoop();
    this.dir.refreshRenames(this.arena);
    this.dir.scanExemplars();
    // A chunk of series reads every thread's page: check the clock after every chunk.
    let sliceStarted = performance.now();
    const now = Date.now();
    const pages = new Map<number, Held[]>();
    // Undefined while no thread records exemplars: then no series looks for its slots.
    const slots = this.dir.slots.size === 0 ? undefined : this.dir.slots;
    const families: MetricFamily[] = [];
    for (const target of targets) {
      const series: Series[] = [];
      const definition = this.dir.metrics.get(target.name);
      const entries = definition === undefined ? [] : [...this.dir.seriesOf.get(definition)!.values()];
      for (let from = 0; from < entries.length; from += CHUNK) {
        if (performance.now() - sliceStarted >= SLICE_MS) {
          await yieldToEventLoop();
          sliceStarted = performance.now();
        }
        const chunk = entries.slice(from, from + CHUNK);
        for (const entry of chunk) {
          if (entry.parsedFor === target.labelNames) continue;
          entry.parsed = parseLabels(entry.labels, target.labelNames);
          entry.parsedFor = target.labelNames;
        }
        series.push(...this.#consistent(() => {
          const out: Series[] = [];
          for (const entry of chunk) {
            if (entry.parsed === undefined) continue;
            this.#shape(target, entry, entry.parsed, now, this.#held(entry, pages), slots?.get(entry), out);
          }
          return out;
        }));
      }
      const family = { name: target.exposedName, help: target.help, type: target.type, series };
      families.push(
        (target.type === "histogram" ? { ...family, buckets: target.buckets } : family) as MetricFamily,
      );
    }
    return families;
  }

  // --- reading ---

  // The threads that hold the page of a series, and those pages; `known` keeps them by page.
  #held(entry: Entry, known: Map<number, Held[]>): Held[] {
    const index = pageOf(entry.position);
    let held = known.get(index);
    if (held === undefined) {
      held = [];
      for (const [thread, { carry }] of this.dir.threads) {
        const page = this.dir.pages.get(thread)?.get(index);
        if (page !== undefined) held.push({ thread, page, carry });
      }
      known.set(index, held);
    }
    return held;
  }

  // Runs `read` until no thread carried meanwhile (see values.ts): every thread's carry sequence
  // even and unchanged. A thread cannot stop halfway through a carry (termination waits for a
  // function call or a loop), so the retries run out only if one did.
  #consistent<T>(read: () => T): T {
    const threads = [...this.dir.threads.values()];
    const before = new Array<number>(threads.length);
    for (let attempt = 0;; attempt++) {
      let settled = true;
      for (let i = 0; i < threads.length; i++) {
        before[i] = Atomics.load(threads[i].carry, 0);
        if (before[i] & 1) settled = false;
      }
      const result = read();
      // A read-modify-write, not a load: on every CPU it orders the plain reads above before it.
      for (let i = 0; i < threads.length; i++) {
        if (Atomics.add(threads[i].carry, 0, 0) !== before[i]) settled = false;
      }
      if (settled || attempt === CARRY_RETRIES) return result;
    }
  }

  #value(entry: Entry, index: number, now: number, held: Held[]): number {
    const at = entry.index;
    if (entry.epoch !== undefined) {
      // A shared gauge: the last set() plus what was added since, by any thread.
      const epoch = Atomics.load(entry.epoch, 0);
      let base = 0;
      let added = 0;
      for (const { page: { f64, ints } } of held) {
        if (ints[at + 3] === epoch) base = f64[at + 2];
        if (ints[at + 1] === epoch) added += f64[at] + ints[at];
      }
      return base + added;
    }
    if (entry.definition.type === "gauge") {
      return this.#instances(entry, held, now).reduce((sum, [, value]) => sum + value, 0);
    }
    return sums(entry, held)[index];
  }

  // A per-instance gauge's [thread, value, stamp] for every thread that holds the series.
  #instances(
    entry: Entry,
    held: Held[],
    now: number,
  ): [thread: number, value: number, stamp: number][] {
    const at = entry.index;
    const live = entry.definition.mode?.startsWith("live") ?? false;
    const out: [number, number, number][] = [];
    for (const { thread, page: { f64 } } of held) {
      if (f64[at + 1] === 0) continue;
      if (
        live && thread !== this.thread && !(now - this.dir.threads.get(thread)!.heartbeat[0] < this.#liveMs)
      ) {
        continue;
      }
      out.push([thread, f64[at], f64[at + 1]]);
    }
    return out;
  }

  // The first live thread that wrote the series, in the order threads joined.
  #oneThread(entry: Entry, held: Held[], now: number): Held[] {
    for (const one of held) {
      const live = one.thread === this.thread ||
        now - this.dir.threads.get(one.thread)!.heartbeat[0] < this.#liveMs;
      if (live && written(one.page, entry.index, entry.width)) return [one];
    }
    return [];
  }

  #shape(
    target: CollectTarget,
    entry: Entry,
    labels: Labels,
    now: number,
    held: Held[],
    slots: SeriesSlots | undefined,
    out: Series[],
  ): void {
    // A series removed is shown again once some thread wrote to it after the removal.
    if (entry.removed && !held.some(({ page }) => written(page, entry.index, entry.width))) return;
    // The process's own values (runtime metrics): one thread's, however many threads write them.
    if (entry.definition.perInstance) held = this.#oneThread(entry, held, now);
    if (target.type === "histogram") {
      const values = sums(entry, held);
      let count = 0;
      const last = entry.width - 1;
      const buckets = new Array<number>(last);
      for (let i = 0; i < last; i++) buckets[i] = count += values[i];
      const exemplars = slots && newest(entry, slots, held);
      out.push(
        exemplars === undefined
          ? { labels, buckets, sum: values[last], count }
          : { labels, buckets, sum: values[last], count, exemplars },
      );
    } else if (target.type === "summary") {
      const [count, sum] = sums(entry, held);
      out.push({ labels, count, sum });
    } else if (target.type === "gauge" && entry.epoch === undefined) {
      const instances = this.#instances(entry, held, now);
      const kind = entry.definition.mode!.replace(/^live/, "");
      if (kind === "all") {
        for (const [thread, value] of instances) {
          out.push({ labels: { ...labels, [INSTANCE_LABEL]: String(thread) }, value });
        }
      } else if (instances.length > 0) {
        out.push({ labels, value: aggregate(kind, instances) });
      }
    } else {
      const value = this.#value(entry, 0, now, held);
      const exemplar = slots && target.type === "counter" ? newestOf(slots.all[0], entry, held) : undefined;
      out.push(exemplar === undefined ? { labels, value } : { labels, value, exemplar });
    }
  }

  // --- registration ---

  #schedule(): void {
    this.#task ??= Promise.resolve().then(() => this.#register()).finally(() => {
      this.#task = undefined;
      // Queued after the last batch looked, while the task was ending.
      if (this.#error === undefined && (this.#queue.length > 0 || this.#wantChunk)) this.#schedule();
    });
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
    dir.refreshRenames(arena);
    // Removals first: a series queued after its removal (created again) is registered after it.
    for (const { target, labels } of this.#removals.splice(0)) {
      const entry = dir.find(target.name, labels);
      if (entry === undefined) continue;
      for (const thread of dir.pages.keys()) {
        const page = dir.page(thread, entry);
        page?.f64.fill(0, entry.index, entry.index + entry.width);
        page?.ints.fill(0, entry.index, entry.index + entry.width);
      }
      // Its exemplars go too: every thread's slots of it, as far as claimed.
      dir.scanExemplars();
      for (const slots of dir.slots.get(entry)?.all ?? []) for (const slot of slots ?? []) slot.clear();
      if (entry.definition.windowed === true) {
        // Never written again: marked free in its record, for any thread to give to a new series
        // of the metric, so that a summary's slices, removed and made again and again, do not
        // grow the arena.
        if ((entry.generation & 1) === 0) {
          arena.free(entry.record);
          entry.generation++;
          entry.removed = true;
          dir.free(entry.definition).add(entry);
        }
      } else {
        records.push([KIND.remove, entry.record]);
      }
    }
    this.#removing.clear();
    if (records.length > 0) {
      arena.append(records.splice(0));
      dir.scan(arena);
    }
    const queue = this.#queue.splice(0, BATCH);
    const attach: [SharedSeries, Entry | number][] = [];
    const created = new Map<string, number>();
    const adding = new Set<number>();
    for (const series of queue) {
      if (series.isDisposed) continue; // removed before it was registered: nothing to show
      const definition = dir.metrics.get(series.name);
      if (definition === undefined) continue; // its definition conflicted: it stays here
      const entry = dir.seriesOf.get(definition)!.get(series.labels);
      if (entry !== undefined) {
        if (entry.removed && definition.windowed === true) {
          // Made again before anyone took it: the same record, live again.
          const [chunk, at] = arena.record(entry.record);
          arena.rename(entry.record, chunk[at + 2], chunk[at + 3]);
          dir.rekey(entry, entry.labels, entry.generation + 1);
        } else if (entry.removed) records.push([KIND.revive, entry.record]);
        this.#needPage(entry.position, records, adding);
        attach.push([series, entry]);
        continue;
      }
      const reused = definition.windowed === true ? this.#reuse(definition, series) : undefined;
      if (reused !== undefined) {
        this.#needPage(reused.position, records, adding);
        attach.push([series, reused]);
        continue;
      }
      const key = `${definition.record}\n${series.labels}`;
      let index = created.get(key);
      if (index === undefined) {
        const position = arena.positions(series.width);
        const epoch = definition.type === "gauge" && definition.mode === "shared" && !definition.perInstance
          ? arena.allocate(8)
          : -1;
        const [at, length] = arena.writeText(series.labels);
        index = records.push([KIND.series, definition.record, at, length, position, series.width, epoch]) - 1;
        created.set(key, index);
        this.#needPage(position, records, adding);
      }
      attach.push([series, index]);
    }
    const first = arena.append(records);
    dir.scan(arena);
    for (const [series, at] of attach) {
      const entry = typeof at === "number" ? dir.entry(first + at) : at;
      this.#attach(series, entry, true);
    }
    // Exemplars kept for want of a slot, and the next chunk, while the mutex is held.
    for (const series of this.#waiting.keys()) {
      if (series.isDisposed) this.#waiting.delete(series);
      else if (series.entry !== undefined) this.#replayExemplars(series, true);
    }
    if (this.#wantChunk) {
      this.#wantChunk = false;
      const chunk = this.#chunk;
      if (this.#spare === undefined && (chunk === undefined || this.#claimed * 2 >= chunk.slots)) {
        this.#spare = this.#newChunk();
      }
    }
  }

  // --- exemplars ---

  // This thread's slot for value `index` of a series: claimed from the current chunk when it has
  // none yet (no lock: the chunk is this thread's), or undefined when the chunk is full and a new
  // one must wait for the mutex (`locked`: it is held, allocate one now).
  #claim(entry: Entry, index: number, locked: boolean): ExemplarSlot | undefined {
    const slots = this.dir.slotsOf(entry);
    const own = slots.own[index];
    if (own !== undefined) return own;
    let chunk = this.#chunk;
    if (chunk === undefined || this.#claimed === chunk.slots) {
      chunk = this.#spare;
      this.#spare = undefined;
      if (chunk === undefined) {
        if (!locked) {
          this.#wantChunk = true;
          return undefined;
        }
        chunk = this.#newChunk();
      }
      this.#chunk = chunk;
      this.#claimed = 0;
    }
    const slot = chunk.claim(this.#claimed++, entry.record, index);
    slots.own[index] = slot;
    // Half claimed: the next chunk is allocated at the next registration, before it is needed.
    if (this.#spare === undefined && this.#claimed * 2 >= chunk.slots && !this.#wantChunk) {
      this.#wantChunk = true;
      this.#schedule();
    }
    return slot;
  }

  // Allocates a chunk of exemplar slots for this thread and announces it in the log. Mutex held.
  #newChunk(): ExemplarChunk {
    const slots = this.#chunkSlots;
    this.#chunkSlots = Math.min(slots * 2, MAX_CHUNK_SLOTS);
    const offset = this.arena.allocate(chunkBytes(slots));
    this.arena.append([[KIND.exemplars, this.thread, offset, slots]]);
    return new ExemplarChunk(this.arena, this.thread, offset, slots);
  }

  // Writes the exemplars kept for a series now attached, claiming its slots (`locked`: the mutex
  // is held, so chunks can be allocated). Those without a slot stay, until the next registration.
  #replayExemplars(series: SharedSeries, locked: boolean): void {
    const waiting = this.#waiting.get(series);
    if (waiting === undefined) return;
    const entry = series.entry!;
    let left = false;
    for (let i = 0; i < waiting.length; i++) {
      const exemplar = waiting[i];
      if (exemplar === undefined) continue;
      const slot = series.isDisposed ? undefined : this.#claim(entry, i, locked);
      if (slot !== undefined) {
        slot.write(exemplar);
        waiting[i] = undefined;
      } else if (!series.isDisposed) {
        left = true;
      }
    }
    if (!left) this.#waiting.delete(series);
    else if (!locked) this.#schedule();
  }

  // Adds a page record for this thread when it has no page for the position yet.
  #needPage(position: number, records: number[][], adding: Set<number>): void {
    const page = pageOf(position);
    if (this.dir.pages.get(this.thread)?.has(page) || adding.has(page)) return;
    adding.add(page);
    records.push([KIND.page, this.thread, page, this.arena.allocate(PAGE_BYTES)]);
  }

  // Attaches a series to this thread's page, then writes the exemplars kept for it (`locked`:
  // the mutex is held); false when the page is not there yet.
  #attach(series: SharedSeries, entry: Entry, locked = false): boolean {
    const page = this.dir.page(this.thread, entry);
    if (page === undefined) return false;
    series.attach(entry, page, this.dir.threads.get(this.thread)!.carry);
    if (this.#waiting.size > 0) this.#replayExemplars(series, locked);
    return true;
  }

  #locked<T>(fn: () => T): Promise<T> {
    return withLock(this.arena.header, this.arena.headerF64, this.thread, fn);
  }
}

// The newest exemplar of each value of a series (the largest timestamp), of the threads `held`
// for a per-instance metric, of every thread otherwise; undefined when there is none. Sparse, as
// the memory backend's.
function newest(entry: Entry, slots: SeriesSlots, held: Held[]): (Exemplar | undefined)[] | undefined {
  const all = slots.all;
  let out: (Exemplar | undefined)[] | undefined;
  for (let i = 0; i < all.length; i++) {
    const best = newestOf(all[i], entry, held);
    if (best !== undefined) (out ??= [])[i] = best;
  }
  return out;
}

// The newest exemplar of one value, among every thread's slots of it.
function newestOf(slots: ExemplarSlot[] | undefined, entry: Entry, held: Held[]): Exemplar | undefined {
  if (slots === undefined) return undefined;
  const perInstance = entry.definition.perInstance;
  let best: Exemplar | undefined;
  for (const slot of slots) {
    if (perInstance && !held.some(({ thread }) => thread === slot.thread)) continue;
    const exemplar = slot.read();
    if (exemplar !== undefined && (best === undefined || later(exemplar, best))) best = exemplar;
  }
  return best;
}

function later(a: Exemplar, b: Exemplar): boolean {
  return (a.timestamp ?? -Infinity) > (b.timestamp ?? -Infinity);
}

const encoder = new TextEncoder();

function written(page: Page, at: number, width: number): boolean {
  for (let i = 0; i < width; i++) if (page.f64[at + i] !== 0 || page.ints[at + i] !== 0) return true;
  return false;
}

// A series' sums, every thread's part added up (inside `#consistent`).
function sums(entry: Entry, held: Held[]): number[] {
  const at = entry.index;
  const width = entry.width;
  const out = new Array<number>(width).fill(0);
  for (const { page: { f64, ints } } of held) {
    for (let i = 0; i < width; i++) out[i] += f64[at + i] + ints[at + i];
  }
  return out;
}

function pageOf(position: number): number {
  return Math.floor(position / PAGE_VALUES);
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

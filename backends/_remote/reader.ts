// The read side of a remote store: every series of many metrics, including series only other
// processes created, in calls of bounded size (one round trip while they are few), assembled
// into families along one path for all types, and given as parts while the rest is read.

import {
  BackendUnavailableError,
  type CollectTarget,
  type FamilyPart,
  INSTANCE_LABEL,
} from "../../core/backend.ts";
import { errorMessage } from "../../core/_runtime.ts";
import { Slicer } from "../../core/_slice.ts";
import { valueNames } from "../../core/_values.ts";
import type { Exemplar, Labels, MetricFamily } from "../../core/types.ts";
import {
  exemplarOf,
  field,
  instancesKey,
  metricKey,
  parseExemplar,
  parseField,
  parseLabels,
  SHARDS,
} from "./layout.ts";
import type { RemoteOptions } from "./options.ts";
import { COLLECT_SCRIPT, READ_SCRIPT, SCAN_SCRIPT, type Script } from "./scripts.ts";
import type { Transport } from "./transport.ts";
import { perInstance } from "./values.ts";

/** The most fields one collection call reads (a few milliseconds of Redis' time). */
export const READ_BUDGET = 2_500;
/** The fields one HSCAN step asks for, through a metric's shard too large for one call. */
export const SCAN_COUNT = 1_500;

// One metric's hash in one shard, to read into the fields of its target.
interface Job {
  readonly key: string;
  readonly target: number;
  readonly shard: number;
}

// A hash to read, with the field count Redis last gave for it.
interface Sized {
  readonly job: Job;
  readonly size: number;
}

// Packs hashes into calls of at most `budget` fields (known sizes), each of one shard on a cluster.
function group(hashes: readonly Sized[], clustered: boolean, budget: number): Sized[][] {
  const calls: Sized[][] = [];
  let call: Sized[] = [];
  let fields = 0;
  let shard = -1;
  for (const sized of hashes) {
    if (call.length > 0 && (fields + sized.size > budget || (clustered && sized.job.shard !== shard))) {
      calls.push(call);
      call = [];
      fields = 0;
    }
    call.push(sized);
    fields += sized.size;
    shard = sized.job.shard;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}

// Sorts in runs of SORT_RUN merged pairwise, giving the event loop turns: one `sort()` of a
// million label sets would hold it for a second. `sortRun` sorts one run; `before` is the merge's
// order (true keeps `a` first), stable: of equal items, the earlier run's comes first.
const SORT_RUN = 512;
async function sortedBy<T>(
  items: T[],
  sortRun: (run: T[]) => T[],
  before: (a: T, b: T) => boolean,
  slicer: Slicer,
): Promise<T[]> {
  if (items.length <= SORT_RUN) return sortRun(items);
  let runs: T[][] = [];
  for (let i = 0; i < items.length; i += SORT_RUN) {
    runs.push(sortRun(items.slice(i, i + SORT_RUN)));
    if (slicer.overdue()) await slicer.pause();
  }
  while (runs.length > 1) {
    const next: T[][] = [];
    for (let r = 0; r < runs.length; r += 2) {
      const a = runs[r];
      const b = runs[r + 1];
      if (b === undefined) {
        next.push(a);
        continue;
      }
      const out: T[] = new Array(a.length + b.length);
      let i = 0;
      let j = 0;
      let k = 0;
      while (i < a.length && j < b.length) {
        if (slicer.due()) await slicer.pause();
        out[k++] = before(a[i], b[j]) ? a[i++] : b[j++];
      }
      while (i < a.length) out[k++] = a[i++];
      while (j < b.length) out[k++] = b[j++];
      next.push(out);
    }
    runs = next;
  }
  return runs[0];
}

// Texts sorted by code unit, as `sort()` does. (Sorting their positions instead, as sortedOrder
// does, made a collection of a histogram's 50,000 label sets about 5 % slower on Bun and Deno.)
const sorted = (texts: string[], slicer: Slicer): Promise<string[]> =>
  sortedBy(texts, (run) => run.sort(), (a, b) => a <= b, slicer);

// The positions of texts, in the order of the texts (by code unit; equal texts in the order read):
// runs of SORT_RUN sorted in place, then merged pairwise between two buffers. In typed arrays,
// outside the garbage-collected heap: a million positions, sorted and kept for the next
// collection, are nothing its collector copies or marks, and the merges allocate nothing.
async function sortedOrder(texts: readonly string[], slicer: Slicer): Promise<Uint32Array> {
  const n = texts.length;
  let from = new Uint32Array(n);
  for (let i = 0; i < n; i++) from[i] = i;
  const compare = (a: number, b: number) => texts[a] < texts[b] ? -1 : texts[a] > texts[b] ? 1 : a - b;
  for (let i = 0; i < n; i += SORT_RUN) {
    from.subarray(i, Math.min(n, i + SORT_RUN)).sort(compare);
    if (slicer.overdue()) await slicer.pause();
  }
  if (n <= SORT_RUN) return from;
  let to = new Uint32Array(n);
  for (let width = SORT_RUN; width < n; width *= 2) {
    for (let start = 0; start < n; start += 2 * width) {
      const middle = Math.min(n, start + width);
      const end = Math.min(n, start + 2 * width);
      let i = start;
      let j = middle;
      let k = start;
      while (i < middle && j < end) {
        if (slicer.due()) await slicer.pause();
        to[k++] = texts[from[i]] <= texts[from[j]] ? from[i++] : from[j++];
      }
      while (i < middle) to[k++] = from[i++];
      while (j < end) to[k++] = from[j++];
    }
    [from, to] = [to, from];
  }
  return from;
}

// The label sets of one metric, by labels text, in two generations. A metric of one value a
// series keeps them as two lists instead, in field order: the fields read last time with their
// label sets, and this time's, walked beside the sorted fields read.
interface LabelCache {
  readonly names: readonly string[];
  readonly young: Map<string, Labels>;
  readonly older: Map<string, Labels>;
  readonly last: FieldLabels;
  readonly next: FieldLabels;
}
interface FieldLabels {
  readonly fields: string[];
  readonly labels: Labels[];
  // The value fields in the order they were read, and their positions in label order.
  read: readonly string[];
  order: ArrayLike<number>;
}

// The label set of a labels text, from the cache, moved to its young generation, or parsed;
// undefined for text of other label names.
function labelsOf(cache: LabelCache, text: string): Labels | undefined {
  let labels = cache.young.get(text);
  if (labels !== undefined) return labels;
  labels = cache.older.get(text) ?? parseLabels(text, cache.names);
  if (labels !== undefined) cache.young.set(text, labels);
  return labels;
}

type Series = MetricFamily["series"][number];

/** The most collection calls (or HSCAN chains) in flight at once past the first. */
export const READ_WINDOW = 2;
/**
 * How many fields, past the read the next part needs, may be read ahead of it (the read after it
 * always may). Reads that run far ahead of the assembly keep every field they read alive until
 * its turn, and the engine's young-generation collector copies it all in long pauses; a bounded
 * distance spreads that work.
 */
export const READ_AHEAD = 16 * READ_BUDGET;

// A read left by the first call: a call of several hashes, or the HSCAN steps through one, and
// the fields Redis last counted in them.
interface Task {
  readonly jobs: readonly Job[];
  readonly scan: boolean;
  readonly fields: number;
}

// How far the reads may go: the task the next part needs, and the readers waiting for it.
interface Gate {
  needed: number;
  stopped: boolean;
  waiting: (() => void)[];
}

// Lets the reads go up to the task `needed` (and READ_AHEAD fields past it).
function open(gate: Gate, needed: number): void {
  if (needed <= gate.needed) return;
  gate.needed = needed;
  for (const resolve of gate.waiting.splice(0)) resolve();
}

// The family of a target, with these series.
function familyOf(target: CollectTarget, series: Series[]): MetricFamily {
  const family = { name: target.exposedName, help: target.help, type: target.type, series };
  return (target.type === "histogram" ? { ...family, buckets: target.buckets } : family) as MetricFamily;
}

// A promise with its resolve and reject at hand. Its rejection is never left unhandled: a read
// nobody waits for any more (the scrape stopped) fails quietly.
interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(error: unknown): void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}

// Series between two looks at the clock: well under a millisecond's work, even in a large heap
// whose garbage collector makes every allocation pay for marking.
const CHUNK = 256;

// A metric with one value a series and no instances, as read: its value fields and their values
// in the order read, and its exemplar fields (as the field of their series) and exemplars. In
// lists, not maps: V8 (Deno) makes the string keys of a map that live through a young-generation
// collection internalized strings, and as a first collection of a million series added as many to
// the engine's string table, its growth rehashed it at once, holding the event loop for 25-60 ms.
interface Single {
  readonly fields: string[];
  readonly values: number[];
  readonly markFields: string[];
  readonly marks: string[];
  // The value fields read last time, and whether every field read so far is the one read at its
  // place then.
  readonly known: readonly string[];
  unchanged: boolean;
}

// Whether a metric's series are one value each, without instances (a counter, a shared gauge).
const isSingle = (target: CollectTarget): boolean =>
  target.perInstance !== true &&
  (target.type === "counter" || (target.type === "gauge" && !perInstance(target.gaugeMode)));

/**
 * One metric's hash in one shard, as it is read. A metric of one value a series is gathered as
 * each reply comes, and the reply is not kept: a field read at the same place as last time, with
 * the same text, is kept as last time's string, so that a collection of a hash that did not
 * change keeps no string it read (a million of them, kept for the hundreds of milliseconds a
 * shard takes to read and write out, were copied into the old generation at every collection).
 * Other metrics keep every field and value read, in order.
 */
class ShardRead {
  readonly done: Deferred<void> = deferred();
  readonly flat: string[] = [];
  readonly single: Single | undefined;
  readonly #counter: boolean;
  // The place of the next value field in the fields read last time.
  #at = 0;

  constructor(target: CollectTarget | undefined, known: readonly string[]) {
    const single = target !== undefined && isSingle(target);
    this.single = single
      ? { fields: [], values: [], markFields: [], marks: [], known, unchanged: true }
      : undefined;
    this.#counter = target?.type === "counter";
  }

  /**
   * Takes the fields and values of one reply, and empties it: a reply still referenced after it
   * was taken (by an engine's saved frame of the function awaiting the next) would otherwise
   * keep every string in it alive.
   */
  take(reply: unknown[]): void {
    const single = this.single;
    if (single === undefined) {
      for (let i = 0; i < reply.length; i++) this.flat.push(reply[i] as string);
      reply.length = 0;
      return;
    }
    const known = single.known;
    let at = this.#at;
    for (let i = 0; i < reply.length; i += 2) {
      let text = String(reply[i]);
      if (text.endsWith("||")) {
        if (at < known.length && known[at] === text) text = known[at];
        else single.unchanged = false;
        at++;
        single.fields.push(text);
        single.values.push(Number(reply[i + 1]));
      } else if (this.#counter && text.endsWith("|#|")) {
        single.markFields.push(`${text.slice(0, -3)}||`);
        single.marks.push(String(reply[i + 1]));
      }
    }
    this.#at = at;
    reply.length = 0;
  }
}

// In place of a read once it is assembled: its fields are not kept until the collection ends.
const SPENT = new ShardRead(undefined, []);

// The reads of several shards of a metric as one, in shard order.
function joined(reads: readonly ShardRead[], target: CollectTarget): ShardRead {
  const all = new ShardRead(target, []);
  for (const read of reads) {
    if (all.single === undefined) {
      for (const item of read.flat) all.flat.push(item);
      continue;
    }
    const single = read.single!;
    for (let i = 0; i < single.fields.length; i++) {
      all.single.fields.push(single.fields[i]);
      all.single.values.push(single.values[i]);
    }
    for (let i = 0; i < single.markFields.length; i++) {
      all.single.markFields.push(single.markFields[i]);
      all.single.marks.push(single.marks[i]);
    }
  }
  return all;
}

// The most series of a part from a metric with one value a series: a few milliseconds of
// rendering. A part of a whole shard (62,500 series of a million) lived for hundreds of
// milliseconds, long enough for the young generation's collector to copy every series into the
// old generation; one of a thousand is written out and dropped before it is copied.
export const PART_SERIES = 1_024;

// The series of a metric with one value a series and no instances (a counter, a shared gauge),
// in label order, in lists of about PART_SERIES: the same as the general path, without a map
// per series.
async function* assembleSingle(
  single: Single,
  slicer: Slicer,
  cache: LabelCache,
): AsyncGenerator<Series[], void, undefined> {
  // The fields in the order read, for the next collection to recognize, and their label order:
  // last time's when they are the same fields in the same order (Redis gives a hash that only
  // had values changed in the same order each time), so that a collection of an unchanged set
  // of series does not sort it again.
  const { fields, known } = single;
  const last = cache.last;
  const same = single.unchanged && fields.length === known.length && last.read === known;
  const order = same ? last.order : await sortedOrder(fields, slicer);
  cache.next.read = fields;
  cache.next.order = order;
  const walk: Walk = {
    order,
    markOrder: single.markFields.length === 0 ? [] : await sortedOrder(single.markFields, slicer),
    last: 0,
    mark: 0,
    series: [],
  };
  for (let k = 0; k < walk.order.length; k += CHUNK) {
    buildSingle(single, walk, cache, k, Math.min(walk.order.length, k + CHUNK));
    if (walk.series.length >= PART_SERIES) {
      yield walk.series;
      walk.series = [];
    }
    if (slicer.overdue()) await slicer.pause();
  }
  if (walk.series.length > 0) yield walk.series;
}

// The sorted fields of a metric being made into series, and where the walk is in the lists
// beside them: the fields read last time, and the exemplar fields.
interface Walk {
  readonly order: ArrayLike<number>;
  readonly markOrder: ArrayLike<number>;
  last: number;
  mark: number;
  series: Series[];
}

// Makes the series of sorted fields `from` to `to`.
function buildSingle(single: Single, walk: Walk, cache: LabelCache, from: number, to: number): void {
  const { fields, values, markFields, marks } = single;
  const { order, markOrder, series } = walk;
  const { last, next } = cache;
  let { last: seen, mark } = walk;
  for (let k = from; k < to; k++) {
    const field = fields[order[k]];
    // A field read twice (its hash grew during HSCAN): the later read wins.
    if (k + 1 < order.length && fields[order[k + 1]] === field) continue;
    while (seen < last.fields.length && last.fields[seen] < field) seen++;
    const known = seen < last.fields.length && last.fields[seen] === field;
    const labels = known ? last.labels[seen] : parseLabels(field.slice(0, -2), cache.names);
    if (labels === undefined) continue;
    // The text kept from last time, not this read's equal one: what a collection reads then dies
    // young, and a large collection does not move a million new strings into the old generation.
    next.fields.push(known ? last.fields[seen] : field);
    next.labels.push(labels);
    while (mark < markOrder.length && markFields[markOrder[mark]] < field) mark++;
    let text: string | undefined;
    while (mark < markOrder.length && markFields[markOrder[mark]] === field) text = marks[markOrder[mark++]];
    const value = values[order[k]];
    const exemplar = text === undefined ? undefined : parseExemplar(text);
    series.push(exemplar === undefined ? { labels, value } : { labels, value, exemplar });
  }
  walk.last = seen;
  walk.mark = mark;
}
// The fields of one series: value name (or instance id, for per-instance gauges) -> value.
type Fields = ReadonlyMap<string, string>;
// Turns the fields of one series into its series (none, one, or one per instance), with the
// exemplar fields of the series by value name, if it has any.
type Shape = (labels: Labels, fields: Fields, out: Series[], exemplars: Fields | undefined) => void;

/** Reads metrics from one store. */
export class Reader {
  #transport: Transport;
  #options: RemoteOptions;
  // Label sets parsed from field text, kept so that every scrape returns the same objects (the
  // exposition caches their rendered text), per metric (and label names) and shard: a map of a
  // million entries would hold the event loop for tens of milliseconds each time it grows past
  // a power of two, a map per shard for a sixteenth of that. In two generations,
  // so that label sets no longer stored (a summary's buckets of past slices) are forgotten: each
  // collection of a metric starts a new one, into which what it reads moves; the one before is
  // then dropped.
  #labels = new Map<string, LabelCache>();

  constructor(transport: Transport, options: RemoteOptions) {
    this.#transport = transport;
    this.#options = options;
  }

  /**
   * Reads every series of these metrics: in one round trip when they fit in one call's budget;
   * otherwise in calls of at most READ_BUDGET fields each (on a Redis Cluster, one per shard at
   * least), and by HSCAN steps for a metric's shard that alone is larger.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async collect(targets: readonly CollectTarget[]): Promise<MetricFamily[]> {
    const series: Series[][] = targets.map(() => []);
    const slicer = new Slicer();
    for await (const { index, family } of this.parts(targets)) {
      const into = series[index];
      for (const one of family.series) {
        if (slicer.due()) await slicer.pause();
        into.push(one);
      }
    }
    return targets.map((target, i) => familyOf(target, series[i]));
  }

  /**
   * Reads every series of these metrics as parts, in target order: a part holds the series of one
   * metric in one shard, given as soon as that shard is read (and the shards before it), while
   * the rest is still being read. The first call (every small hash, the field count of the
   * others) is made before the first part; its failure is the first thing thrown.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async *parts(targets: readonly CollectTarget[]): AsyncGenerator<FamilyPart, void, undefined> {
    if (targets.length === 0) return;
    const prefix = this.#options.keyPrefix;
    const clustered = this.#transport.clustered;
    // What each metric's hash in each shard holds, as read.
    const reads: ShardRead[][] = targets.map((target) =>
      Array.from(
        { length: SHARDS },
        (_, shard) => new ShardRead(target, this.#labels.get(cacheKey(target, shard))?.next.read ?? []),
      )
    );
    const jobs: Job[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      for (const [target, { name }] of targets.entries()) {
        jobs.push({ key: metricKey(prefix, name, shard), target, shard });
      }
    }
    // The heartbeats (and Redis' clock) come with the first call, or on a cluster (their own
    // slot) in a call of their own.
    const heartbeats = clustered ? this.#call(COLLECT_SCRIPT, [instancesKey(prefix)], ["1", "0"]) : undefined;
    const first = group(jobs.map((job) => ({ job, size: 0 })), clustered, Infinity);
    const replies = await Promise.all(first.map((call, i) => {
      const keys = call.map(({ job }) => job.key);
      if (heartbeats === undefined && i === 0) keys.unshift(instancesKey(prefix));
      return this.#call(COLLECT_SCRIPT, keys, [
        heartbeats === undefined && i === 0 ? "1" : "0",
        String(READ_BUDGET),
      ]);
    }));
    let clock = (heartbeats === undefined ? replies[0] : await heartbeats) as unknown[];
    const left: Sized[] = [];
    const large: Sized[] = [];
    const slicer = new Slicer();
    for (const [i, call] of first.entries()) {
      const reply = replies[i] as unknown[];
      let at = heartbeats === undefined && i === 0 ? 2 : 0;
      for (const { job } of call) {
        const part = reply[at++];
        if (Array.isArray(part)) {
          const read = reads[job.target][job.shard];
          read.take(part);
          read.done.resolve();
          if (slicer.overdue()) await slicer.pause();
        } else if (Number(part) > READ_BUDGET) large.push({ job, size: Number(part) });
        else left.push({ job, size: Number(part) });
      }
    }
    // The rest, in target order, a few calls at once, while the parts before are assembled.
    left.sort((a, b) => a.job.target - b.job.target || a.job.shard - b.job.shard);
    const tasks: Task[] = group(left, clustered, READ_BUDGET).map((call) => ({
      jobs: call.map(({ job }) => job),
      scan: false,
      fields: call.reduce((sum, { size }) => sum + size, 0),
    }));
    for (const { job, size } of large) tasks.push({ jobs: [job], scan: true, fields: size });
    tasks.sort((a, b) => a.jobs[0].target - b.jobs[0].target || a.jobs[0].shard - b.jobs[0].shard);
    const taskOf = targets.map(() => new Array<number>(SHARDS).fill(-1));
    tasks.forEach((task, i) => task.jobs.forEach(({ target, shard }) => (taskOf[target][shard] = i)));
    const gate: Gate = { needed: -1, stopped: false, waiting: [] };
    void this.#readRest(tasks, reads, gate);
    const [seconds, micros] = (clock[0] as (string | number)[]).map(Number);
    const now = seconds * 1000 + Math.floor(micros / 1000);
    const live = new Set<string>();
    const beats = clock[1] as string[];
    for (let i = 0; i < beats.length; i += 2) if (Number(beats[i + 1]) > now) live.add(String(beats[i]));
    clock = [];
    try {
      for (const [index, target] of targets.entries()) {
        if (taskOf[index].every((task) => task < 0)) {
          // Read whole by the first call: one part, its series in label order across shards.
          const read = joined(reads[index], target);
          const series: Series[] = [];
          for await (const some of this.#assemble(target, read, live, slicer, this.#cacheOf(target, -1))) {
            for (let i = 0; i < some.length; i++) series.push(some[i]);
          }
          yield { index, family: familyOf(target, series), last: true };
          continue;
        }
        for (let shard = 0; shard < SHARDS; shard++) {
          open(gate, taskOf[index][shard]);
          const read = reads[index][shard];
          await read.done.promise;
          // What was read is not kept past its assembly.
          reads[index][shard] = SPENT;
          const cache = this.#cacheOf(target, shard);
          // Each list is given once the next is made, so that the last is known.
          let ready: Series[] | undefined;
          for await (const series of this.#assemble(target, read, live, slicer, cache)) {
            if (ready !== undefined) yield { index, family: familyOf(target, ready), last: false };
            ready = series;
          }
          if (ready !== undefined && ready.length > 0) {
            yield { index, family: familyOf(target, ready), last: shard === SHARDS - 1 };
          } else if (shard === SHARDS - 1) {
            yield { index, family: familyOf(target, []), last: true };
          }
        }
      }
    } finally {
      // Done, failed, or the scrape stopped: the reads still to come are not made.
      gate.stopped = true;
      open(gate, Infinity);
    }
  }

  // Reads what the first call left: READ_WINDOW calls or HSCAN chains at a time, in target order,
  // and no further ahead of the parts given than READ_AHEAD fields, so that a slow scraper holds
  // a bounded part of a large collection in memory. A hash that grew past the budget meanwhile is
  // read by HSCAN steps.
  async #readRest(
    tasks: readonly Task[],
    reads: readonly (readonly ShardRead[])[],
    gate: Gate,
  ): Promise<void> {
    let next = 0;
    // The fields of the tasks before each one.
    const before = [0];
    for (const task of tasks) before.push(before[before.length - 1] + task.fields);
    const tooFar = (task: number) =>
      task > gate.needed + 1 && before[task + 1] - before[gate.needed + 1] > READ_AHEAD;
    const worker = async (): Promise<void> => {
      while (next < tasks.length && !gate.stopped) {
        if (tooFar(next)) {
          await new Promise<void>((resolve) => gate.waiting.push(resolve));
          continue;
        }
        const { jobs, scan } = tasks[next++];
        if (scan) {
          await this.#scan(jobs[0], reads);
          continue;
        }
        const reply = (await this.#call(
          COLLECT_SCRIPT,
          jobs.map((job) => job.key),
          ["0", String(READ_BUDGET)],
        )) as unknown[];
        const grown: Promise<void>[] = [];
        for (const [i, job] of jobs.entries()) {
          const part = reply[i];
          if (Array.isArray(part)) {
            reads[job.target][job.shard].take(part);
            reads[job.target][job.shard].done.resolve();
          } else grown.push(this.#scan(job, reads));
        }
        await Promise.all(grown);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(READ_WINDOW, tasks.length) }, worker));
    } catch (error) {
      // Every read not done fails with it; what was read stays.
      for (const shards of reads) for (const read of shards) read.done.reject(error);
    }
  }

  /**
   * Reads fields of a metric hash in one round trip; 0 for an absent one.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async read(key: string, fields: readonly string[]): Promise<number[]> {
    return (await this.readText(key, fields)).map((text) => text === undefined ? 0 : Number(text));
  }

  /**
   * Reads fields of a metric hash as text in one round trip; undefined for an absent one.
   *
   * @throws {BackendUnavailableError} When Redis cannot be read.
   */
  async readText(key: string, fields: readonly string[]): Promise<(string | undefined)[]> {
    if (fields.length === 0) return [];
    const values = (await this.#call(READ_SCRIPT, [key], fields)) as unknown[];
    return fields.map((_, i) => {
      const value = values[i];
      return value === null || value === undefined || value === false ? undefined : String(value);
    });
  }

  // Reads a hash too large for one call, in HSCAN steps; a field met twice (the hash grew
  // meanwhile) is read twice, and the later value wins when the series are grouped.
  async #scan(job: Job, reads: readonly (readonly ShardRead[])[]): Promise<void> {
    const read = reads[job.target][job.shard];
    let cursor = "0";
    do {
      const [next, part] = (await this.#call(SCAN_SCRIPT, [job.key], [cursor, String(SCAN_COUNT)])) as [
        unknown,
        unknown[],
      ];
      read.take(part);
      cursor = String(next);
    } while (cursor !== "0");
    read.done.resolve();
  }

  async #call(script: Promise<Script>, keys: string[], args: readonly string[]): Promise<unknown> {
    try {
      return await this.#transport.run(await script, keys, args);
    } catch (error) {
      throw new BackendUnavailableError(
        `Cannot read metrics from ${this.#transport.description}: ${errorMessage(error)}`,
        { cause: error },
      );
    }
  }

  // The series of one metric in one shard, from the fields read, in label order: in several lists
  // for a metric of one value a series, in one for the others.
  async *#assemble(
    target: CollectTarget,
    read: ShardRead,
    live: ReadonlySet<string>,
    slicer: Slicer,
    cache: LabelCache,
  ): AsyncGenerator<Series[], void, undefined> {
    // Group the fields of each series: labels text -> value name or instance -> value. A
    // per-instance metric has a series per labels text and live instance, each of its own shape.
    // Exemplar fields are grouped apart (value name -> exemplar text), for counters and
    // histograms only, and never make a series on their own.
    if (read.single !== undefined) {
      yield* assembleSingle(read.single, slicer, cache);
      return;
    }
    const own = target.perInstance === true;
    const flat = read.flat;
    const groups = new Map<string, Map<string, string>>();
    const withExemplars = target.type === "counter" || target.type === "histogram";
    let exemplars: Map<string, Map<string, string>> | undefined;
    for (let i = 0; i < flat.length; i += 2) {
      const parts = parseField(String(flat[i]));
      if (parts === undefined) continue;
      if (slicer.due()) await slicer.pause();
      if (own && !live.has(parts.instance)) continue;
      const key = own ? field(parts.labels, "", parts.instance) : parts.labels;
      const of = exemplarOf(parts.value);
      if (of !== undefined) {
        if (!withExemplars) continue;
        let marks = (exemplars ??= new Map()).get(key);
        if (marks === undefined) exemplars.set(key, marks = new Map());
        marks.set(of, String(flat[i + 1]));
        continue;
      }
      let group = groups.get(key);
      if (group === undefined) groups.set(key, group = new Map());
      group.set(parts.instance === "" || own ? parts.value : parts.instance, String(flat[i + 1]));
    }
    const shape = shapeOf(target, live);
    const series: Series[] = [];
    for (const key of await sorted([...groups.keys()], slicer)) {
      if (slicer.due()) await slicer.pause();
      const parts = own ? parseField(key)! : undefined;
      const labels = labelsOf(cache, parts?.labels ?? key);
      if (labels === undefined) continue;
      shape(
        parts === undefined ? labels : { ...labels, [INSTANCE_LABEL]: parts.instance },
        groups.get(key)!,
        series,
        exemplars?.get(key),
      );
    }
    yield series;
  }

  // The label sets of a metric in one shard (-1: read whole), a new generation started.
  #cacheOf(target: CollectTarget, shard: number): LabelCache {
    const key = cacheKey(target, shard);
    const old = this.#labels.get(key);
    const cache = {
      names: target.labelNames,
      young: new Map(),
      older: old?.young ?? new Map(),
      last: old?.next ?? { fields: [], labels: [], read: [], order: [] },
      next: { fields: [], labels: [], read: [], order: [] },
    };
    this.#labels.set(key, cache);
    return cache;
  }
}

const cacheKey = (target: CollectTarget, shard: number) =>
  `${target.name}|${target.labelNames.join(",")}|${shard}`;

const number = (fields: Fields, name: string): number => Number(fields.get(name) ?? 0);

// The exemplar of a value, from the exemplar fields of its series.
function exemplarOfValue(exemplars: Fields | undefined, name: string): Exemplar | undefined {
  const text = exemplars?.get(name);
  return text === undefined ? undefined : parseExemplar(text);
}

// How the fields of one series become its series, by type (and gauge mode).
function shapeOf(target: CollectTarget, live: ReadonlySet<string>): Shape {
  if (target.type === "histogram") {
    const names = valueNames("histogram", target.buckets)!;
    const last = names.length - 1;
    return (labels, fields, out, marks) => {
      let count = 0;
      const buckets = new Array<number>(last);
      for (let i = 0; i < last; i++) buckets[i] = count += number(fields, names[i]);
      // Sparse, as a bucket without an exemplar has none.
      let exemplars: Exemplar[] | undefined;
      if (marks !== undefined) {
        for (let i = 0; i < last; i++) {
          const exemplar = exemplarOfValue(marks, names[i]);
          if (exemplar !== undefined) (exemplars ??= [])[i] = exemplar;
        }
      }
      const sum = number(fields, "sum");
      out.push(
        exemplars === undefined
          ? { labels, buckets, sum, count }
          : { labels, buckets, sum, count, exemplars },
      );
    };
  }
  if (target.type === "summary") {
    return (labels, fields, out) =>
      out.push({ labels, sum: number(fields, "sum"), count: number(fields, "count") });
  }
  if (target.type === "counter") {
    return (labels, fields, out, marks) => {
      const value = number(fields, "");
      const exemplar = exemplarOfValue(marks, "");
      out.push(exemplar === undefined ? { labels, value } : { labels, value, exemplar });
    };
  }
  const mode = target.gaugeMode;
  if (target.type !== "gauge" || !perInstance(mode) || target.perInstance) {
    return (labels, fields, out) => out.push({ labels, value: number(fields, "") });
  }
  // A per-instance gauge: one value per instance, the expired ones left out in the live modes.
  const onlyLive = mode!.startsWith("live");
  const kind = onlyLive ? mode!.slice(4) : mode!;
  return (labels, fields, out) => {
    const entries = [...fields].filter(([instance]) => !onlyLive || live.has(instance));
    if (entries.length === 0) return;
    if (kind === "all") {
      for (const [instance, value] of entries) {
        out.push({ labels: { ...labels, [INSTANCE_LABEL]: instance }, value: Number(value) });
      }
    } else {
      out.push({ labels, value: aggregate(kind, entries.map(([, value]) => value)) });
    }
  };
}

function aggregate(kind: string, values: string[]): number {
  if (kind === "latest") {
    // Values are "<unix ms>:<value>"; the most recent write wins.
    let best = -Infinity;
    let value = NaN;
    for (const text of values) {
      const colon = text.indexOf(":");
      const at = Number(text.slice(0, colon));
      if (at >= best) {
        best = at;
        value = Number(text.slice(colon + 1));
      }
    }
    return value;
  }
  const numbers = values.map(Number);
  if (kind === "max") return Math.max(...numbers);
  if (kind === "min") return Math.min(...numbers);
  return numbers.reduce((a, b) => a + b, 0);
}

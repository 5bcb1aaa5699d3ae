// The write side of a remote store: the queue of series with pending changes, the batches a
// flush sends, and the background flush. Flushes never overlap.
//
// The series of a metric are spread over shards (see layout.ts), and each shard has its own
// batches: a batch holds the changes of one shard, at most STEP_SERIES series and STEP_CHANGES
// changes, and carries this process's id and the shard's next sequence number. The flush script
// applies a batch at most once, and only after the batch before it in its shard, so a batch
// whose answer was lost or failed is sent again as it was (while new changes gather in the next
// ones) and can never count twice nor be overtaken.
//
// A flush sends its batches without waiting for answers in between. A flush of at most
// CALL_SERIES series and CALL_CHANGES changes is one script call (one per shard on a Redis
// Cluster, where a script's keys share a slot); a larger one is calls of at most STEP_SERIES and
// STEP_CHANGES, each a few milliseconds of Redis' time, WINDOW of them in flight on one
// connection (SPREAD_WINDOW over a cluster's masters or over HTTP). A larger flush
// makes its batches a round of ROUND_SERIES series at a time, the next round once the calls of
// the one before are written (on one connection, while they run; over HTTP, once they are
// answered): a batch lives only until Redis confirms it, so a flush of a million series never
// holds more than a few rounds' worth of batches (which the engine's young-generation collector
// would otherwise copy over and over). Building the batches and writing the calls give the event
// loop a turn every few milliseconds.

import { unrefTimer } from "../../core/_runtime.ts";
import { Slicer, yieldToEventLoop } from "../../core/_slice.ts";
import { appliedKey, instancesKey, SHARDS } from "./layout.ts";
import type { RemoteOptions } from "./options.ts";
import { FLUSH_SCRIPT } from "./scripts.ts";
import type { Argument, Transport } from "./transport.ts";
import type { Changes, Pending } from "./values.ts";

/** A flush of at most this many series (and removals) is one script call. */
export const CALL_SERIES = 10_000;
/** ... and of at most this many changes (each a field Redis writes). */
export const CALL_CHANGES = 20_000;
/**
 * The most series in one batch, and in one call of a larger flush: a few milliseconds of Redis'
 * time, and of this process' to write the call. Another client's command waited up to about two
 * such calls here while a flush ran.
 */
export const STEP_SERIES = 500;
/** The most changes in one batch, and in one call of a larger flush. */
export const STEP_CHANGES = 1_000;
/**
 * The most script calls of one flush in flight at once on one connection. Redis runs the calls
 * waiting on a connection one after another before it answers another client: with eight in
 * flight, another client's PING waited 11–46 ms during a flush of a million series here, with
 * two 6–23 ms. Two keep Redis busy as long as a round trip is shorter than a call.
 */
export const WINDOW = 2;
/**
 * The most calls in flight at once where they spread over several connections: a Redis Cluster's
 * masters (a few a master), or HTTP requests (each shard's calls one after another, this many
 * shards side by side).
 */
export const SPREAD_WINDOW = 8;
/**
 * The series a larger flush turns into batches at a time, making more once their calls are
 * written: two calls' worth per shard (a shard seals a batch every STEP_SERIES of its series), and
 * more than CALL_SERIES, so that a flush that fits one call is drained whole.
 */
export const ROUND_SERIES = 32 * STEP_SERIES;
/** The most expired series one flush script deletes from one metric's shard. */
export const TRIM_STEP = 100;

/** What the library reports about a store, as its own metrics. */
export interface StoreStats {
  /** Flushes attempted. */
  flushes: number;
  /** Flushes that failed. */
  failures: number;
  /** Changes Redis refused to apply (an increment to infinity, a key of another type). */
  rejected: number;
  /** The duration of the last flush. */
  lastFlushSeconds: number;
  /** Why the last flush failed; undefined when it succeeded. */
  lastError: string | undefined;
}

/** A removal: the fields of one series, deleted exactly ("d") or by prefix ("p"). */
export interface Removal {
  readonly shard: number;
  readonly key: string;
  readonly op: "d" | "p";
  readonly field: string;
}

// The changes of one shard, applied at most once. Keys are the batch's own (its marker first);
// a change names a key by its position there, from 1. The changes go to the script as one text,
// each of their four parts ended by a line feed (no part holds one: labels and exemplars are JSON
// text, the rest names and numbers): a client encodes one argument much faster than thousands,
// and Redis splits the text in about the time it took to take the arguments apart (up to a tenth
// more for a flush of increments only). The text is kept as the transport's bytes where it takes
// them (see Transport.encode).
interface Batch {
  readonly shard: number;
  readonly seq: number;
  readonly keys: readonly string[];
  readonly changes: Argument;
  readonly series: number;
  readonly values: number;
  readonly bytes: number;
}

// What a round of sending left: batches refused for their place, and the shards not sent to
// because an earlier call to them was still unanswered.
interface Sent {
  readonly refused: number;
  readonly waiting: readonly number[];
}

// In place of a call's batches once it is sent.
const SENT: readonly Batch[] = [];

// A batch being filled.
class Builder {
  readonly keys: string[];
  readonly changes: Changes = [];
  series = 0;
  // Changes of values, not counting the last-write index's entries and trims.
  values = 0;
  bytes = 0;
  #index = new Map<string, string>();
  #trimmed: Set<string> | undefined;

  constructor(marker: string) {
    this.keys = [marker];
    this.bytes = requestBytes(marker);
  }

  indexOf(key: string): string {
    let index = this.#index.get(key);
    if (index === undefined) {
      this.keys.push(key);
      this.#index.set(key, index = String(this.keys.length));
      this.bytes += requestBytes(key);
    }
    return index;
  }

  // Once per metric key and batch: delete that shard's expired series. `index` is the position
  // of the metric's last-write index among the batch's keys.
  trim(key: string, index: string, names: string): void {
    if ((this.#trimmed ??= new Set()).has(key)) return;
    this.#trimmed.add(key);
    this.changes.push(this.indexOf(key), "e", index, names);
  }
}

// A call that may still be answered: its shards, when it was sent, and its end.
interface Unanswered {
  readonly shards: readonly number[];
  readonly started: number;
  readonly done: Promise<void>;
  release(): void;
}

// The batches of one shard that Redis has not confirmed, in order.
interface Shard {
  seq: number;
  confirmed: number;
  unconfirmed: Batch[];
  builder: Builder | undefined;
}

/** Who this process is in the store: its batches' id and its id in per-instance gauges. */
export interface Identity {
  readonly processId: string;
  readonly instanceId: string;
}

/** The pending changes of one store, and their flushes. */
export class Writer {
  readonly stats: StoreStats = {
    flushes: 0,
    failures: 0,
    rejected: 0,
    lastFlushSeconds: 0,
    lastError: undefined,
  };
  #transport: Transport;
  #options: RemoteOptions;
  #identity: Identity;
  #queue: Pending[] = [];
  // Series a flush took from the queue; those before #drained are in batches already. What a
  // failed flush left is taken first by the next.
  #draining: Pending[] = [];
  #drained = 0;
  #removals: Removal[] = [];
  #shards: Shard[] = Array.from({ length: SHARDS }, () => ({
    seq: 0,
    confirmed: 0,
    unconfirmed: [],
    builder: undefined,
  }));
  // Calls that timed out but may still run: their shards are not sent to again until they end.
  #waiting = new Set<Unanswered>();
  #active: Promise<void> | undefined;
  #next: Promise<void> | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #perInstance = false;
  #lastBeat = 0;
  #closed = false;

  constructor(transport: Transport, options: RemoteOptions, identity: Identity) {
    this.#transport = transport;
    this.#options = options;
    this.#identity = identity;
  }

  /** Series and removals not yet confirmed by Redis. */
  get pending(): number {
    let pending = this.#queue.length + this.#draining.length - this.#drained + this.#removals.length;
    for (const shard of this.#shards) {
      pending += shard.builder?.series ?? 0;
      for (const batch of shard.unconfirmed) pending += batch.series;
    }
    return pending;
  }

  /** Queues a series with changes. */
  enqueue(values: Pending): void {
    if (this.#closed) return;
    values.queued = true;
    this.#queue.push(values);
    if (this.#timer === undefined) this.#startTimer();
  }

  /** Queues removals, applied before the changes of the same batch. */
  remove(removals: readonly Removal[]): void {
    this.#removals.push(...removals);
    if (this.#timer === undefined) this.#startTimer();
  }

  /** Starts the heartbeat that per-instance gauges need. */
  usePerInstance(): void {
    this.#perInstance = true;
    this.#startTimer();
  }

  /** Flushes pending changes. Never rejects: a failure is counted and the batch kept for retry. */
  flush(): Promise<void> {
    if (this.#next !== undefined) return this.#next;
    if (this.#active === undefined) {
      this.#active = this.#flushOnce().finally(() => (this.#active = undefined));
      return this.#active;
    }
    this.#next = this.#active.then(() => {
      this.#next = undefined;
      return this.flush();
    });
    return this.#next;
  }

  /** Stops the background flush; later changes are dropped. */
  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #startTimer(): void {
    const interval = this.#options.flushIntervalMs;
    if (this.#timer !== undefined || interval <= 0 || this.#closed) return;
    // A tick that finds a flush running skips: queued behind it, background flushes would follow
    // one another with no gap while Redis is away (each waits out a timeout), and a process that
    // is done would never end, since its exit flush runs only once the event loop is idle.
    this.#timer = setInterval(() => this.#active === undefined && void this.flush(), interval);
    unrefTimer(this.#timer);
  }

  async #flushOnce(): Promise<void> {
    if (this.#closed) return;
    const started = performance.now();
    const errors: string[] = [];
    try {
      this.#take();
      let beat = this.#perInstance &&
        Date.now() - this.#lastBeat >= this.#options.instanceTtlSeconds * 250;
      // On one connection, the rounds after the first are made while the calls before them run;
      // over HTTP, where calls may overtake each other, each round waits for the one before.
      const more = this.#transport.ordered ? () => this.#nextRound() : undefined;
      for (let round = 0; round === 0 || this.#drained < this.#draining.length; round++) {
        await this.#drain(ROUND_SERIES);
        // One call for the whole flush only when it is small enough and this round holds all of it.
        const whole = round === 0 && this.#drained === this.#draining.length;
        // A batch refused for its place (one before it in its shard arrived later, as after a
        // script cache miss) is sent again at once, after it; so are the batches of shards whose
        // earlier call was answered while the others' calls went.
        let sent: Sent = { refused: 0, waiting: [] };
        for (let pass = 0; pass < 3; pass++) {
          sent = await this.#send(beat, whole, errors, pass === 0 ? more : undefined);
          beat = false;
          const busy = this.#busy();
          const answered = sent.waiting.some((shard) => !busy.has(shard));
          if ((sent.refused === 0 && !answered) || errors.length > 0) break;
        }
        const { refused } = sent;
        const waiting = sent.waiting.filter((shard) => this.#shards[shard].unconfirmed.length > 0);
        if (waiting.length > 0) {
          errors.push(`${waiting.length} shards wait for the answer to an earlier call`);
        }
        if (refused > 0) errors.push(`${refused} batches wait for the ones before them in their shards`);
        // What is left waits for the next flush rather than for more timeouts.
        if (errors.length > 0) break;
      }
    } catch (error) {
      errors.push(error instanceof Error ? error.message : String(error));
    } finally {
      if (errors.length > 0) this.stats.failures++;
      this.stats.lastError = errors[0];
      this.stats.flushes++;
      this.stats.lastFlushSeconds = (performance.now() - started) / 1000;
    }
  }

  // Takes the queue for this flush, after what an earlier one left, and puts the removals in
  // batches: first, since a series created again after its removal writes after it.
  #take(): void {
    if (this.#drained === this.#draining.length) this.#draining = this.#queue;
    else this.#draining = this.#draining.slice(this.#drained).concat(this.#queue);
    this.#drained = 0;
    this.#queue = [];
    const removals = this.#removals;
    this.#removals = [];
    // Removals first: a series created again after its removal writes after it.
    for (const { shard, key, op, field } of removals) {
      const builder = this.#builder(shard);
      builder.changes.push(builder.indexOf(key), op, field, "");
      builder.series++;
      builder.values++;
      builder.bytes += requestBytes(field) + 8;
      this.#seal(shard, false);
    }
  }

  // Turns up to `limit` taken series into batches, shard by shard, sealing the full ones (and,
  // once every taken series is in one, all of them); the batch format is the flush script's (see
  // scripts.ts).
  async #drain(limit: number): Promise<void> {
    const queue = this.#draining;
    const end = Math.min(queue.length, this.#drained + limit);
    const slicer = new Slicer();
    const now = Date.now();
    const touchEvery = this.#options.expireSeconds * 100;
    const measure = Number.isFinite(this.#options.maxRequestBytes);
    for (let i = this.#drained; i < end; i++) {
      if (slicer.due()) {
        this.#drained = i;
        await slicer.pause();
      }
      const values = queue[i];
      const builder = this.#builder(values.shard);
      const changes = builder.changes;
      const before = changes.length;
      values.drain(changes, builder.indexOf(values.key));
      if (changes.length === before) continue;
      builder.values += (changes.length - before) / 4;
      // The series' last write, in the index that expires it: again once a twentieth to a tenth
      // of the expiry has passed (at random, so that series first written together do not all
      // come due together), so a series expires between expireSeconds and 1.1 times that after
      // its last write.
      if (now - values.touchedAt >= touchEvery) {
        values.touchedAt = now - Math.random() * touchEvery / 2;
        const index = builder.indexOf(values.index);
        changes.push(index, "t", values.member, values.memberCut);
        builder.trim(values.key, index, values.valueNames);
      }
      builder.series++;
      if (measure) {
        for (let j = before; j < changes.length; j++) builder.bytes += requestBytes(changes[j]);
      }
      this.#seal(values.shard, false);
    }
    this.#drained = end;
    if (end < queue.length) return;
    this.#draining = [];
    this.#drained = 0;
    for (let shard = 0; shard < SHARDS; shard++) this.#seal(shard, true);
  }

  // Makes the next round's batches, if any series are left; returns those it sealed, in shard and
  // sequence order.
  async #nextRound(): Promise<Batch[]> {
    if (this.#drained === this.#draining.length) return [];
    const sealed = this.#shards.map((state) => state.seq);
    await this.#drain(ROUND_SERIES);
    return this.#shards.flatMap((state, shard) =>
      state.unconfirmed.filter((batch) => batch.seq > sealed[shard])
    );
  }

  #builder(shard: number): Builder {
    const state = this.#shards[shard];
    return state.builder ??= new Builder(
      appliedKey(this.#options.keyPrefix, shard, this.#identity.processId),
    );
  }

  // Closes the shard's batch when it is full (or, at the end of a drain, when it holds anything).
  #seal(shard: number, always: boolean): void {
    const state = this.#shards[shard];
    const builder = state.builder;
    if (builder === undefined) return;
    const full = builder.series >= STEP_SERIES || builder.values >= STEP_CHANGES ||
      builder.bytes >= this.#options.maxRequestBytes / 2;
    if (!full && !(always && builder.changes.length > 0)) return;
    state.builder = undefined;
    // Every part ends with a line feed: an empty last one ends the one before it (and the text is
    // one flat string, which the client need not copy to measure or encode).
    builder.changes.push("");
    const text = builder.changes.join("\n");
    state.unconfirmed.push({
      shard,
      seq: ++state.seq,
      keys: builder.keys,
      changes: this.#transport.encode?.(text) ?? text,
      series: builder.series,
      values: builder.values,
      bytes: builder.bytes,
    });
  }

  // Sends every unconfirmed batch, in calls within the bounds, a window at a time; then settles
  // them. With `whole`, these are all of the flush's batches, and may go in one call. On one
  // connection, `more` makes the batches of the flush's next round once every call is written,
  // until it makes none. Returns how many batches were refused for their place, and the shards
  // left out because an earlier call to them was still unanswered.
  async #send(
    beat: boolean,
    whole: boolean,
    errors: string[],
    more?: () => Promise<Batch[]>,
  ): Promise<Sent> {
    const { clustered, ordered } = this.#transport;
    // A call still unanswered holds up the next ones of its shards. On one connection it holds up
    // every call after it too, so the flush waits for it first (up to a timeout), and sends
    // nothing if it still waits. On a cluster, or over HTTP, the other shards' calls go
    // meanwhile, so a master that does not answer leaves the others written; the flush then waits
    // as long before it ends.
    const oneLine = ordered && !clustered;
    const unanswered = this.#awaitUnanswered();
    if (oneLine) await unanswered;
    this.#dropConfirmed();
    const busy = this.#busy();
    // All in one call when it is small enough; in steps otherwise.
    let total = 0;
    let totalChanges = 0;
    for (const [shard, state] of this.#shards.entries()) {
      if (busy.has(shard)) continue;
      for (const batch of state.unconfirmed) {
        total += batch.series;
        totalChanges += batch.values;
      }
    }
    const small = whole && total <= CALL_SERIES && totalChanges <= CALL_CHANGES;
    const bounds = {
      series: small ? CALL_SERIES : STEP_SERIES,
      changes: small ? CALL_CHANGES : STEP_CHANGES,
      bytes: this.#options.maxRequestBytes,
    };
    // A call holds one shard's batches on a cluster (a script's keys share a slot), and where
    // calls may run out of order (each its own HTTP request) once a flush needs more than one:
    // then each shard's calls go one after another, the shards side by side.
    const waiting = [...busy].filter((shard) => this.#shards[shard].unconfirmed.length > 0);
    if (waiting.length > 0 && oneLine) return { refused: 0, waiting };
    // Batches in shard and sequence order, but the busy shards'.
    const sendable = (batches: readonly Batch[]) => batches.filter((batch) => !busy.has(batch.shard));
    const unconfirmed = sendable(this.#shards.flatMap((state) => state.unconfirmed));
    let calls: (readonly Batch[])[] = this.#pack(unconfirmed, clustered, bounds);
    if (!ordered && !clustered && calls.length > 1) calls = this.#pack(unconfirmed, true, bounds);
    // The heartbeat rides with the first call, or, on a cluster (its own slot) or with nothing
    // else to send, goes alone.
    const alone = beat && (clustered || calls.length === 0);
    if (alone) calls.push([]);
    const beatAt = !beat ? -1 : alone ? calls.length - 1 : 0;
    if (calls.length === 0) {
      await unanswered;
      return { refused: 0, waiting };
    }
    let refused = 0;
    const send = (i: number): Promise<void> => {
      const batches = calls[i];
      const withBeat = i === beatAt;
      // Until the call ends (with an answer, or an error of the connection), its shards wait,
      // even past the timeout: a late answer confirms the batches then.
      let answered = false;
      let end!: () => void;
      const waiting: Unanswered = {
        shards: [...new Set(batches.map((batch) => batch.shard))],
        started: Date.now(),
        done: new Promise<void>((resolve) => (end = resolve)),
        release: () => {
          if (this.#waiting.delete(waiting)) end();
        },
      };
      this.#waiting.add(waiting);
      const settled = (reply: unknown) => {
        waiting.release();
        if (Array.isArray(reply) && !answered) this.#settle(batches, reply, false);
        answered = true;
      };
      return this.#call(batches, withBeat, settled).then(
        (reply) => {
          if (answered) return;
          answered = true;
          refused += this.#settle(batches, reply as unknown[] | null, withBeat);
        },
        (error) => void errors.push(error instanceof Error ? error.message : String(error)),
      );
    };
    if (ordered) {
      // At most WINDOW calls in flight (SPREAD_WINDOW over a cluster's masters): the next call
      // waits on the connection while one runs, so Redis stays busy, and serves its other clients
      // between them.
      const window = clustered ? SPREAD_WINDOW : WINDOW;
      const inFlight = new Set<Promise<void>>();
      sending: for (let i = 0;; i++) {
        while (i === calls.length) {
          // The next round's batches; the busy shards' wait for the next flush.
          const fresh = more === undefined || errors.length > 0 ? [] : await more();
          if (fresh.length === 0) break sending;
          calls.push(...this.#pack(sendable(fresh), clustered, bounds));
        }
        if (inFlight.size >= window) await Promise.race(inFlight);
        // Once a call failed, the rest wait for the next flush rather than for more timeouts.
        if (errors.length > 0) break;
        // Writing a call takes a few milliseconds: the event loop gets a turn after each.
        if (i > 0) await yieldToEventLoop();
        const settled: Promise<void> = send(i).finally(() => inFlight.delete(settled));
        inFlight.add(settled);
        // The call keeps its batches until it is answered; the list need not.
        calls[i] = SENT;
      }
      await Promise.all(inFlight);
    } else {
      // Each shard's calls in order, each sent once the one before is answered; SPREAD_WINDOW
      // shards at once. A shard stops at its first failure.
      const chains = new Map<number, number[]>();
      calls.forEach((call, i) => {
        const shard = call[0]?.shard ?? -1;
        chains.set(shard, [...(chains.get(shard) ?? []), i]);
      });
      const queue = [...chains.values()];
      const run = async (): Promise<void> => {
        for (let chain = queue.shift(); chain !== undefined; chain = queue.shift()) {
          for (const i of chain) {
            const before = errors.length;
            await send(i);
            if (errors.length > before) break;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(SPREAD_WINDOW, queue.length) }, run));
    }
    await unanswered;
    this.#dropConfirmed();
    return { refused, waiting };
  }

  // The shards with a call still unanswered.
  #busy(): Set<number> {
    const busy = new Set<number>();
    for (const waiting of this.#waiting) for (const shard of waiting.shards) busy.add(shard);
    return busy;
  }

  // Forgets the batches Redis confirmed, by their answer or by a later batch's of their shard
  // (or by a late answer, since the last flush), as each call is answered: a large flush keeps
  // only the batches still to be answered. (Kept until the flush ended, with the calls that
  // carried them, they held 23 MB of a Node heap 1.5 s into a flush of a million series; 2.3 MB.)
  #dropConfirmed(): void {
    for (const state of this.#shards) {
      if (state.unconfirmed.length > 0 && state.unconfirmed[0].seq <= state.confirmed) {
        state.unconfirmed = state.unconfirmed.filter((batch) => batch.seq > state.confirmed);
      }
    }
  }

  // Calls that timed out may still be answered (Redis was slow or paused): a flush waits for them
  // up to the transport's timeout first. One unanswered for ten timeouts (and 30 s) was lost
  // with its connection: its shards may be sent to again.
  async #awaitUnanswered(): Promise<void> {
    if (this.#waiting.size === 0) return;
    const timeout = this.#transport.timeoutMs;
    const limit = Math.max(30_000, 10 * timeout);
    for (const waiting of [...this.#waiting]) if (Date.now() - waiting.started > limit) waiting.release();
    if (this.#waiting.size === 0 || timeout <= 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      Promise.all([...this.#waiting].map((waiting) => waiting.done)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout))),
    ]);
    clearTimeout(timer);
  }

  // Packs batches (in shard and sequence order) into calls within the bounds; with `perShard`, a
  // call holds one shard's batches only.
  #pack(
    batches: readonly Batch[],
    perShard: boolean,
    bounds: { series: number; changes: number; bytes: number },
  ): Batch[][] {
    const calls: Batch[][] = [];
    let call: Batch[] = [];
    let series = 0;
    let changes = 0;
    let bytes = 0;
    for (const batch of batches) {
      if (perShard && call.length > 0 && call[0].shard !== batch.shard) {
        calls.push(call);
        call = [];
        series = changes = bytes = 0;
      }
      if (
        call.length > 0 &&
        (series + batch.series > bounds.series || changes + batch.values > bounds.changes ||
          bytes + batch.bytes > bounds.bytes)
      ) {
        calls.push(call);
        call = [];
        series = changes = bytes = 0;
      }
      call.push(batch);
      series += batch.series;
      changes += batch.values;
      bytes += batch.bytes;
    }
    if (call.length > 0) calls.push(call);
    return calls;
  }

  // Confirms the batches a call applied (or had applied before). A batch applies only after the
  // one before it in its shard, so its confirmation is that of every batch before it.
  // Returns how many were refused for their place.
  #settle(batches: readonly Batch[], reply: unknown[] | null, beat: boolean): number {
    this.stats.rejected += Number(reply?.[0] ?? 0) || 0;
    let refused = 0;
    for (let b = 0; b < batches.length; b++) {
      const status = Number(reply?.[b + 1]);
      const state = this.#shards[batches[b].shard];
      if (status === 1 || status === 2) state.confirmed = Math.max(state.confirmed, batches[b].seq);
      else refused++;
    }
    this.#dropConfirmed();
    if (beat) this.#lastBeat = Date.now();
    return refused;
  }

  #call(batches: readonly Batch[], beat: boolean, settled: (reply: unknown) => void): Promise<unknown> {
    const options = this.#options;
    const keys: string[] = [];
    const args: Argument[] = [
      String(options.expireSeconds),
      "0",
      beat ? this.#identity.instanceId : "",
      String(options.instanceTtlSeconds * 1000),
      String(options.expireSeconds * 1100),
      String(TRIM_STEP),
      String(batches.length),
    ];
    for (const batch of batches) {
      const known = batch.seq - 1 <= this.#shards[batch.shard].confirmed;
      args.push(String(keys.length), String(batch.seq), known ? "1" : "0", batch.changes);
      for (const key of batch.keys) keys.push(key);
    }
    if (beat) {
      keys.push(instancesKey(options.keyPrefix));
      args[1] = String(keys.length);
    }
    return FLUSH_SCRIPT.then((script) => this.#transport.run(script, keys, args, settled));
  }
}

/**
 * The bytes a string takes in a request, as JSON (Upstash's REST API): UTF-8, quotes, escapes
 * and a separator. An estimate from above for control characters.
 */
export function requestBytes(text: string): number {
  let bytes = text.length + 3;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20) bytes += 5;
    else if (code === 0x22 || code === 0x5c) bytes += 1;
    else if (code >= 0x80) bytes += code < 0x800 ? 1 : 2;
  }
  return bytes;
}

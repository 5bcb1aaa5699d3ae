// Exemplars in the arena: the latest exemplar of a value (a counter's, a histogram bucket's), as
// each thread recorded it, in a slot of that thread's own. A collection reads every thread's
// slot of a value and shows the one with the largest timestamp.
//
//   chunk   a thread's block of slots, allocated under the mutex when the thread needs one (8
//           slots, then twice as many each time, up to 128) and announced by a record of the log.
//           Its first word counts the slots claimed: the thread claims the next one without a
//           lock, writing whose it is (the series' record, the value's index) before publishing
//           the count, so a reader that sees the count sees who owns the slot
//   slot    1,088 bytes: [sequence, series record, value index, cleared at] (Int32), then two
//           halves of 536 bytes, each one exemplar: [text length, unused] (Int32), value and
//           timestamp (Float64), then the labels as UTF-8, at most 512 bytes: 128 code points
//           of names and values, 4 bytes at most each, and 3 bytes per label for its framing,
//           which never take more than the 3 bytes that a name's first character (1 byte)
//           leaves unused
//
// Only the owning thread writes a slot, and without a lock: a seqlock over two halves. The
// sequence is twice the writes done, plus one during a write; write n goes into half n % 2, so
// the latest finished exemplar stays readable in the other half while the next one is written.
// The sequence goes odd, the fields are written with plain stores (the labels encoded straight
// into the half), and it goes even again. A reader copies the latest finished half out and
// checks that the writer has not started on that same half meanwhile (two writes later), and
// tries again if it has: it never sees half of one exemplar and half of another, never holds up
// the writer, and is never held up by a writer paused in the middle of a write. A removal
// (remove(), clear(), reset()) writes nothing of the owner's: it stores the sequence it saw in
// the slot's "cleared at" word, and a slot whose latest finished write came before it holds no
// exemplar; the owner's next write moves the sequence on.

import type { Exemplar, Labels } from "../../core/types.ts";
import type { Arena } from "./arena.ts";

/** The most bytes the labels of an exemplar take in a slot. */
export const TEXT_BYTES = 512;
const HEAD_BYTES = 16;
const HALF_HEAD_BYTES = 24;
const HALF_BYTES = HALF_HEAD_BYTES + TEXT_BYTES;
/** The bytes of one slot. */
export const SLOT_BYTES = HEAD_BYTES + 2 * HALF_BYTES;
const CHUNK_HEAD_BYTES = 8;
/** The slots of a thread's first chunk; each next one has twice as many, up to MAX_CHUNK_SLOTS. */
export const FIRST_CHUNK_SLOTS = 8;
/** The slots of a thread's largest chunks. */
export const MAX_CHUNK_SLOTS = 128;

// A slot's Int32 words, from its start.
const W_SEQ = 0;
const W_RECORD = 1;
const W_INDEX = 2;
const W_CLEARED = 3; // the sequence a removal saw
// A half's Int32 words and Float64 numbers, from the half's start.
const W_LENGTH = 0; // the text's bytes; -1 when the half holds no exemplar
const F_VALUE = 1; // after the two Int32 words (the second unused)
const F_TIME = 2; // NaN for an exemplar without a timestamp

/** Reads of a slot spoiled by its writer starting on the same half, before keeping the last read. */
const READ_RETRIES = 1000;

// Whether a removal at sequence `at` emptied the latest write finished at sequence `seq`: it came
// after that write, and before or during the next one (which may stay).
const cleared = (seq: number, at: number): boolean => {
  const finished = seq & ~1;
  return at === finished || at === ((finished + 1) | 0);
};

// The byte offset of the half that holds write `n` of the slot at `at`.
const halfOf = (at: number, n: number): number => at + HEAD_BYTES + (n & 1) * HALF_BYTES;

/** The bytes of a chunk of `slots` slots. */
export function chunkBytes(slots: number): number {
  return CHUNK_HEAD_BYTES + slots * SLOT_BYTES;
}

/** A thread's chunk of exemplar slots. */
export class ExemplarChunk {
  /** The thread that writes the chunk's slots. */
  readonly thread: number;
  /** How many slots it has. */
  readonly slots: number;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  /** Slots a reader has indexed so far (each thread's directory has its own chunk views). */
  seen = 0;

  constructor(arena: Arena, thread: number, offset: number, slots: number) {
    this.thread = thread;
    this.slots = slots;
    const bytes = chunkBytes(slots);
    this.i32 = arena.i32(offset, bytes / 4);
    this.f64 = arena.f64(offset, bytes / 8);
    this.u8 = arena.u8(offset, bytes);
  }

  /** The slots claimed so far. */
  get claimed(): number {
    return Atomics.load(this.i32, 0);
  }

  /** Slot `n`, to read. */
  slot(n: number): ExemplarSlot {
    return new ExemplarSlot(this, CHUNK_HEAD_BYTES + n * SLOT_BYTES);
  }

  /** Claims slot `n` for a value of a series and publishes it, empty. The owning thread only. */
  claim(n: number, record: number, index: number): ExemplarSlot {
    const slot = this.slot(n);
    const w = slot.at >> 2;
    this.i32[w + W_RECORD] = record;
    this.i32[w + W_INDEX] = index;
    this.i32[(halfOf(slot.at, 0) >> 2) + W_LENGTH] = -1;
    this.i32[(halfOf(slot.at, 1) >> 2) + W_LENGTH] = -1;
    this.i32[w + W_CLEARED] = -1;
    // Published last: a reader that sees the count sees whose the slot is.
    Atomics.store(this.i32, 0, n + 1);
    return slot;
  }
}

/** One slot: one thread's latest exemplar of one value. */
export class ExemplarSlot {
  readonly chunk: ExemplarChunk;
  /** Its byte offset in the chunk. */
  readonly at: number;
  // The last exemplar read, and the writes finished when it was: read again once more are.
  #done = -1;
  #last: Exemplar | undefined;

  constructor(chunk: ExemplarChunk, at: number) {
    this.chunk = chunk;
    this.at = at;
  }

  /** The thread that writes the slot. */
  get thread(): number {
    return this.chunk.thread;
  }

  /** The record of the series the slot belongs to. */
  get record(): number {
    return this.chunk.i32[(this.at >> 2) + W_RECORD];
  }

  /** The index of the value it belongs to. */
  get index(): number {
    return this.chunk.i32[(this.at >> 2) + W_INDEX];
  }

  /** Writes an exemplar over the slot's. The owning thread only; no lock, no allocation. */
  write(exemplar: Exemplar): void {
    const { i32, f64, u8 } = this.chunk;
    const w = this.at >> 2;
    // Read-modify-writes, as the carry sequence's: the plain stores stay between them.
    const half = halfOf(this.at, (Atomics.add(i32, w + W_SEQ, 1) >> 1) + 1);
    const d = half >> 3;
    f64[d + F_VALUE] = exemplar.value;
    f64[d + F_TIME] = exemplar.timestamp ?? NaN;
    // Longer than the checks let through (-1): the half is left empty.
    i32[(half >> 2) + W_LENGTH] = encode(exemplar.labels, u8, half + HALF_HEAD_BYTES);
    Atomics.add(i32, w + W_SEQ, 1);
  }

  /**
   * The slot's exemplar, or undefined when it has none: the latest write finished. Never waits
   * for the writer. A read that the writer spoils, by starting on the same half meanwhile, is
   * tried again; after READ_RETRIES the last exemplar read is kept.
   */
  read(): Exemplar | undefined {
    const { i32, f64, u8 } = this.chunk;
    const w = this.at >> 2;
    for (let attempt = 0; attempt < READ_RETRIES; attempt++) {
      const seq = Atomics.load(i32, w + W_SEQ);
      if (cleared(seq, Atomics.load(i32, w + W_CLEARED))) return undefined;
      // The writes finished: the latest of them is in its half, whether another is under way or not.
      const done = seq >> 1;
      if (done === this.#done) return this.#last;
      const half = halfOf(this.at, done);
      const d = half >> 3;
      const length = Math.min(i32[(half >> 2) + W_LENGTH], TEXT_BYTES);
      const value = f64[d + F_VALUE];
      const timestamp = f64[d + F_TIME];
      const text = half + HALF_HEAD_BYTES;
      for (let i = 0; i < length; i++) copy[i] = u8[text + i];
      // A read-modify-write, not a load: on every CPU it orders the plain reads above before it.
      // The next write into this same half starts when the sequence passes 2 * done + 2 (the
      // sequence wraps around: only differences count).
      if (((Atomics.add(i32, w + W_SEQ, 0) - seq) | 0) > 2 - (seq & 1)) continue;
      this.#done = done;
      this.#last = length < 0 ? undefined : Object.freeze(
        Number.isNaN(timestamp)
          ? { labels: decode(length), value }
          : { labels: decode(length), value, timestamp },
      );
      return this.#last;
    }
    // The writer started on the half being read every time: the last exemplar read, unless
    // the slot was cleared since.
    return cleared(Atomics.load(i32, w + W_SEQ), Atomics.load(i32, w + W_CLEARED)) ? undefined : this.#last;
  }

  /**
   * Empties the slot: the series was removed. Writes only the "cleared at" word, never what the
   * owner writes; an exemplar the owner is writing at that very moment may stay.
   */
  clear(): void {
    const i32 = this.chunk.i32;
    const w = this.at >> 2;
    Atomics.store(i32, w + W_CLEARED, Atomics.load(i32, w + W_SEQ));
  }
}

// The labels of the exemplar being read, copied out of shared memory (decoders refuse it).
const copy = new Uint8Array(TEXT_BYTES);
const decoder = new TextDecoder();

// Writes labels into `out` from `at`, as [name, 0, value length (2 bytes, little-endian), value]
// per label, in UTF-8; returns the bytes written, or -1 when they take more than TEXT_BYTES.
function encode(labels: Labels, out: Uint8Array, at: number): number {
  const end = at + TEXT_BYTES;
  let n = at;
  for (const name in labels) {
    n = utf8(name, out, n, end);
    if (n < 0 || n + 3 > end) return -1;
    out[n] = 0;
    const start = n + 3;
    n = utf8(labels[name], out, start, end);
    if (n < 0) return -1;
    out[start - 2] = (n - start) & 0xff;
    out[start - 1] = (n - start) >> 8;
  }
  return n - at;
}

// Writes `text` as UTF-8 into `out` from `n`, up to `end`; returns where it ends, or -1 when it
// does not fit.
function utf8(text: string, out: Uint8Array, n: number, end: number): number {
  for (let i = 0; i < text.length; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      if (n >= end) return -1;
      out[n++] = c;
    } else if (c < 0x800) {
      if (n + 2 > end) return -1;
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
    } else if (
      c >= 0xd800 && c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      if (n + 4 > end) return -1;
      c = 0x10000 + ((c - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
      out[n++] = 0xf0 | (c >> 18);
      out[n++] = 0x80 | ((c >> 12) & 0x3f);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    } else {
      if (n + 3 > end) return -1;
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate, as TextEncoder writes it
      out[n++] = 0xe0 | (c >> 12);
      out[n++] = 0x80 | ((c >> 6) & 0x3f);
      out[n++] = 0x80 | (c & 0x3f);
    }
  }
  return n;
}

// Reads the labels `encode` wrote, from the first `length` bytes of `copy`.
function decode(length: number): Labels {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < length) {
    let end = i;
    while (end < length && copy[end] !== 0) end++;
    if (end + 3 > length) break;
    const name = decoder.decode(copy.subarray(i, end));
    const start = end + 3;
    const stop = Math.min(length, start + (copy[end + 1] | (copy[end + 2] << 8)));
    labels[name] = decoder.decode(copy.subarray(start, stop));
    i = stop;
  }
  return Object.freeze(labels);
}

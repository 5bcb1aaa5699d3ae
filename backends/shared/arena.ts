// The shared arena: one growable SharedArrayBuffer that every thread of an application maps.
//
//   header     fixed words: magic, version, the mutex, counters, the record chunk directory
//   records    an append-only log of fixed-size records (metrics, series, pages, threads,
//              removals), in chunks that double in size; its length is published last, so a
//              reader sees whole records only, without a lock
//   blobs      UTF-8 text the records point to (a metric's definition, a series' labels)
//   pages      per-thread value pages: a thread writes only its own pages, so an update is a plain
//              store, and a collection adds up the threads' pages
//
// Everything is allocated from the end (a bump pointer), growing the buffer; nothing is freed.
// Appending (records, blobs, pages) happens under the mutex; reading never takes it.

/** Values per page: 1,024 numbers, 8 KiB. A series never straddles two pages. */
export const PAGE_VALUES = 1024;

const MAGIC = 0x74687573; // "thus"
const VERSION = 1;
const RECORD_WORDS = 8; // 32 bytes
const FIRST_CHUNK_RECORDS = 1024;
const CHUNKS = 24; // 1,024 * (2^24 - 1) records: more than the buffer can hold

// Header words (Int32 indices).
const H_MAGIC = 0;
const H_VERSION = 1;
/** The mutex word: 0 when free, else the holder's thread index + 1. */
export const H_LOCK = 2;
const H_RECORDS = 3; // records published
const H_END = 4; // bump pointer, bytes
const H_THREADS = 5; // threads that joined
const H_POSITIONS = 6; // value positions handed out
const H_CHUNKS = 8; // CHUNKS words: byte offset of each record chunk, 0 until allocated
/** The header's Float64 slot where the mutex holder writes when it took the lock (Unix ms). */
export const F_LOCK_TIME = (H_CHUNKS + CHUNKS) / 2;
const HEADER_BYTES = (F_LOCK_TIME + 1) * 8;

/** The kinds of record. */
export const KIND = { metric: 1, series: 2, page: 3, thread: 4, remove: 5, revive: 6 } as const;

/** One record of the log: its kind and up to seven integer fields. */
export type Record = Int32Array;

/**
 * The buffer, and views of it. The views have fixed lengths (the header, each chunk of records,
 * each page): engines index those as fast as plain arrays, unlike views that follow a growable
 * buffer's length.
 */
export class Arena {
  readonly buffer: SharedArrayBuffer;
  /** The header words (the mutex among them). */
  readonly header: Int32Array;
  /** The header's numbers (the time the mutex was taken). */
  readonly headerF64: Float64Array;
  #chunks: Int32Array[] = [];

  /**
   * Maps a buffer, checking that it is a theus arena; with `create`, lays it out first.
   *
   * @throws {TypeError} For a buffer that is not a growable SharedArrayBuffer holding an arena.
   */
  constructor(buffer: SharedArrayBuffer, create = false) {
    if (!(buffer instanceof SharedArrayBuffer) || !buffer.growable || buffer.byteLength < HEADER_BYTES) {
      throw new TypeError("Invalid shared memory handle: its buffer is not a growable SharedArrayBuffer");
    }
    this.buffer = buffer;
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.headerF64 = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    if (create) {
      this.header[H_VERSION] = VERSION;
      this.header[H_END] = HEADER_BYTES;
      Atomics.store(this.header, H_MAGIC, MAGIC);
    } else if (Atomics.load(this.header, H_MAGIC) !== MAGIC || this.header[H_VERSION] !== VERSION) {
      throw new TypeError("Invalid shared memory handle: its buffer holds no theus arena of this version");
    }
  }

  /** Creates an empty arena that can grow to `maxBytes`. */
  static create(maxBytes: number): Arena {
    const buffer = new SharedArrayBuffer(HEADER_BYTES, { maxByteLength: maxBytes });
    return new Arena(buffer, true);
  }

  /** Records published so far. */
  get records(): number {
    return Atomics.load(this.header, H_RECORDS);
  }

  /** A new thread index; the first is 0, the thread that created the arena. */
  joinThread(): number {
    return Atomics.add(this.header, H_THREADS, 1);
  }

  /**
   * Where record `n` is: the view of its chunk and the index of its first word there (its kind;
   * its fields follow).
   */
  record(n: number): [chunk: Int32Array, at: number] {
    // Chunk k holds FIRST_CHUNK_RECORDS * 2^k records, from record FIRST_CHUNK_RECORDS * (2^k - 1).
    const k = 31 - Math.clz32(Math.floor(n / FIRST_CHUNK_RECORDS) + 1);
    let chunk = this.#chunks[k];
    if (chunk === undefined) {
      const words = FIRST_CHUNK_RECORDS * 2 ** k * RECORD_WORDS;
      chunk = this.#chunks[k] = new Int32Array(this.buffer, Atomics.load(this.header, H_CHUNKS + k), words);
    }
    return [chunk, (n - FIRST_CHUNK_RECORDS * (2 ** k - 1)) * RECORD_WORDS];
  }

  // --- under the mutex ---

  /** Appends records and publishes them; returns the number of the first. Mutex held. */
  append(records: readonly (readonly number[])[]): number {
    const first = this.header[H_RECORDS];
    for (let i = 0; i < records.length; i++) {
      const n = first + i;
      const k = 31 - Math.clz32(Math.floor(n / FIRST_CHUNK_RECORDS) + 1);
      if (this.header[H_CHUNKS + k] === 0) {
        Atomics.store(
          this.header,
          H_CHUNKS + k,
          this.allocate(FIRST_CHUNK_RECORDS * 2 ** k * RECORD_WORDS * 4),
        );
      }
      const [chunk, at] = this.record(n);
      chunk.set(records[i], at);
    }
    // Published last: a reader that sees the new count sees the records.
    Atomics.store(this.header, H_RECORDS, first + records.length);
    return first;
  }

  /** Hands out `width` consecutive value positions that do not straddle a page. Mutex held. */
  positions(width: number): number {
    let start = this.header[H_POSITIONS];
    const inPage = start % PAGE_VALUES;
    if (inPage + width > PAGE_VALUES) start += PAGE_VALUES - inPage;
    this.header[H_POSITIONS] = start + width;
    return start;
  }

  /** Allocates zeroed bytes (8-aligned) at the end, growing the buffer. Mutex held. */
  allocate(bytes: number): number {
    const at = this.header[H_END];
    const end = at + Math.ceil(bytes / 8) * 8;
    if (end > this.buffer.byteLength) {
      if (end > this.buffer.maxByteLength) {
        throw new RangeError(
          `The shared memory arena is full (${this.buffer.maxByteLength} bytes): give shareMemory() a larger maxBytes`,
        );
      }
      // Grown by half again at least, so that growing stays rare.
      this.buffer.grow(
        Math.min(this.buffer.maxByteLength, Math.max(end, Math.ceil(this.buffer.byteLength * 1.5))),
      );
    }
    this.header[H_END] = end;
    return at;
  }

  /** Writes text as UTF-8 at the end and returns where and how long. Mutex held. */
  writeText(text: string): [offset: number, length: number] {
    const bytes = encoder.encode(text);
    const at = this.allocate(bytes.length);
    new Uint8Array(this.buffer, at, bytes.length).set(bytes);
    return [at, bytes.length];
  }

  /** Reads text written by `writeText`. */
  readText(offset: number, length: number): string {
    // Decoders refuse shared memory: copy the bytes out first.
    const bytes = new Uint8Array(length);
    bytes.set(new Uint8Array(this.buffer, offset, length));
    return decoder.decode(bytes);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

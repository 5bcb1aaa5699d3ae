// The shared arena: one shared WebAssembly.Memory that every thread of an application maps. No
// WebAssembly code runs: the memory is used for what it is, a SharedArrayBuffer that grows and
// that every thread sees grown. A growable SharedArrayBuffer would do the same, but engines index
// views of it more slowly (JavaScriptCore by 4 to 7 times, on every update); the buffer of a
// shared memory is a plain SharedArrayBuffer, indexed as fast as any.
//
//   header     fixed words: magic, version, the mutex, counters, the record chunk directory
//   records    an append-only log of fixed-size records (metrics, series, pages, threads,
//              removals, exemplar chunks), in chunks that double in size; its length is
//              published last, so a reader sees whole records only, without a lock
//   blobs      UTF-8 text the records point to (a metric's definition, a series' labels)
//   pages      per-thread value pages: a thread writes only its own pages, so an update is a plain
//              store, and a collection adds up the threads' pages. A page holds each value twice
//              over: a Float64 and an Int32 part, the value being their sum; whole increments go
//              to the Int32 part (an integer add is the cheapest update there is), others to the
//              Float64 part
//   exemplars  per-thread chunks of exemplar slots (see exemplars.ts), allocated when a thread
//              first records an exemplar: a thread writes only its own slots, under a seqlock
//
// Everything is allocated from the end (a bump pointer), growing the buffer; nothing is freed. A
// removed series of a windowed metric (a summary's slice that has left its window, which nobody
// writes again) is marked free in its record (`free`), and any thread gives it whole to a new
// series of the metric, its labels text rewritten in place (`rename`); a counter tells the other
// threads to read such records again.
// Appending (records, blobs, pages, exemplar chunks) happens under the mutex; reading never
// takes it.

/** Values per page: 1,024 values, 12 KiB (a Float64 and an Int32 part each). A series never straddles two pages. */
export const PAGE_VALUES = 1024;
/** The bytes of a page: the Float64 parts, then the Int32 parts. */
export const PAGE_BYTES = PAGE_VALUES * 12;
/** The bytes of a thread's block: its heartbeat (Float64, Unix ms), then its carry sequence (Int32). */
export const THREAD_BYTES = 16;

const MAGIC = 0x74687573; // "thus"
const VERSION = 4;
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
const H_MAX_PAGES = 7; // the memory's maximum, in 64 KiB pages
const H_CHUNKS = 8; // CHUNKS words: byte offset of each record chunk, 0 until allocated
/** The header's Float64 slot where the mutex holder writes when it took the lock (Unix ms). */
export const F_LOCK_TIME = (H_CHUNKS + CHUNKS) / 2;
// Renames: goes up whenever a series record is freed or given to a new series (see `rename`).
const H_RENAMES = (F_LOCK_TIME + 1) * 2;
const HEADER_BYTES = (H_RENAMES + 2) * 4;
// The word of a series record that counts when it was freed and given to a new series (its fields
// use words 1 to 6): odd while the series is free, removed and never written again.
const GENERATION = 7;

/** The kinds of record. */
export const KIND = { metric: 1, series: 2, page: 3, thread: 4, remove: 5, revive: 6, exemplars: 7 } as const;

/** One record of the log: its kind and up to seven integer fields. */
export type Record = Int32Array;

const WASM_PAGE = 65536;

/**
 * The memory, and views of it: the header, each chunk of records, each page, each of fixed
 * length.
 */
export class Arena {
  readonly memory: WebAssembly.Memory;
  /** The header words (the mutex among them). */
  readonly header: Int32Array;
  /** The header's numbers (the time the mutex was taken). */
  readonly headerF64: Float64Array;
  #chunks: Int32Array[] = [];

  /**
   * Maps a memory, checking that it is a theus arena; with `maxBytes`, lays it out first.
   *
   * @throws {TypeError} For a memory that is not shared or holds no arena.
   */
  constructor(memory: WebAssembly.Memory, maxBytes?: number) {
    const buffer: unknown = memory instanceof WebAssembly.Memory ? memory.buffer : undefined;
    if (!(buffer instanceof SharedArrayBuffer)) {
      throw new TypeError("Invalid shared memory handle: its memory is not a shared WebAssembly.Memory");
    }
    this.memory = memory;
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.headerF64 = new Float64Array(buffer, 0, HEADER_BYTES / 8);
    if (maxBytes !== undefined) {
      this.header[H_VERSION] = VERSION;
      this.header[H_END] = HEADER_BYTES;
      this.header[H_MAX_PAGES] = Math.floor(maxBytes / WASM_PAGE);
      Atomics.store(this.header, H_MAGIC, MAGIC);
    } else if (Atomics.load(this.header, H_MAGIC) !== MAGIC || this.header[H_VERSION] !== VERSION) {
      throw new TypeError("Invalid shared memory handle: its buffer holds no theus arena of this version");
    }
  }

  /** Creates an empty arena that can grow to `maxBytes` (a multiple of 64 KiB). */
  static create(maxBytes: number): Arena {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: maxBytes / WASM_PAGE, shared: true });
    return new Arena(memory, maxBytes);
  }

  /** The most the arena can grow to, in bytes. */
  get maxBytes(): number {
    return this.header[H_MAX_PAGES] * WASM_PAGE;
  }

  /**
   * The memory's buffer, covering at least `end` bytes. Another thread may have grown the
   * memory: an engine can hand out the buffer it knew before, and `grow(0)` brings it up to date.
   */
  buffer(end = 0): SharedArrayBuffer {
    let buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    if (buffer.byteLength < end) {
      this.memory.grow(0);
      buffer = this.memory.buffer as unknown as SharedArrayBuffer;
    }
    return buffer;
  }

  /** A Float64 view of `length` numbers at byte `offset`. */
  f64(offset: number, length: number): Float64Array {
    return new Float64Array(this.buffer(offset + length * 8), offset, length);
  }

  /** An Int32 view of `length` numbers at byte `offset`. */
  i32(offset: number, length: number): Int32Array {
    return new Int32Array(this.buffer(offset + length * 4), offset, length);
  }

  /** A byte view of `length` bytes at byte `offset`. */
  u8(offset: number, length: number): Uint8Array {
    return new Uint8Array(this.buffer(offset + length), offset, length);
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
      chunk = this.#chunks[k] = this.i32(Atomics.load(this.header, H_CHUNKS + k), words);
    }
    return [chunk, (n - FIRST_CHUNK_RECORDS * (2 ** k - 1)) * RECORD_WORDS];
  }

  /** Renames so far, in every thread: a thread that saw fewer has labels to read again. */
  get renames(): number {
    return Atomics.load(this.header, H_RENAMES);
  }

  /** The generation of series record `n`: odd while it is free (see `free`). */
  generation(n: number): number {
    const [chunk, at] = this.record(n);
    return Atomics.load(chunk, at + GENERATION);
  }

  /** Bytes used so far, header included. */
  get used(): number {
    return Atomics.load(this.header, H_END);
  }

  // --- under the mutex ---

  /**
   * Marks series record `n` free: a removed series of a windowed metric, which no thread writes
   * again, whose record any thread may give to a new series of the metric. Mutex held.
   */
  free(n: number): void {
    const [chunk, at] = this.record(n);
    Atomics.add(chunk, at + GENERATION, 1);
    Atomics.add(this.header, H_RENAMES, 1);
  }

  /**
   * Gives series record `n` (a free series, which no thread writes any more) to a new series:
   * its labels text is now `length` bytes at `offset`. The text is written first and the
   * generation counted last, so a thread that reads the new generation reads the new text.
   * Mutex held.
   */
  rename(n: number, offset: number, length: number): void {
    const [chunk, at] = this.record(n);
    Atomics.store(chunk, at + 2, offset);
    Atomics.store(chunk, at + 3, length);
    Atomics.add(chunk, at + GENERATION, 1);
    Atomics.add(this.header, H_RENAMES, 1);
  }

  /**
   * Writes text as UTF-8 over the text at `offset`, `length` bytes long, when it fits in the
   * space that text was given (8-byte aligned), else at the end; returns where and how long.
   * Mutex held.
   */
  rewriteText(offset: number, length: number, text: string): [offset: number, length: number] {
    const bytes = encoder.encode(text);
    if (bytes.length > Math.ceil(length / 8) * 8) return this.writeText(text);
    new Uint8Array(this.buffer(offset + bytes.length), offset, bytes.length).set(bytes);
    return [offset, bytes.length];
  }

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

  /** Allocates zeroed bytes (8-aligned) at the end, growing the memory. Mutex held. */
  allocate(bytes: number): number {
    const at = this.header[H_END];
    const end = at + Math.ceil(bytes / 8) * 8;
    const size = this.buffer(end).byteLength;
    if (end > size) {
      if (end > this.maxBytes) {
        throw new RangeError(
          `The shared memory arena is full (${this.maxBytes} bytes): give shareMemory() a larger maxBytes`,
        );
      }
      // Grown by half again at least, so that growing stays rare.
      const target = Math.min(this.maxBytes, Math.max(end, Math.ceil(size * 1.5)));
      this.memory.grow(Math.ceil(target / WASM_PAGE) - size / WASM_PAGE);
    }
    this.header[H_END] = end;
    return at;
  }

  /** Writes text as UTF-8 at the end and returns where and how long. Mutex held. */
  writeText(text: string): [offset: number, length: number] {
    const bytes = encoder.encode(text);
    const at = this.allocate(bytes.length);
    new Uint8Array(this.buffer(at + bytes.length), at, bytes.length).set(bytes);
    return [at, bytes.length];
  }

  /** Reads text written by `writeText`. */
  readText(offset: number, length: number): string {
    // Decoders refuse shared memory: copy the bytes out first.
    const bytes = new Uint8Array(length);
    bytes.set(new Uint8Array(this.buffer(offset + length), offset, length));
    return decoder.decode(bytes);
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

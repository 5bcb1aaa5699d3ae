// Cooperative time slicing: long collections and expositions give the event loop a turn.

/** Milliseconds of work between two turns of the event loop. */
export const SLICE_MS = 5;

type Immediate = (callback: () => void) => unknown;
const immediate = (globalThis as { setImmediate?: Immediate }).setImmediate;

/** Resolves on a later turn of the event loop (setImmediate where there is one). */
export const yieldToEventLoop: () => Promise<void> = typeof immediate === "function"
  ? () => new Promise((resolve) => immediate(resolve))
  : () => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * Tracks the time a loop has held the event loop. Check `due()` (cheap, synchronous) on each
 * iteration and `await pause()` when it says so.
 */
export class Slicer {
  #started = performance.now();
  #count = 0;

  /** Whether the loop has worked for a slice; reads the clock every 1024 calls. */
  due(): boolean {
    return (++this.#count & 1023) === 0 && performance.now() - this.#started >= SLICE_MS;
  }

  /** Whether the loop has worked for a slice, from the clock now: for loops of long steps. */
  overdue(): boolean {
    return performance.now() - this.#started >= SLICE_MS;
  }

  /** Gives the event loop a turn and starts a new slice. */
  async pause(): Promise<void> {
    await yieldToEventLoop();
    this.#started = performance.now();
  }
}

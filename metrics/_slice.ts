// Cooperative time slicing: long collections and expositions give the event loop a turn.

/** Milliseconds of work between two turns of the event loop. */
export const SLICE_MS = 5;

type Immediate = (callback: () => void) => unknown;
const immediate = (globalThis as { setImmediate?: Immediate }).setImmediate;

/** Resolves on a later turn of the event loop (setImmediate where there is one). */
export const yieldToEventLoop: () => Promise<void> = typeof immediate === "function"
  ? () => new Promise((resolve) => immediate(resolve))
  : () => new Promise((resolve) => setTimeout(resolve, 0));

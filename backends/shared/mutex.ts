// The arena's mutex: a word in shared memory, taken with a compare-and-exchange and waited for
// with Atomics.waitAsync, so a waiting thread never blocks its event loop. Where a runtime has no
// waitAsync, the waiter polls on a short timer instead.
//
// What it guards is short and synchronous (appending records, allocating pages), so a holder
// that keeps it for LEASE_MS has died: a worker terminated in the middle. A waiter then takes it
// over. Records are published only as the last step of a critical section, so one cut short
// leaves nothing half written behind.

import { F_LOCK_TIME, H_LOCK } from "./arena.ts";

/** How long a holder may keep the mutex before it counts as dead. */
export const LEASE_MS = 2000;

type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
  timeout?: number,
) => { async: boolean; value: Promise<string> | string };

/**
 * Takes the mutex for thread `me`, waiting as long as it takes without blocking, and taking it
 * over from a holder that kept it longer than LEASE_MS.
 */
export async function lock(i32: Int32Array, f64: Float64Array, me: number): Promise<void> {
  const mine = me + 1;
  for (;;) {
    const holder = Atomics.compareExchange(i32, H_LOCK, 0, mine);
    if (holder === 0) {
      f64[F_LOCK_TIME] = Date.now();
      return;
    }
    const held = Date.now() - f64[F_LOCK_TIME];
    if (held > LEASE_MS && Atomics.compareExchange(i32, H_LOCK, holder, mine) === holder) {
      f64[F_LOCK_TIME] = Date.now();
      return;
    }
    await waitFor(i32, holder, Math.max(1, LEASE_MS - held));
  }
}

/** Releases the mutex and wakes one waiter. */
export function unlock(i32: Int32Array, me: number): void {
  if (Atomics.compareExchange(i32, H_LOCK, me + 1, 0) === me + 1) Atomics.notify(i32, H_LOCK, 1);
}

/** Runs `fn` holding the mutex. */
export async function withLock<T>(i32: Int32Array, f64: Float64Array, me: number, fn: () => T): Promise<T> {
  await lock(i32, f64, me);
  try {
    return fn();
  } finally {
    unlock(i32, me);
  }
}

// Resolves when the mutex word changes from `holder`, or after `ms`.
async function waitFor(i32: Int32Array, holder: number, ms: number): Promise<void> {
  const waitAsync = (Atomics as unknown as { waitAsync?: WaitAsync }).waitAsync;
  if (waitAsync !== undefined) {
    const result = waitAsync(i32, H_LOCK, holder, ms);
    if (!result.async) return;
    // Node does not count a pending waitAsync as work: a timer keeps the thread alive meanwhile,
    // so that a thread awaiting flush() does not end before its series are registered.
    const alive = setTimeout(() => {}, ms + 10);
    try {
      await result.value;
    } finally {
      clearTimeout(alive);
    }
    return;
  }
  await new Promise((resolve) => setTimeout(resolve, Math.min(ms, 2)));
}

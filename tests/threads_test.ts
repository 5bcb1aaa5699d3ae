// tests/_threads.ts and tests/_thread_side.ts: worker threads started, talked to, failing and
// terminated the same way on Deno, Bun and Node, with SharedArrayBuffers shared between them.

import assert from "node:assert/strict";
import { runtime, test } from "./_harness.ts";
import { inThread } from "./_thread_side.ts";
import { startThread, type TestThread } from "./_threads.ts";

const ECHO = new URL("./fixtures/echo_thread.ts", import.meta.url);
/** Bound of every wait for a thread's answer. */
const ANSWER_MS = 20_000;

/** A growable SharedArrayBuffer (ES2024), which the ES2023 lib of the Node build does not declare. */
interface GrowableSharedArrayBuffer extends SharedArrayBuffer {
  readonly growable: boolean;
  readonly maxByteLength: number;
  grow(newByteLength: number): void;
}

function growable(byteLength: number, maxByteLength: number): GrowableSharedArrayBuffer {
  const Growable = SharedArrayBuffer as unknown as new (
    byteLength: number,
    options: { maxByteLength: number },
  ) => GrowableSharedArrayBuffer;
  return new Growable(byteLength, { maxByteLength });
}

/** Rejects if `promise` has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts the echo fixture and waits until it is ready. */
async function echoThread(label: string, shared?: SharedArrayBuffer): Promise<TestThread> {
  const thread = startThread(ECHO, { label, shared });
  try {
    assert.deepEqual(await thread.next(ANSWER_MS), { ready: true, label, inThread: true });
  } catch (error) {
    await thread.terminate();
    throw error;
  }
  return thread;
}

test(`a thread echoes messages back in order on ${runtime}`, async () => {
  assert.equal(inThread(), false);
  const thread = await echoThread("echo");
  try {
    const values = Array.from({ length: 200 }, (_, i) => i % 3 === 0 ? { i, nested: [i, `${i}`] } : i);
    for (const value of values) thread.post({ op: "echo", value });
    const answers = [];
    for (let i = 0; i < values.length; i++) answers.push(await thread.next(ANSWER_MS));
    assert.deepEqual(answers, values);
  } finally {
    await thread.terminate();
  }
});

test(`a growable SharedArrayBuffer in the thread data is shared, growth included, on ${runtime}`, async () => {
  const shared = growable(8, 64);
  const view = new Int32Array(shared);
  const thread = await echoThread("shared", shared);
  try {
    thread.post({ op: "store", index: 1, value: 42 });
    assert.equal(await thread.next(ANSWER_MS), "stored");
    assert.equal(Atomics.load(view, 1), 42);

    thread.post({ op: "length" });
    assert.equal(await thread.next(ANSWER_MS), 8);
    shared.grow(32);
    thread.post({ op: "length" });
    assert.equal(await thread.next(ANSWER_MS), 32);

    // Beyond the first 8 bytes: the thread's view follows the growth, and so does the parent's.
    thread.post({ op: "store", index: 6, value: 7 });
    assert.equal(await thread.next(ANSWER_MS), "stored");
    assert.equal(view.length, 8);
    assert.equal(Atomics.load(view, 6), 7);
  } finally {
    await thread.terminate();
  }
});

test(`a shared WebAssembly.Memory in the thread data grows for both sides, on ${runtime}`, async () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 8, shared: true });
  const thread = startThread(ECHO, { label: "memory", memory });
  try {
    assert.deepEqual(await thread.next(ANSWER_MS), { ready: true, label: "memory", inThread: true });
    // The thread grows it and writes beyond the old end; the parent reads there, after grow(0).
    thread.post({ op: "grow", pages: 2, index: (2 * 65536) / 4 + 1, value: 99 });
    assert.equal(await thread.next(ANSWER_MS), 3 * 65536);
    memory.grow(0);
    const buffer = memory.buffer as unknown as SharedArrayBuffer;
    assert.equal(buffer.byteLength, 3 * 65536);
    assert.equal(Atomics.load(new Int32Array(buffer), (2 * 65536) / 4 + 1), 99);
    // And the other way round.
    memory.grow(1);
    Atomics.store(new Int32Array(memory.buffer as unknown as SharedArrayBuffer), (3 * 65536) / 4, 5);
    thread.post({ op: "load", index: (3 * 65536) / 4 });
    assert.equal(await thread.next(ANSWER_MS), 5);
  } finally {
    await thread.terminate();
  }
});

test(`Atomics.waitAsync() in a thread wakes up on Atomics.notify() from the parent on ${runtime}`, async () => {
  const shared = new SharedArrayBuffer(16);
  const view = new Int32Array(shared);
  const thread = await echoThread("wait", shared);
  try {
    thread.post({ op: "wait", index: 2 });
    assert.equal(await thread.next(ANSWER_MS), "waiting");
    Atomics.store(view, 2, 5);
    assert.equal(Atomics.notify(view, 2), 1);
    assert.deepEqual(await thread.next(ANSWER_MS), { woke: "ok", value: 5 });
  } finally {
    await thread.terminate();
  }
});

test(`an error thrown in a thread rejects next() with its message on ${runtime}`, async () => {
  for (const op of ["throw", "throwLater"]) {
    const thread = await echoThread(op);
    try {
      const message = `${op}: boom in the thread`;
      thread.post({ op, message });
      await assert.rejects(thread.next(ANSWER_MS), (error: Error) => {
        assert.equal(error.message, message);
        return true;
      });
      // A failed thread is terminated, and says so from then on.
      await within(thread.ended, ANSWER_MS, `${op}: ended`);
      await assert.rejects(thread.next(ANSWER_MS), { message });
      assert.throws(() => thread.post({ op: "echo", value: 1 }), /has ended or failed/);
    } finally {
      await thread.terminate();
    }
  }
});

test(`terminate() ends a thread spinning in a synchronous loop on ${runtime}`, async () => {
  const thread = await echoThread("spin");
  let ended = false;
  void thread.ended.then(() => ended = true);
  thread.post({ op: "spin" });
  assert.equal(await thread.next(ANSWER_MS), "spinning");
  // Still spinning: it answers nothing.
  thread.post({ op: "echo", value: "anyone there?" });
  await assert.rejects(thread.next(300), /No message from thread echo_thread\.[jt]s within 300 ms/);
  assert.equal(ended, false);
  await within(thread.terminate(), ANSWER_MS, "terminate()");
  await within(thread.ended, ANSWER_MS, "ended");
  assert.equal(ended, true);
  await assert.rejects(thread.next(ANSWER_MS), /was terminated/);
});

test(`a thread that ends by itself resolves ended and rejects next() on ${runtime}`, async () => {
  const thread = await echoThread("exit");
  try {
    const next = thread.next(ANSWER_MS);
    thread.post({ op: "exit" });
    await within(thread.ended, ANSWER_MS, "ended");
    await assert.rejects(next, /before sending a message/);
  } finally {
    await thread.terminate();
  }
});

test(`four threads run at once and all answer on ${runtime}`, async () => {
  const shared = new SharedArrayBuffer(16);
  const view = new Int32Array(shared);
  const labels = ["a", "b", "c", "d"];
  const threads = await Promise.all(labels.map((label) => echoThread(label, shared)));
  try {
    // All four are alive together: each one stores into its own slot, then echoes.
    threads.forEach((thread, i) => thread.post({ op: "store", index: i, value: 100 + i }));
    threads.forEach((thread, i) => thread.post({ op: "echo", value: labels[i] }));
    const answers = await Promise.all(
      threads.map(async (thread) => [await thread.next(ANSWER_MS), await thread.next(ANSWER_MS)]),
    );
    assert.deepEqual(answers, labels.map((label) => ["stored", label]));
    assert.deepEqual(Array.from(view), [100, 101, 102, 103]);
  } finally {
    await Promise.all(threads.map((thread) => thread.terminate()));
  }
});

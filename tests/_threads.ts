// Worker threads for tests, the same on Deno, Bun and Node: start a fixture module in a thread,
// talk to it, terminate it. The fixture imports tests/_thread_side.ts for its side.
//
// Deno and Bun run the web Worker, and the data goes as the first message; Node runs
// node:worker_threads, and the data goes as `workerData`. Both are structured clones, so
// SharedArrayBuffers (growable ones too) are shared, not copied. On Node the tests run from the
// build in dist/tests/, so a fixture URL ending in .ts is started as the .js next to it.
//
// Nothing waits without a bound: next() has a timeout, terminate() stops a thread even in a
// synchronous loop and gives up after TERMINATE_TIMEOUT_MS. A thread that fails (an uncaught
// error or rejection, a message that cannot be read) is terminated; a thread never keeps the
// process alive (Node, Bun: unref'd; Deno's test runner exits regardless). A thread's end by
// itself is seen on Node and Bun however it ends, on Deno only through self.close(): Deno tells
// the parent nothing, and _thread_side.ts reports that one.

import type { ThreadEnvelope } from "./_thread_side.ts";

/** A worker thread running a test fixture module. */
export interface TestThread {
  /** Sends a message (structured clone: SharedArrayBuffers are shared, not copied). */
  post(message: unknown): void;
  /** The next message from the thread, in order; rejects if the thread fails or exits first, or after `timeoutMs` (default 60 s). */
  next(timeoutMs?: number): Promise<unknown>;
  /** Terminates the thread (it may be in the middle of a loop); resolves once it is gone. */
  terminate(): Promise<void>;
  /** Resolves when the thread has ended, by itself or terminated. */
  readonly ended: Promise<void>;
}

/** The parts of node:worker_threads used here. */
interface NodeWorkerThreads {
  Worker: new (url: URL, options: { workerData: unknown }) => NodeWorker;
}

interface NodeWorker {
  postMessage(message: unknown): void;
  on(event: "message" | "messageerror" | "error" | "exit", listener: (value: unknown) => void): void;
  terminate(): Promise<number>;
  unref(): void;
}

/** The parts of the web Worker used here (Deno, Bun). */
interface WebWorker {
  postMessage(message: unknown): void;
  addEventListener(type: string, listener: (event: WebWorkerEvent) => void): void;
  terminate(): void;
  /** Bun only. */
  unref?: () => void;
}

interface WebWorkerEvent {
  data?: unknown;
  error?: unknown;
  message?: string;
  /** Bun's "close" event: the exit code. */
  code?: number;
  preventDefault(): void;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

// A specifier in a variable, so that type checkers on other runtimes do not try to resolve it.
const NODE_WORKER_THREADS = "node:worker_threads";
const nodeThreads: NodeWorkerThreads | undefined = runtime === "node"
  ? await import(NODE_WORKER_THREADS)
  : undefined;

const DEFAULT_NEXT_TIMEOUT_MS = 60_000;
/** How long terminate() waits for a thread to be gone. */
const TERMINATE_TIMEOUT_MS = 10_000;
/** Whether this runs from the tsc build, where fixtures are .js files. */
const BUILT = import.meta.url.endsWith(".js");

/** The file to run for `module`: on the build, the .js compiled from a .ts source. */
function runnable(module: URL): URL {
  if (!BUILT || !module.pathname.endsWith(".ts")) return module;
  const url = new URL(module.href);
  url.pathname = url.pathname.slice(0, -3) + ".js";
  return url;
}

/** Rejects after `ms` with `message`, unless `promise` settles first. */
function bounded<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function isEnvelope(value: unknown): value is ThreadEnvelope {
  return typeof value === "object" && value !== null && "theusThread" in value;
}

/** An error as the thread reported it: its message as thrown, its stack if there is one. */
function threadError(name: string, message: string, stack?: string): Error {
  const error = new Error(message);
  error.name = name;
  if (stack) error.stack = stack;
  return error;
}

/**
 * The message of a web Worker's error event, the thread side could not report itself (an error
 * while loading the module): Deno says "Uncaught Error: boom", Bun a code frame then "error: boom".
 */
function eventError(event: WebWorkerEvent): Error {
  if (event.error instanceof Error) return event.error;
  const text = String(event.message ?? event.error ?? "unknown error");
  for (const line of text.split("\n")) {
    const match = /^\s*(?:Uncaught )?(?:\(in promise\) )?([A-Za-z]*Error|error): (.*)$/.exec(line);
    if (match) return threadError(match[1] === "error" ? "Error" : match[1], match[2]);
  }
  return new Error(text);
}

interface Waiter {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

class Thread implements TestThread {
  readonly ended: Promise<void>;
  readonly #name: string;
  readonly #received: unknown[] = [];
  readonly #waiters = new Set<Waiter>();
  /** Why next() rejects once the received messages are taken: the thread failed or ended. */
  #closed: Error | undefined;
  #gone = false;
  #endNow: () => void = () => {};
  #send: (message: unknown) => void = () => {};
  #kill: () => Promise<void> = () => Promise.resolve();
  #terminating: Promise<void> | undefined;

  constructor(module: URL, data: unknown) {
    const url = runnable(module);
    this.#name = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
    this.ended = new Promise((resolve) => this.#endNow = resolve);
    if (nodeThreads) this.#startNode(nodeThreads, url, data);
    else this.#startWeb(url, data);
  }

  #startNode(threads: NodeWorkerThreads, url: URL, data: unknown): void {
    const worker = new threads.Worker(url, { workerData: data });
    worker.unref();
    worker.on("message", (message) => this.#receive(message));
    worker.on("messageerror", (error) => this.#fail(error as Error));
    worker.on("error", (error) => this.#fail(error instanceof Error ? error : new Error(String(error))));
    worker.on("exit", (code) => this.#end(`exited with code ${code}`));
    this.#send = (message) => worker.postMessage(message);
    this.#kill = async () => {
      await worker.terminate();
    };
  }

  #startWeb(url: URL, data: unknown): void {
    const worker: WebWorker = new g.Worker(url.href, { type: "module" });
    worker.unref?.();
    worker.postMessage(data);
    worker.addEventListener("message", (event) => this.#receive(event.data));
    worker.addEventListener("messageerror", () => {
      this.#fail(new Error(`A message from thread ${this.#name} could not be deserialized`));
    });
    worker.addEventListener("error", (event) => {
      // Handled here: unhandled, Deno would take the whole process down.
      event.preventDefault();
      this.#fail(eventError(event));
    });
    this.#send = (message) => worker.postMessage(message);
    if (runtime === "bun") {
      // Bun says when a worker is gone: after terminate(), process.exit() or an uncaught error.
      const closed = new Promise<void>((resolve) => {
        worker.addEventListener("close", (event) => {
          this.#end(`exited with code ${event.code}`);
          resolve();
        });
      });
      this.#kill = () => {
        worker.terminate();
        return closed;
      };
    } else {
      // Deno's terminate() stops the thread at once, and there is no event to wait for.
      this.#kill = () => {
        worker.terminate();
        return Promise.resolve();
      };
    }
  }

  #receive(message: unknown): void {
    if (this.#closed) return;
    if (!isEnvelope(message)) return this.#deliver(message);
    switch (message.theusThread) {
      case "message":
        return this.#deliver(message.value);
      case "error":
        return this.#fail(threadError(message.name, message.message, message.stack));
      case "exit":
        return this.#end("closed itself");
    }
  }

  #deliver(value: unknown): void {
    const [waiter] = this.#waiters;
    if (waiter) {
      this.#waiters.delete(waiter);
      waiter.resolve(value);
    } else {
      this.#received.push(value);
    }
  }

  /** No more messages: next() rejects with `error` once the received ones are taken. */
  #close(error: Error): void {
    if (this.#closed) return;
    this.#closed = error;
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#waiters.clear();
  }

  #fail(error: Error): void {
    if (this.#closed) return;
    this.#close(error);
    void this.terminate().catch(() => {});
  }

  #end(how: string): void {
    this.#close(new Error(`Thread ${this.#name} ${how} before sending a message`));
    if (this.#gone) return;
    this.#gone = true;
    this.#endNow();
  }

  post(message: unknown): void {
    if (this.#closed) throw new Error(`Thread ${this.#name} has ended or failed: ${this.#closed.message}`);
    this.#send(message);
  }

  next(timeoutMs: number = DEFAULT_NEXT_TIMEOUT_MS): Promise<unknown> {
    if (this.#received.length > 0) return Promise.resolve(this.#received.shift());
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter);
        reject(new Error(`No message from thread ${this.#name} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter: Waiter = {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#waiters.add(waiter);
    });
  }

  terminate(): Promise<void> {
    this.#terminating ??= (async () => {
      this.#close(new Error(`Thread ${this.#name} was terminated before sending a message`));
      if (!this.#gone) {
        await bounded(
          this.#kill(),
          TERMINATE_TIMEOUT_MS,
          `Thread ${this.#name} was still running ${TERMINATE_TIMEOUT_MS} ms after terminate()`,
        );
      }
      this.#end("was terminated");
    })();
    return this.#terminating;
  }
}

/** Starts a thread on a fixture module (a URL), with data it reads through `threadData()`. */
export function startThread(module: URL, data?: unknown): TestThread {
  return new Thread(module, data);
}

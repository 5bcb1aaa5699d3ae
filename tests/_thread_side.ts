// The thread side of tests/_threads.ts, imported by fixture modules that run in worker threads:
// the start data, messages both ways, and whether this is a thread at all.
//
// Deno and Bun run fixtures in a web Worker: the parent's first message is the data, every later
// one is a message. Node runs them with node:worker_threads: the data is `workerData`. Whatever
// the thread sends travels in a ThreadEnvelope, so its errors (and, on Deno, its self.close())
// reach the parent on the same channel as its messages, in order. Importing this module on a
// main thread is harmless: inThread() is false there and the other functions throw.

/** What a thread posts to its parent: a message, an uncaught error, or its end. */
export type ThreadEnvelope =
  | { theusThread: "message"; value: unknown }
  | { theusThread: "error"; name: string; message: string; stack?: string }
  | { theusThread: "exit" };

/** The parts of node:worker_threads used here. */
interface NodeWorkerThreads {
  isMainThread: boolean;
  workerData: unknown;
  parentPort:
    | { postMessage(message: unknown): void; on(event: "message", fn: (m: unknown) => void): void }
    | null;
}

/** The parts of a web worker's global scope used here (Deno, Bun). */
interface WorkerScope {
  postMessage(message: unknown): void;
  addEventListener(type: string, listener: (event: WorkerScopeEvent) => void): void;
  close?: () => void;
}

interface WorkerScopeEvent {
  data?: unknown;
  error?: unknown;
  reason?: unknown;
  message?: string;
  preventDefault(): void;
}

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

// A specifier in a variable, so that type checkers on other runtimes do not try to resolve it.
const NODE_WORKER_THREADS = "node:worker_threads";
const node: NodeWorkerThreads | undefined = runtime === "node"
  ? await import(NODE_WORKER_THREADS)
  : undefined;

const inside: boolean = node
  ? !node.isMainThread && node.parentPort !== null
  : runtime === "bun"
  ? g.Bun.isMainThread === false
  : typeof g.WorkerGlobalScope === "function" && g instanceof g.WorkerGlobalScope;

let postEnvelope: (envelope: ThreadEnvelope) => void = () => {
  throw new Error("Not in a worker thread");
};
let data: Promise<unknown> = Promise.reject(new Error("Not in a worker thread"));
data.catch(() => {}); // Rejected only for whoever asks.

const handlers: ((message: unknown) => void)[] = [];
/** Messages that came before the first handler. */
const early: unknown[] = [];

function dispatch(message: unknown): void {
  if (handlers.length === 0) early.push(message);
  for (const handler of handlers) handler(message);
}

function errorEnvelope(error: unknown, fallback?: string): ThreadEnvelope {
  if (error instanceof Error) {
    return { theusThread: "error", name: error.name, message: error.message, stack: error.stack };
  }
  return {
    theusThread: "error",
    name: "Error",
    message: error === undefined ? String(fallback) : String(error),
  };
}

if (inside && node) {
  const port = node.parentPort!;
  postEnvelope = (envelope) => port.postMessage(envelope);
  data = Promise.resolve(node.workerData);
  // Node reports uncaught errors to the parent itself, as Error objects.
  port.on("message", dispatch);
} else if (inside) {
  const scope = g as WorkerScope;
  postEnvelope = (envelope) => scope.postMessage(envelope);
  let started: (value: unknown) => void = () => {};
  data = new Promise((resolve) => started = resolve);
  let first = true;
  scope.addEventListener("message", (event) => {
    if (first) {
      first = false;
      started(event.data);
    } else {
      dispatch(event.data);
    }
  });
  // Uncaught errors go to the parent with their message as thrown (the runtimes' own error
  // events carry "Uncaught Error: …" on Deno and a code frame on Bun). Deno then keeps the
  // thread alive, Bun ends it: the parent terminates a failed thread either way.
  scope.addEventListener("error", (event) => {
    postEnvelope(errorEnvelope(event.error, event.message));
    event.preventDefault();
  });
  scope.addEventListener("unhandledrejection", (event) => {
    postEnvelope(errorEnvelope(event.reason));
    event.preventDefault();
  });
  // Deno tells the parent nothing when a worker closes itself; Bun has no self.close().
  const close = scope.close;
  if (runtime === "deno" && typeof close === "function") {
    scope.close = () => {
      postEnvelope({ theusThread: "exit" });
      close.call(scope);
    };
  }
}

/** The data the parent started this thread with. */
export function threadData(): Promise<unknown> {
  return data;
}

/** Sends a message to the parent. */
export function send(message: unknown): void {
  postEnvelope({ theusThread: "message", value: message });
}

/** Calls `handler` for each message from the parent. */
export function onMessage(handler: (message: unknown) => void): void {
  if (!inside) throw new Error("Not in a worker thread");
  handlers.push(handler);
  if (handlers.length === 1 && early.length > 0) {
    const queued = early.splice(0);
    for (const message of queued) handler(message);
  }
}

/** Whether this code runs in a worker thread (false on a main thread). */
export function inThread(): boolean {
  return inside;
}

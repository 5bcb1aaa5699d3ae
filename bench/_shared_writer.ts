// The worker thread of bench/shared.ts, and what both sides share: the label sets, and the way a
// thread writes a counter's series. Started with startWriter() below, the same on Deno, Bun and
// Node; it then joins the arenas it is sent and writes the series it is asked for. Imported on the
// main thread, it only exports.
//
// Deno and Bun run it as a web Worker, Node through node:worker_threads; messages are structured
// clones, so a growable SharedArrayBuffer is shared, not copied. A thread runs this module's own
// URL: on Node, the .js of the tsc build.

import { Counter, flush, type SharedMemoryHandle, shareMemory } from "../mod.ts";

export const LABEL_NAMES = ["method", "status"];
const M100 = Array.from({ length: 100 }, (_, i) => `M${i}`);
const S1000 = Array.from({ length: 1000 }, (_, i) => `S${String(i).padStart(3, "0")}`);

/** Label set `i`: 100,000 distinct ones. */
export function labelsOf(i: number): { method: string; status: string } {
  return { method: M100[i % 100], status: S1000[Math.floor(i / 100) % 1000] };
}

/** Adds `add` to series 0 … `series` - 1 of counter `name` (not registered), then waits for the arena. */
async function writeSeries(name: string, series: number, add: number): Promise<void> {
  const counter = new Counter({ name, help: "h", labelNames: LABEL_NAMES, registry: null });
  for (let i = 0; i < series; i++) counter.labels(labelsOf(i)).inc(add);
  await flush();
}

/** What the main thread asks a writer. */
export type Command =
  | { op: "join"; handle: SharedMemoryHandle }
  | { op: "write"; name: string; series: number; add: number };

/** A writer's answer to one command: done, or the error it failed with. */
export type Reply = { ok: true } | { ok: false; error: string };

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const runtime: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

/** The parts of node:worker_threads used here. */
interface NodeWorkerThreads {
  isMainThread: boolean;
  parentPort:
    | { postMessage(message: unknown): void; on(event: "message", fn: (m: unknown) => void): void }
    | null;
  Worker: new (url: URL) => {
    postMessage(message: unknown): void;
    on(event: "message" | "error" | "exit", listener: (value: unknown) => void): void;
    terminate(): Promise<number>;
    unref(): void;
  };
}

// A specifier in a variable, so that type checkers on other runtimes do not try to resolve it.
const NODE_WORKER_THREADS = "node:worker_threads";
const node: NodeWorkerThreads | undefined = runtime === "node"
  ? await import(NODE_WORKER_THREADS)
  : undefined;

const inWorker: boolean = node
  ? !node.isMainThread
  : runtime === "bun"
  ? g.Bun.isMainThread === false
  : typeof g.WorkerGlobalScope === "function" && g instanceof g.WorkerGlobalScope;

async function perform(command: Command): Promise<Reply> {
  try {
    if (command.op === "join") await shareMemory(command.handle);
    else await writeSeries(command.name, command.series, command.add);
    return { ok: true };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.stack ?? error.message : String(error) };
  }
}

if (inWorker) {
  // One command at a time, in order.
  let queue = Promise.resolve();
  const post: (reply: Reply) => void = node ? (reply) => node.parentPort!.postMessage(reply) : (reply) => {
    g.postMessage(reply);
  };
  const receive = (command: unknown) => {
    queue = queue.then(async () => post(await perform(command as Command)));
  };
  if (node) node.parentPort!.on("message", receive);
  else g.addEventListener("message", (event: { data: unknown }) => receive(event.data));
}

/** A writer thread, as the main thread sees it. */
export interface Writer {
  /** Sends a command and waits for its reply; rejects when the thread fails, or after `timeoutMs`. */
  ask(command: Command, timeoutMs?: number): Promise<void>;
  terminate(): Promise<void>;
}

/** Starts a writer thread running this module. */
export function startWriter(): Writer {
  const url = new URL(import.meta.url); // on Node, the .js of the tsc build
  const waiting: { resolve(reply: Reply): void; reject(error: Error): void }[] = [];
  let failed: Error | undefined;
  const fail = (error: Error) => {
    failed ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(error);
  };
  const receive = (reply: unknown) => waiting.shift()?.resolve(reply as Reply);
  let send: (command: Command) => void;
  let terminate: () => Promise<void>;
  if (node) {
    const worker = new node.Worker(url);
    worker.unref();
    worker.on("message", receive);
    worker.on("error", (error) => fail(error instanceof Error ? error : new Error(String(error))));
    worker.on("exit", (code) => fail(new Error(`the writer thread exited with code ${code}`)));
    send = (command) => worker.postMessage(command);
    terminate = async () => void (await worker.terminate());
  } else {
    const worker = new g.Worker(url.href, { type: "module" });
    worker.unref?.(); // Bun
    worker.addEventListener("message", (event: { data: unknown }) => receive(event.data));
    worker.addEventListener(
      "error",
      (event: { message?: string; error?: unknown; preventDefault(): void }) => {
        event.preventDefault(); // unhandled, Deno would end the process
        fail(event.error instanceof Error ? event.error : new Error(String(event.message ?? event.error)));
      },
    );
    send = (command) => worker.postMessage(command);
    terminate = () => Promise.resolve(worker.terminate());
  }
  return {
    ask(command, timeoutMs = 60_000) {
      if (failed !== undefined) return Promise.reject(failed);
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no answer from a writer thread to "${command.op}" within ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiting.push({
          resolve: (reply) => {
            clearTimeout(timer);
            if (reply.ok) resolve();
            else reject(new Error(`a writer thread failed: ${reply.error}`));
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        send(command);
      });
    },
    terminate,
  };
}

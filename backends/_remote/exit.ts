// Flushes remote backends when the process ends: when the event loop empties (Node and Bun
// `beforeExit`, Deno `beforeunload`) and on SIGINT/SIGTERM, after which the signal's default
// behaviour is restored. Runtimes without these hooks (edge isolates) flush per invocation.

type Hook = () => Promise<void> | undefined;

const hooks = new Set<Hook>();
let installed = false;
const SIGNALS = ["SIGINT", "SIGTERM"] as const;
const GRACE_MS = 5000;

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;

/**
 * Registers a flush to run at exit; it returns undefined when it has nothing to do.
 *
 * @returns A function that removes the hook again.
 */
export function onExit(hook: Hook): () => void {
  hooks.add(hook);
  if (!installed) {
    installed = true;
    try {
      install();
    } catch {
      // No exit hooks here (or no permission): flushes still run on the interval and on demand.
    }
  }
  return () => hooks.delete(hook);
}

function runHooks(): Promise<void> | undefined {
  const pending = [...hooks].map((hook) => hook()).filter((p) => p !== undefined);
  return pending.length === 0 ? undefined : Promise.all(pending).then(() => undefined);
}

// When the event loop empties, flush; the flush keeps the loop alive, and the event comes
// again once it is done. With Redis away every flush fails, so give up after GRACE_MS of
// flushing that never finished the job, or the process would never end.
let endingSince: number | undefined;

function onLoopEmpty(): void {
  const now = Date.now();
  endingSince ??= now;
  if (now - endingSince >= GRACE_MS) return;
  if (runHooks() === undefined) endingSince = undefined;
}

function withGrace(work: Promise<void> | undefined): Promise<void> {
  if (work === undefined) return Promise.resolve();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, GRACE_MS)));
  return Promise.race([work, grace]).finally(() => clearTimeout(timer));
}

function install(): void {
  const deno = runtime.Deno;
  if (deno?.addSignalListener !== undefined) {
    // Scheduling work in beforeunload keeps the loop alive; it fires again once that is done.
    runtime.addEventListener?.("beforeunload", onLoopEmpty);
    for (const signal of SIGNALS) {
      const listener = () => {
        deno.removeSignalListener(signal, listener);
        void withGrace(runHooks()).then(() => deno.exit(signal === "SIGINT" ? 130 : 143));
      };
      deno.addSignalListener(signal, listener);
    }
    return;
  }
  const process = runtime.process;
  if (typeof process?.on !== "function") return;
  process.on("beforeExit", onLoopEmpty);
  for (const signal of SIGNALS) {
    const listener = () => {
      process.removeListener(signal, listener);
      void withGrace(runHooks()).then(() => {
        // Without other listeners, end the process as the signal would have.
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
    };
    process.on(signal, listener);
  }
}

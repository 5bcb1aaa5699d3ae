// One test API over Deno.test, bun:test and node:test, so every suite runs on all three.

/** The runtime running the tests. */
export type RuntimeName = "deno" | "bun" | "node";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** The runtime running the tests. */
export const runtime: RuntimeName = g.Deno ? "deno" : g.Bun ? "bun" : "node";

/** Options of {@linkcode test}. */
export interface TestOptions {
  /** Milliseconds before the test fails; 60 s by default. */
  timeout?: number;
}

type TestFn = () => void | Promise<void>;
type Register = (name: string, fn: TestFn, options: TestOptions) => void;

// Specifiers in variables, so that type checkers on other runtimes do not try to resolve them.
const BUN_TEST = "bun:test";
const NODE_TEST = "node:test";

const register: Register = await (async (): Promise<Register> => {
  if (runtime === "deno") {
    return (name, fn, options) =>
      g.Deno.test({
        name,
        fn: withTimeout(fn, options.timeout ?? 60_000, name),
        sanitizeOps: false,
        sanitizeResources: false,
      });
  }
  if (runtime === "bun") {
    const bun = await import(BUN_TEST);
    return (name, fn, options) => bun.test(name, fn, options.timeout ?? 60_000);
  }
  const node = await import(NODE_TEST);
  return (name, fn, options) => node.test(name, { timeout: options.timeout ?? 60_000 }, fn);
})();

function withTimeout(fn: TestFn, ms: number, name: string): () => Promise<void> {
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Test "${name}" timed out after ${ms} ms`)), ms);
    });
    try {
      await Promise.race([fn(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/**
 * Registers a test with the runtime's own runner.
 *
 * @param name What the test shows, as a sentence: `Counter.inc() rejects negative values`.
 * @param fn The test body.
 * @param options The timeout.
 */
export function test(name: string, fn: TestFn, options: TestOptions = {}): void {
  register(name, fn, options);
}

// What differs between runtimes, read defensively: the environment, the working directory,
// files and timers. Web APIs only at module level; runtime globals are looked up when called.

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;

/** Reads an environment variable; undefined where there is no environment or no permission. */
export function readEnv(name: string): string | undefined {
  try {
    const deno = runtime.Deno;
    if (deno?.env !== undefined) {
      const status = deno.permissions?.querySync?.({ name: "env", variable: name });
      if (status !== undefined && status.state !== "granted") return undefined;
      return deno.env.get(name);
    }
    const value = runtime.process?.env?.[name];
    return typeof value === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The process's working directory; undefined where there is none (edge isolates). */
export function workingDirectory(): string | undefined {
  try {
    return runtime.Deno?.cwd?.() ?? runtime.process?.cwd?.();
  } catch {
    return undefined;
  }
}

/** Reads a text file (Deno, or Node and Bun through `node:fs`); rejects where files cannot be read. */
export async function readTextFile(path: string): Promise<string> {
  if (runtime.Deno?.readTextFile !== undefined) return await runtime.Deno.readTextFile(path);
  const fs = runtime.process?.getBuiltinModule?.("node:fs");
  if (fs === undefined) throw new Error("this runtime cannot read files");
  return await fs.promises.readFile(path, "utf8");
}

/** Keeps a timer from holding the process open (Node and Bun `unref()`, Deno `unrefTimer`). */
export function unrefTimer(timer: unknown): void {
  const t = timer as { unref?: () => void };
  if (typeof t?.unref === "function") t.unref();
  else runtime.Deno?.unrefTimer?.(timer);
}

/** The message of an error, or the thrown value as text. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

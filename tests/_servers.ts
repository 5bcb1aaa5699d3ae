// Child processes and loopback servers for end-to-end tests: start a service and wait for the
// line that says it listens, wait for a condition with a deadline, stop everything for sure.

import { type ChildProcess, spawn } from "node:child_process";
import { createServer as createHttpServer, request, type Server } from "node:http";
import { createServer } from "node:net";

/** Returns a free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A child process started by {@linkcode startProcess}. */
export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The last 16 KiB of its stdout and stderr together. */
  output(): string;
  /** Whether it has exited and closed its output. */
  closed(): boolean;
  /** Resolves with the first match of `pattern` in its output; rejects when it exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Safe to call twice. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of {@linkcode startProcess}. */
export interface StartProcessOptions {
  /** What error messages call it. */
  name: string;
  command: string;
  args?: string[];
  cwd?: string;
  /** Variables to set; `undefined` removes one inherited from this process. */
  env?: Record<string, string | undefined>;
}

const KEEP = 16 * 1024;

/**
 * Starts a child process with its output captured.
 *
 * @throws {Error} When the command cannot be started.
 */
export async function startProcess(options: StartProcessOptions): Promise<Child> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env })) {
    if (value !== undefined) env[key] = value;
  }
  const child = spawn(options.command, options.args ?? [], {
    cwd: options.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const listeners = new Set<() => void>();
  const take = (chunk: string) => {
    output = (output + chunk).slice(-KEEP);
    for (const listener of listeners) listener();
  };
  child.stdout!.setEncoding("utf8").on("data", take);
  child.stderr!.setEncoding("utf8").on("data", take);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  // "close" comes after the last output, so a line printed just before exiting is not missed.
  let closed = false;
  child.once("close", () => {
    closed = true;
    for (const listener of listeners) listener();
  });
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", resolve);
    child.once("error", (error) => reject(new Error(`Cannot start ${options.name}: ${error.message}`)));
  });

  const describe = () => `${options.name} (${options.command} ${(options.args ?? []).join(" ")})`;
  return {
    name: options.name,
    process: child,
    output: () => output,
    closed: () => closed,
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = output.match(pattern);
          if (match) return done(() => resolve(match));
          if (closed) {
            const how = child.exitCode ?? child.signalCode;
            done(() =>
              reject(new Error(`${describe()} exited (${how}) before printing ${pattern}:\n${output}`))
            );
          }
        };
        const timer = setTimeout(() => {
          done(() =>
            reject(new Error(`${describe()} did not print ${pattern} within ${timeoutMs} ms:\n${output}`))
          );
        }, timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        listeners.add(check);
        check();
      });
    },
    async stop(graceMs = 5_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Options of {@linkcode waitUntil}. */
export interface WaitOptions {
  /** The deadline, 60 s by default. */
  timeoutMs?: number;
  /** The pause between two probes, 250 ms by default. */
  intervalMs?: number;
  /** Checked before each probe: a reason to give up at once (a server died), or undefined. */
  abort?: () => string | undefined;
}

/**
 * Calls `probe` every `intervalMs` until it returns something other than `undefined`, and
 * returns that. Errors thrown by `probe` count as "not yet"; the last one is reported.
 *
 * @throws {Error} When the deadline passes first.
 */
export async function waitUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 250, abort } = options;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const reason = abort?.();
    if (reason !== undefined) throw new Error(`Gave up waiting for ${what}: ${reason}`);
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() >= deadline) {
      const why = last === undefined ? "" : `; last error: ${last instanceof Error ? last.message : last}`;
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** One request that went through a {@linkcode RecordingProxy}. */
export interface ProxiedExchange {
  method: string;
  path: string;
  accept: string | undefined;
  acceptEncoding: string | undefined;
  status: number;
  contentType: string | undefined;
  contentEncoding: string | undefined;
}

/** A transparent HTTP proxy to one upstream that records every exchange. */
export interface RecordingProxy {
  readonly port: number;
  readonly exchanges: readonly ProxiedExchange[];
  close(): Promise<void>;
}

/**
 * Starts a loopback HTTP proxy that forwards every request unchanged to `127.0.0.1:upstream`
 * and streams the answer back byte for byte (compressed bodies stay compressed), recording
 * the headers that matter for content negotiation.
 */
export function recordingProxy(upstream: number): Promise<RecordingProxy> {
  const exchanges: ProxiedExchange[] = [];
  const server: Server = createHttpServer((req, res) => {
    const forward = request(
      { host: "127.0.0.1", port: upstream, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        exchanges.push({
          method: req.method ?? "",
          path: req.url ?? "",
          accept: req.headers.accept,
          acceptEncoding: req.headers["accept-encoding"],
          status: answer.statusCode ?? 0,
          contentType: answer.headers["content-type"],
          contentEncoding: answer.headers["content-encoding"],
        });
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`Proxy error: ${error.message}\n`);
    });
    req.pipe(forward);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({
        port: typeof address === "object" && address !== null ? address.port : 0,
        exchanges,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits at least `ms` by the monotonic clock (a timer may fire a little early). */
export async function atLeast(ms: number): Promise<void> {
  const start = performance.now();
  await sleep(ms);
  while (performance.now() - start < ms + 1) await sleep(1);
}

/** Rejects when `promise` has not settled after `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Waited ${ms} ms for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILL by pid (Deno's `ChildProcess.kill()` takes only the first signal it is given, see
 * tests/_redis.ts), then waits until the process is gone.
 *
 * @throws {Error} When it is still running 10 s later.
 */
export async function killProcess(child: Child): Promise<void> {
  const pid = child.process.pid;
  if (pid === undefined) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
  const deadline = Date.now() + 10_000;
  while ((!child.closed() || alive(pid)) && Date.now() < deadline) await sleep(20);
  if (alive(pid)) throw new Error(`${child.name} (pid ${pid}) is still running after SIGKILL`);
}

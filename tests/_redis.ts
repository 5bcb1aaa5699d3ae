// A real redis-server for tests: started on a free loopback port, in a temporary directory,
// and controllable (pause, resume, restart, kill client connections). A missing redis-server
// is an error, never a skip.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort } from "./_servers.ts";

export { freePort };

/** A running redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Runs redis-cli against the server and returns its output. */
  cli(...args: string[]): Promise<string>;
  /** Stops the process with SIGSTOP: connections stay open, nothing answers. */
  pause(): void;
  /** Resumes a paused server. */
  resume(): void;
  /** Shuts down (saving the AOF when enabled) and starts again on the same port and directory. */
  restart(): Promise<void>;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startRedis}. */
export interface StartRedisOptions {
  /** Whether to persist with an append-only file, so a restart keeps the data. */
  appendOnly?: boolean;
  /** Start on this port instead of a free one. */
  port?: number;
}

const REDIS_SERVER = "redis-server";

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 10_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")} failed: ${stderr || error.message}`));
      else resolve(stdout.trim());
    });
  });
}

async function waitForPing(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}: ${log()}`);
    try {
      if ((await run("redis-cli", ["-p", String(port), "ping"])) === "PONG") return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer within 10 s: ${log()}`);
}

/**
 * Starts a redis-server on a free loopback port.
 *
 * @throws {Error} When redis-server is not installed or does not start.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  const port = options.port ?? await freePort();
  const dir = mkdtempSync(join(tmpdir(), "theus-redis-"));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    options.appendOnly ? "yes" : "no",
    "--appendfsync",
    "always",
  ];
  let child: ChildProcess;
  let output = "";
  const launch = async () => {
    output = "";
    child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
    const spawnError = new Promise<never>((_, reject) =>
      child.once(
        "error",
        (error) =>
          reject(
            new Error(
              `Cannot start ${REDIS_SERVER}: ${error.message}. Install the Debian package redis-server`,
            ),
          ),
      )
    );
    child.stdout?.on("data", (chunk) => (output += chunk));
    child.stderr?.on("data", (chunk) => (output += chunk));
    await Promise.race([waitForPing(port, child, () => output), spawnError]);
  };
  // Signals go by pid: on Deno a child spawned through node:child_process takes only its first
  // ChildProcess.kill() and then reports that signal as its exit, even while it still runs.
  const signal = (name: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(child.pid, name);
    } catch {
      // already gone
    }
  };
  const alive = () => {
    try {
      if (child.pid === undefined) return false;
      process.kill(child.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const exited = async () => {
    const deadline = Date.now() + 10_000;
    while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (alive()) throw new Error(`redis-server (pid ${child.pid}) did not exit within 10 s`);
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    cli: (...cliArgs) => run("redis-cli", ["-p", String(port), ...cliArgs]),
    pause: () => signal("SIGSTOP"),
    resume: () => signal("SIGCONT"),
    async restart() {
      signal("SIGCONT");
      signal("SIGTERM");
      await exited();
      await launch();
    },
    async stop() {
      signal("SIGCONT");
      signal("SIGKILL");
      await exited();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

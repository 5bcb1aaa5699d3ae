// A real Redis Cluster for tests: three masters (no replicas) on free loopback ports, each in a
// temporary directory, made a cluster by `redis-cli --cluster create`, and controllable (pause
// and resume one master, run redis-cli against one node, list the keys of every master). A
// missing redis-server or redis-cli is an error, never a skip.
//
// A cluster node also listens on its port + 10000 (the cluster bus), so a node's port is chosen
// with both free. The node timeout is 30 s: a master paused for a few seconds is never failed
// over (there is no replica to promote anyway), and the cluster state stays ok.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { freePort } from "./_servers.ts";

/** A node's address. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

/** A master and the slots it serves, as inclusive [first, last] ranges. */
export interface ClusterMaster {
  readonly id: string;
  readonly port: number;
  readonly slots: readonly (readonly [number, number])[];
}

/** A running Redis Cluster. */
export interface RedisCluster {
  /** Every node, 127.0.0.1 and its port. */
  readonly nodes: readonly ClusterNode[];
  /** Every node as `"127.0.0.1:<port>"`, as the backend's `cluster` option takes them. */
  readonly addresses: readonly string[];
  /** The masters and their slot ranges, as the first node that answers sees them (`CLUSTER NODES`). */
  masters(): Promise<ClusterMaster[]>;
  /**
   * The port of the master that serves a slot, as the cluster formed (no test moves slots), so
   * that it answers while a node is paused.
   */
  portOfSlot(slot: number): number;
  /** Runs redis-cli against one node (no redirections followed) and returns its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The last 8 KiB a node printed (its log), for failure messages. */
  log(port: number): string;
  /** Stops a node with SIGSTOP: its connections stay open, nothing answers. */
  pause(port: number): void;
  /** Resumes a paused node (SIGCONT). */
  resume(port: number): void;
  /** `KEYS pattern` on every master: master port -> its matching keys, sorted. */
  keysPerMaster(pattern: string): Promise<Map<number, string[]>>;
  /** Kills every node and removes their directories. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@linkcode startCluster}. */
export interface StartClusterOptions {
  /** How many masters, 3 by default (the least `redis-cli --cluster create` accepts). */
  masters?: number;
}

const REDIS_SERVER = "redis-server";
const REDIS_CLI = "redis-cli";
const BUS_OFFSET = 10_000;
const NODE_TIMEOUT_MS = 30_000;

function run(command: string, args: string[], timeout = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout, maxBuffer: 256 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        const hint = (error as { code?: unknown }).code === "ENOENT"
          ? `. Install the Debian package redis-server (it brings ${REDIS_CLI} too)`
          : "";
        reject(new Error(`${command} ${args.join(" ")} failed: ${stderr || error.message}${hint}`));
      } else {
        resolve(stdout.trim());
      }
    });
  });
}

function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A free loopback port whose cluster bus port (port + 10000) is free too, and not in `taken`. */
async function clusterPort(taken: ReadonlySet<number>): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = await freePort();
    if (port + BUS_OFFSET > 65_535 || taken.has(port) || taken.has(port + BUS_OFFSET)) continue;
    if (await isFree(port + BUS_OFFSET)) return port;
  }
  throw new Error("Found no free port P with P + 10000 free too, in 200 attempts");
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// A node process. Signals go by pid: on Deno a child spawned through node:child_process takes
// only its first ChildProcess.kill() (see tests/_redis.ts).
interface NodeProcess {
  readonly port: number;
  readonly dir: string;
  readonly child: ChildProcess;
  output(): string;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number | undefined, name: NodeJS.Signals): void {
  try {
    if (pid !== undefined) process.kill(pid, name);
  } catch {
    // already gone
  }
}

async function startNode(port: number): Promise<NodeProcess> {
  const dir = mkdtempSync(join(tmpdir(), "theus-cluster-"));
  const args = [
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    join(dir, `nodes-${port}.conf`),
    "--cluster-node-timeout",
    String(NODE_TIMEOUT_MS),
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
  ];
  let output = "";
  const child = spawn(REDIS_SERVER, args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (chunk) => (output = (output + chunk).slice(-8192)));
  child.stderr?.on("data", (chunk) => (output = (output + chunk).slice(-8192)));
  const node: NodeProcess = { port, dir, child, output: () => output };
  const spawnError = new Promise<never>((_, reject) =>
    child.once("error", (error) =>
      reject(
        new Error(`Cannot start ${REDIS_SERVER}: ${error.message}. Install the Debian package redis-server`),
      ))
  );
  const ping = (async () => {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${REDIS_SERVER} on port ${port} exited (${child.exitCode ?? child.signalCode}): ${output}`,
        );
      }
      try {
        if ((await run(REDIS_CLI, ["-p", String(port), "ping"])) === "PONG") return;
      } catch (error) {
        // Not up yet, unless redis-cli itself is missing.
        if (/ENOENT|Install the Debian/.test(String(error))) throw error;
      }
      await sleep(50);
    }
    throw new Error(`${REDIS_SERVER} on port ${port} did not answer within 10 s: ${output}`);
  })();
  try {
    await Promise.race([ping, spawnError]);
  } catch (error) {
    await killNode(node);
    throw error;
  }
  return node;
}

async function killNode(node: NodeProcess): Promise<void> {
  const pid = node.child.pid;
  signal(pid, "SIGCONT");
  signal(pid, "SIGKILL");
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) {
    // A killed child stays a zombie until reaped; Node reaps it with the "exit" event.
    if (node.child.exitCode !== null || node.child.signalCode === "SIGKILL") break;
    await sleep(20);
  }
  rmSync(node.dir, { recursive: true, force: true });
}

/** Parses `CLUSTER NODES` into its masters with their slot ranges. */
export function parseClusterNodes(text: string): ClusterMaster[] {
  const masters: ClusterMaster[] = [];
  for (const line of text.split("\n")) {
    const parts = line.trim().split(" ");
    if (parts.length < 8 || !parts[2].split(",").includes("master")) continue;
    const port = Number(/:(\d+)(?:@|$)/.exec(parts[1])?.[1]);
    const slots: [number, number][] = [];
    for (const range of parts.slice(8)) {
      if (range.startsWith("[")) continue; // a slot being migrated or imported
      const [first, last] = range.split("-").map(Number);
      slots.push([first, last ?? first]);
    }
    masters.push({ id: parts[0], port, slots: slots.sort((a, b) => a[0] - b[0]) });
  }
  return masters.sort((a, b) => a.port - b.port);
}

/**
 * Starts a Redis Cluster of `masters` masters and no replicas, and waits until every node says
 * `cluster_state:ok`.
 *
 * @throws {Error} When redis-server or redis-cli is missing, or the cluster does not form.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const count = options.masters ?? 3;
  const nodes: NodeProcess[] = [];
  let stopped = false;
  // Should the test process end without stop() (a test runner's timeout), the nodes go with it.
  const onExit = () => {
    for (const node of nodes) {
      signal(node.child.pid, "SIGCONT");
      signal(node.child.pid, "SIGKILL");
    }
  };
  process.on("exit", onExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off("exit", onExit);
    await Promise.all(nodes.map(killNode));
  };
  try {
    const taken = new Set<number>();
    for (let i = 0; i < count; i++) {
      // A port found free may be taken before the server binds it: try another one.
      for (let attempt = 1;; attempt++) {
        const port = await clusterPort(taken);
        taken.add(port).add(port + BUS_OFFSET);
        try {
          nodes.push(await startNode(port));
          break;
        } catch (error) {
          if (attempt >= 5 || !/Address already in use|bind/i.test(String(error))) throw error;
        }
      }
    }
    const addresses = nodes.map((node) => `127.0.0.1:${node.port}`);
    await run(
      REDIS_CLI,
      ["--cluster", "create", ...addresses, "--cluster-replicas", "0", "--cluster-yes"],
      60_000,
    );
    const deadline = Date.now() + 30_000;
    for (const node of nodes) {
      for (;;) {
        const info = await run(REDIS_CLI, ["-p", String(node.port), "CLUSTER", "INFO"]);
        const masters = parseClusterNodes(
          await run(REDIS_CLI, ["-p", String(node.port), "CLUSTER", "NODES"]),
        );
        const served = masters.reduce((n, m) => n + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0);
        if (/cluster_state:ok/.test(info) && masters.length === count && served === 16_384) break;
        if (Date.now() > deadline) {
          throw new Error(
            `The cluster did not reach cluster_state:ok within 30 s; node ${node.port}:\n${info}`,
          );
        }
        await sleep(100);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }

  const ports = new Set(nodes.map((node) => node.port));
  const nodeOf = (port: number) => {
    const node = nodes.find((n) => n.port === port);
    if (node === undefined) throw new Error(`No cluster node on port ${port} (nodes: ${[...ports]})`);
    return node;
  };
  const cli = (port: number, ...args: string[]) => run(REDIS_CLI, ["-p", String(nodeOf(port).port), ...args]);
  const masters = async (): Promise<ClusterMaster[]> => {
    let last: unknown;
    for (const node of nodes) {
      try {
        // A paused node does not answer: ask the next one.
        return parseClusterNodes(await run(REDIS_CLI, ["-p", String(node.port), "CLUSTER", "NODES"], 1000));
      } catch (error) {
        last = error;
      }
    }
    throw new Error(`No cluster node answered CLUSTER NODES: ${last}`);
  };
  const formed = await masters();
  return {
    nodes: nodes.map((node) => ({ host: "127.0.0.1", port: node.port })),
    addresses: nodes.map((node) => `127.0.0.1:${node.port}`),
    masters,
    portOfSlot(slot) {
      const master = formed.find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b));
      if (master === undefined) throw new Error(`No master serves slot ${slot}`);
      return master.port;
    },
    cli,
    log: (port) => nodeOf(port).output(),
    pause: (port) => signal(nodeOf(port).child.pid, "SIGSTOP"),
    resume: (port) => signal(nodeOf(port).child.pid, "SIGCONT"),
    async keysPerMaster(pattern) {
      const out = new Map<number, string[]>();
      for (const master of await masters()) {
        // One key a line (no key of these tests holds a newline).
        const text = await cli(master.port, "--raw", "KEYS", pattern);
        out.set(master.port, text === "" ? [] : text.split("\n").sort());
      }
      return out;
    },
    stop,
  };
}

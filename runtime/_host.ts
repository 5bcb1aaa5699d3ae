// What the runtime tells about its process, read defensively: each reading is undefined where
// the runtime does not measure that quantity (or only pretends to: Bun's and Deno's stand-ins
// for Node APIs that always answer zero are left out), and nothing throws. Runtime globals and
// built-in modules are looked up when called, through `process.getBuiltinModule`, so the module
// loads anywhere, Workers included, and bundlers see no `node:` import.

// deno-lint-ignore no-explicit-any
const host = globalThis as any;

/** The runtimes told apart. */
export type RuntimeName = "node" | "deno" | "bun" | "workerd" | "other";

/** The runtime this code runs on. */
export function runtimeName(): RuntimeName {
  if (typeof host.Deno?.version?.deno === "string") return "deno";
  if (typeof host.Bun?.version === "string") return "bun";
  // workerd can hide navigator (no_global_navigator) and present a Node-like process
  // (nodejs_compat): WebSocketPair is its own.
  if (host.navigator?.userAgent === "Cloudflare-Workers" || typeof host.WebSocketPair === "function") {
    return "workerd";
  }
  if (typeof host.process?.versions?.node === "string" && typeof host.process?.cpuUsage === "function") {
    return "node";
  }
  return "other";
}

// Looked up once each: getBuiltinModule costs tens of microseconds a call on Bun.
// deno-lint-ignore no-explicit-any
const builtins = new Map<string, any>();
// deno-lint-ignore no-explicit-any
function builtin(name: string): any {
  if (!builtins.has(name)) {
    try {
      builtins.set(name, host.process?.getBuiltinModule?.(name));
    } catch {
      builtins.set(name, undefined);
    }
  }
  return builtins.get(name);
}

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

// Deno asks for permission to read files; theus never prompts, it only reads what is granted.
function mayRead(path: string): boolean {
  const permissions = host.Deno?.permissions;
  if (permissions === undefined) return true;
  return attempt(() => permissions.querySync({ name: "read", path }).state === "granted") ?? false;
}

/** The readings of one runtime. */
export interface Host {
  readonly runtime: RuntimeName;
  /** User and system CPU time, in microseconds. */
  readonly cpu?: () => { user: number; system: number };
  /** When the process started, Unix seconds. */
  readonly startTime?: number;
  /**
   * Memory, bytes, in one reading: resident set size, and on Linux the virtual memory size and
   * the data segment (`VmData`).
   */
  readonly memory?: () => { rss?: number; virtual?: number; data?: number };
  /** Open file descriptors (Linux). */
  readonly openFds?: () => number | undefined;
  /** The soft limit of open file descriptors (Linux). */
  readonly maxFds?: number;
  /** The JavaScript heap: total (none on Bun), used, and memory held outside it, bytes. */
  readonly heap?: () => { total?: number; used: number; external: number } | undefined;
  /** V8's heap spaces, `_space` left off their names. */
  readonly heapSpaces?: () => { space: string; total: number; used: number; available: number }[];
  /** Active libuv handles, by type. */
  readonly handles?: () => string[];
  /** Active libuv requests, by type. */
  readonly requests?: () => string[];
  /** Resources keeping the event loop alive, by type. */
  readonly resources?: () => string[];
  /** Event-loop utilization since a previous reading (Node's `performance.eventLoopUtilization`). */
  readonly utilization?: (previous?: unknown) => { utilization: number; active: number; idle: number };
  /** Subscribes to garbage collections (kind, seconds); returns the unsubscribe. */
  readonly gc?: (listener: (kind: string, seconds: number) => void) => () => void;
  /** The runtime's version, with the family name of its version metric. */
  readonly version?: { readonly metric: "nodejs" | "deno" | "bun"; readonly version: string };
}

function procStatus(): Map<string, number> | undefined {
  const fs = builtin("node:fs");
  if (fs === undefined || !mayRead("/proc/self/status")) return undefined;
  const text = attempt(() => fs.readFileSync("/proc/self/status", "utf8") as string);
  if (text === undefined) return undefined;
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^(Vm\w+):\s+(\d+) kB/.exec(line);
    if (match !== null) out.set(match[1], Number(match[2]) * 1024);
  }
  return out;
}

// The kernel's own start time: btime (boot, Unix seconds) plus field 22 of /proc/self/stat, in
// clock ticks (USER_HZ, 100 on Linux). Deno's process.uptime() counts from later than the exec.
function procStartTime(): number | undefined {
  const fs = builtin("node:fs");
  if (fs === undefined || !mayRead("/proc/self/stat") || !mayRead("/proc/stat")) return undefined;
  const stat = attempt(() => fs.readFileSync("/proc/self/stat", "utf8") as string);
  const boot = attempt(() => /^btime (\d+)/m.exec(fs.readFileSync("/proc/stat", "utf8"))?.[1]);
  if (stat === undefined || boot === undefined) return undefined;
  const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
  return Number.isFinite(ticks) ? Number(boot) + ticks / 100 : undefined;
}

function maxFds(): number | undefined {
  const fs = builtin("node:fs");
  if (fs === undefined || !mayRead("/proc/self/limits")) return undefined;
  const text = attempt(() => fs.readFileSync("/proc/self/limits", "utf8") as string);
  const match = text === undefined ? null : /^Max open files\s+(\d+)/m.exec(text);
  return match === null ? undefined : Number(match[1]);
}

function openFds(): number | undefined {
  const fs = builtin("node:fs");
  if (fs === undefined || !mayRead("/proc/self/fd")) return undefined;
  // The directory handle that reads the list is one of them: it is closed again.
  const entries = attempt(() => fs.readdirSync("/proc/self/fd") as string[]);
  return entries === undefined ? undefined : entries.length - 1;
}

interface HeapSpace {
  space_name: string;
  space_size: number;
  space_used_size: number;
  space_available_size: number;
}

const byName = (list: unknown[]): string[] =>
  list.map((item) => (item as { constructor?: { name?: string } })?.constructor?.name ?? "Object");

const GC_KINDS: Record<number, string> = { 1: "minor", 2: "major", 4: "incremental", 8: "weakcb" };

function nodeGc(listener: (kind: string, seconds: number) => void): () => void {
  const perf = builtin("node:perf_hooks");
  const kinds: Record<number, string> = { ...GC_KINDS };
  const c = perf?.constants;
  if (c !== undefined) {
    kinds[c.NODE_PERFORMANCE_GC_MINOR] = "minor";
    kinds[c.NODE_PERFORMANCE_GC_MAJOR] = "major";
    kinds[c.NODE_PERFORMANCE_GC_INCREMENTAL] = "incremental";
    kinds[c.NODE_PERFORMANCE_GC_WEAKCB] = "weakcb";
  }
  const observer = new perf.PerformanceObserver((list: { getEntries(): unknown[] }) => {
    for (const entry of list.getEntries() as { duration: number; detail?: { kind?: number } }[]) {
      listener(kinds[entry.detail?.kind ?? 0] ?? "unknown", entry.duration / 1000);
    }
  });
  observer.observe({ entryTypes: ["gc"] });
  return () => observer.disconnect();
}

/** Reads what this runtime measures. */
export function detectHost(): Host {
  const runtime = runtimeName();
  if (runtime !== "node" && runtime !== "deno" && runtime !== "bun") return { runtime };
  const process = host.process;
  const linux = process.platform === "linux";
  const uptime = attempt(() => process.uptime() as number);
  const startTime = (linux ? procStartTime() : undefined) ??
    (uptime === undefined ? undefined : Date.now() / 1000 - uptime);
  const v8 = builtin("node:v8");
  const version = runtime === "deno"
    ? host.Deno.version.deno as string
    : runtime === "bun"
    ? host.Bun.version as string
    : process.version as string; // "v20.20.2", as prom-client labels it
  return {
    runtime,
    cpu: () => process.cpuUsage(),
    startTime,
    memory: () => {
      const status = linux ? procStatus() : undefined;
      return {
        rss: status?.get("VmRSS") ?? attempt(() => process.memoryUsage.rss() as number),
        virtual: status?.get("VmSize"),
        data: status?.get("VmData"),
      };
    },
    openFds: linux ? openFds : undefined,
    maxFds: linux ? maxFds() : undefined,
    // Bun's are JavaScriptCore's, from process.memoryUsage(): its heapUsed is the heap's size as
    // of the last collection (what prom-client reports there too), but its heapTotal counts only
    // part of the heap and can be below heapUsed, so Bun has no total. (bun:jsc's heapStats() has
    // a consistent pair, but walks the whole heap: milliseconds a scrape, more as the heap grows.)
    heap: () => {
      const usage = attempt(() => process.memoryUsage());
      if (usage === undefined) return undefined;
      return {
        total: runtime === "bun" ? undefined : usage.heapTotal,
        used: usage.heapUsed,
        external: usage.external,
      };
    },
    // Bun answers with made-up V8 spaces.
    heapSpaces: runtime !== "bun" && v8 !== undefined
      ? () =>
        (v8.getHeapSpaceStatistics() as HeapSpace[]).map((space) => ({
          space: space.space_name.replace(/_space$/, ""),
          total: space.space_size,
          used: space.space_used_size,
          available: space.space_available_size,
        }))
      : undefined,
    // Bun's are stand-ins that list nothing; Deno's handle and request lists are empty too.
    handles: runtime === "node" ? () => byName(process._getActiveHandles()) : undefined,
    requests: runtime === "node" ? () => byName(process._getActiveRequests()) : undefined,
    resources: runtime !== "bun" && typeof process.getActiveResourcesInfo === "function"
      ? () => process.getActiveResourcesInfo()
      : undefined,
    // Deno's and Bun's answer zeros (Bun adds it to the global once node:perf_hooks is loaded).
    utilization: runtime === "node" && typeof host.performance?.eventLoopUtilization === "function"
      ? (previous) => host.performance.eventLoopUtilization(previous)
      : undefined,
    // Only Node reports garbage collections (Deno lists the entry type but sends none).
    gc: runtime === "node" && builtin("node:perf_hooks")?.PerformanceObserver !== undefined
      ? nodeGc
      : undefined,
    version: { metric: runtime === "node" ? "nodejs" : runtime, version },
  };
}

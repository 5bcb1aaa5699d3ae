/**
 * Runtime and process metrics under prom-client's names: CPU time, memory, file descriptors,
 * event-loop lag and utilization, heap, garbage collection and the runtime's version, on Node,
 * Deno and Bun. Moving from prom-client is a change of import:
 *
 * ```ts
 * import { collectDefaultMetrics } from "./mod.ts"; // theus/runtime, @theus/theus/runtime
 *
 * const runtime = collectDefaultMetrics();
 * // ... serve /metrics with metricsHandler() ...
 * runtime.stop();
 * ```
 *
 * Each runtime gets the metrics it really measures; the README has the table. Values are read at
 * every collection, as prom-client does; the event-loop and garbage-collection monitors run in the
 * background (`bench/RESULTS.md` measures what they cost: a scrape takes about a millisecond, and
 * the event-loop timer, 100 wake-ups a second at the default precision, 1 to 2 % of a core in an
 * otherwise idle process).
 *
 * On a shared backend, the runtime metrics are each process's own: on redis and upstash every
 * series carries the `theus_instance` label and leaves the fleet's scrapes once the process's
 * heartbeat expires, so that a fleet scrape shows each live process once and never a sum of
 * memory or start times. With `shareMemory()`, a scrape from any thread shows one thread's
 * runtime metrics (the first live one to collect them): the process's, once.
 *
 * This module is not reachable from `mod.ts`: an application that does not import it carries
 * none of it.
 *
 * @module
 */

import { INSTANCE_LABEL } from "../core/backend.ts";
import { checkMetricName, describe, quoteList } from "../core/_names.ts";
import { unrefTimer } from "../core/_runtime.ts";
import { MemoryBackend } from "../backends/memory.ts";
import { SharedMemoryBackend } from "../backends/shared/backend.ts";
import { Counter } from "../metrics/counter.ts";
import { Gauge } from "../metrics/gauge.ts";
import { checkBuckets, Histogram } from "../metrics/histogram.ts";
import { checkLabelNames, checkLabels } from "../metrics/_labels.ts";
import { currentBinding } from "../metrics/_binding.ts";
import { INTERNAL, type MaybeInternal, perInstance, setRefresh } from "../metrics/_internal.ts";
import type { Metric } from "../metrics/_metric.ts";
import { defaultRegistry, type Registry } from "../metrics/registry.ts";
import { detectHost, type Host } from "./_host.ts";
import { type LagStats, LoopMonitor } from "./_loop.ts";

/** The groups of runtime metrics, for `include` and `exclude`. */
export type DefaultMetricGroup =
  | "cpu"
  | "start"
  | "memory"
  | "fds"
  | "eventloop"
  | "handles"
  | "requests"
  | "resources"
  | "heap"
  | "heapspaces"
  | "version"
  | "gc";

/** Options of {@linkcode collectDefaultMetrics}. */
export interface DefaultMetricsOptions {
  /** Where to register the metrics: `defaultRegistry` unless given. */
  registry?: Registry;
  /** Prepended to every metric name as is (`"app_"` gives `app_process_cpu_seconds_total`). */
  prefix?: string;
  /** Labels added to every series, `{ name: value }`. */
  labels?: Readonly<Record<string, string>>;
  /** Only these metrics: names (without the prefix) or groups. Every metric when not given. */
  include?: readonly (string | DefaultMetricGroup)[];
  /** Not these metrics: names (without the prefix) or groups. Applied after `include`. */
  exclude?: readonly (string | DefaultMetricGroup)[];
  /** How often the event-loop monitor checks the loop, in milliseconds (default 10). */
  eventLoopMonitoringPrecision?: number;
  /** The bounds of `nodejs_gc_duration_seconds` (default 0.001, 0.01, 0.1, 1, 2, 5). */
  gcDurationBuckets?: readonly number[];
  /**
   * On a backend shared by processes or threads, how often the values are updated between this
   * process's own scrapes, in milliseconds (default 10 000), so that a scrape elsewhere sees them
   * fresh. On the memory backend they are updated at each scrape only.
   */
  updateIntervalMs?: number;
}

/** What {@linkcode collectDefaultMetrics} started. */
export interface DefaultMetrics extends Disposable {
  /**
   * The names of the metrics registered, prefix included: those this runtime measures and, on
   * redis or upstash, those only other runtimes measure (read here, never written).
   */
  readonly names: readonly string[];
  /** Stops the monitors and the updates, and unregisters and removes the metrics. Idempotent. */
  stop(): void;
  /** The same as `stop()`, for `using`. */
  [Symbol.dispose](): void;
}

/** The default bounds of `nodejs_gc_duration_seconds`, as prom-client's. */
export const DEFAULT_GC_DURATION_BUCKETS: readonly number[] = Object.freeze([0.001, 0.01, 0.1, 1, 2, 5]);

type Kind = "counter" | "gauge" | "histogram";

// The readings whose presence says what the runtime measures, taken once.
interface FirstReadings {
  readonly memory: ReturnType<NonNullable<Host["memory"]>> | undefined;
  readonly heap: ReturnType<NonNullable<Host["heap"]>>;
  readonly openFds: number | undefined;
}

interface Spec {
  readonly name: string;
  readonly group: DefaultMetricGroup;
  readonly kind: Kind;
  readonly help: string;
  readonly labelNames?: readonly string[];
  /** Whether this runtime measures it, from the host and its first readings. */
  readonly available: (host: Host, first: FirstReadings) => boolean;
}

const process = (host: Host): boolean => host.cpu !== undefined;
const lagHelp = (what: string) => `The ${what} of the recorded event loop delays.`;

const SPECS: readonly Spec[] = [
  ...(["user", "system", ""] as const).map((part): Spec => ({
    name: `process_cpu_${part ? `${part}_` : ""}seconds_total`,
    group: "cpu",
    kind: "counter",
    help: part === ""
      ? "Total user and system CPU time spent in seconds."
      : `Total ${part} CPU time spent in seconds.`,
    available: process,
  })),
  {
    name: "process_start_time_seconds",
    group: "start",
    kind: "gauge",
    help: "Start time of the process since unix epoch in seconds.",
    available: (host) => host.startTime !== undefined,
  },
  {
    name: "process_resident_memory_bytes",
    group: "memory",
    kind: "gauge",
    help: "Resident memory size in bytes.",
    available: (_, first) => first.memory?.rss !== undefined,
  },
  {
    name: "process_virtual_memory_bytes",
    group: "memory",
    kind: "gauge",
    help: "Virtual memory size in bytes.",
    available: (_, first) => first.memory?.virtual !== undefined,
  },
  {
    name: "process_heap_bytes",
    group: "memory",
    kind: "gauge",
    help: "Process heap size in bytes.",
    available: (_, first) => first.memory?.data !== undefined,
  },
  {
    name: "process_open_fds",
    group: "fds",
    kind: "gauge",
    help: "Number of open file descriptors.",
    available: (_, first) => first.openFds !== undefined,
  },
  {
    name: "process_max_fds",
    group: "fds",
    kind: "gauge",
    help: "Maximum number of open file descriptors.",
    available: (host) => host.maxFds !== undefined,
  },
  {
    name: "nodejs_eventloop_lag_seconds",
    group: "eventloop",
    kind: "gauge",
    help: "Lag of event loop in seconds.",
    available: process,
  },
  ...([
    ["min", "The minimum recorded event loop delay."],
    ["max", "The maximum recorded event loop delay."],
    ["mean", lagHelp("mean")],
    ["stddev", lagHelp("standard deviation")],
    ["p50", lagHelp("50th percentile")],
    ["p90", lagHelp("90th percentile")],
    ["p99", lagHelp("99th percentile")],
  ] as const).map(([stat, help]): Spec => ({
    name: `nodejs_eventloop_lag_${stat}_seconds`,
    group: "eventloop",
    kind: "gauge",
    help,
    available: process,
  })),
  {
    name: "nodejs_eventloop_utilization_ratio",
    group: "eventloop",
    kind: "gauge",
    help: "Share of the time the event loop was busy since the previous update, from 0 to 1.",
    available: (host) => host.utilization !== undefined,
  },
  ...(["handles", "requests", "resources"] as const).flatMap((what): Spec[] => [
    {
      name: `nodejs_active_${what}`,
      group: what,
      kind: "gauge",
      help: what === "resources"
        ? "Number of active resources that are currently keeping the event loop alive, grouped by async resource type."
        : `Number of active libuv ${what} grouped by ${what.slice(0, -1)} type. Every ${
          what.slice(0, -1)
        } type is C++ class name.`,
      labelNames: ["type"],
      available: (host) => host[what] !== undefined,
    },
    {
      name: `nodejs_active_${what}_total`,
      group: what,
      kind: "gauge",
      help: `Total number of active ${what}.`,
      available: (host) => host[what] !== undefined,
    },
  ]),
  {
    name: "nodejs_heap_size_total_bytes",
    group: "heap",
    kind: "gauge",
    help: "Process heap size from Node.js in bytes.",
    available: (_, first) => first.heap?.total !== undefined,
  },
  {
    name: "nodejs_heap_size_used_bytes",
    group: "heap",
    kind: "gauge",
    help: "Process heap size used from Node.js in bytes.",
    available: (_, first) => first.heap !== undefined,
  },
  {
    name: "nodejs_external_memory_bytes",
    group: "heap",
    kind: "gauge",
    help: "Node.js external memory size in bytes.",
    available: (_, first) => first.heap !== undefined,
  },
  ...(["total", "used", "available"] as const).map((part): Spec => ({
    name: `nodejs_heap_space_size_${part}_bytes`,
    group: "heapspaces",
    kind: "gauge",
    help: `Process heap space size ${part} from Node.js in bytes.`,
    labelNames: ["space"],
    available: (host) => host.heapSpaces !== undefined,
  })),
  ...([["nodejs", "Node.js"], ["deno", "Deno"], ["bun", "Bun"]] as const).map(([runtime, title]): Spec => ({
    name: `${runtime}_version_info`,
    group: "version",
    kind: "gauge",
    help: `${title} version info.`,
    labelNames: ["version", "major", "minor", "patch"],
    available: (host) => host.version?.metric === runtime,
  })),
  {
    name: "nodejs_gc_duration_seconds",
    group: "gc",
    kind: "histogram",
    help: "Garbage collection duration by kind, one of major, minor, incremental or weakcb.",
    labelNames: ["kind"],
    available: (host) => host.gc !== undefined,
  },
];

const GROUPS: ReadonlySet<string> = new Set(SPECS.map((spec) => spec.group));
const NAMES: ReadonlySet<string> = new Set(SPECS.map((spec) => spec.name));
const OPTIONS: ReadonlySet<string> = new Set([
  "registry",
  "prefix",
  "labels",
  "include",
  "exclude",
  "eventLoopMonitoringPrecision",
  "gcDurationBuckets",
  "updateIntervalMs",
]);

/** Every metric name `collectDefaultMetrics` knows, by group, whether or not this runtime measures it. */
export const DEFAULT_METRICS: Readonly<Record<DefaultMetricGroup, readonly string[]>> = Object.freeze(
  Object.fromEntries(
    [...GROUPS].map((
      group,
    ) => [group, SPECS.filter((spec) => spec.group === group).map((spec) => spec.name)]),
  ) as unknown as Record<DefaultMetricGroup, readonly string[]>,
);

/**
 * Registers the runtime and process metrics this runtime measures, under prom-client's names,
 * and starts the background monitors (event loop, garbage collection). Values are read at every
 * collection; on a shared backend also every `updateIntervalMs`. Where nothing can be measured
 * (Workers and other isolates), it registers what can be, possibly nothing, and never throws for
 * that reason.
 *
 * @param options Where to register, a name prefix, labels, which metrics, and the monitors' settings.
 * @returns A handle whose `stop()` (or `using`) ends the monitors and removes the metrics.
 * @throws {TypeError} For an unknown option, an unknown metric or group in `include` or
 * `exclude`, invalid labels, prefix or precision.
 * @throws {RangeError} For invalid `gcDurationBuckets`, as for any histogram.
 * @throws {AlreadyRegisteredError} When the registry already holds one of the names (runtime
 * metrics collected twice): nothing is registered then.
 *
 * @example
 * ```ts
 * import { generateLatest, Registry } from "../mod.ts";
 * import { collectDefaultMetrics } from "./mod.ts";
 *
 * const registry = new Registry();
 * using _runtime = collectDefaultMetrics({ registry, exclude: ["gc", "heapspaces"] });
 * const text = await generateLatest(registry); // process_cpu_seconds_total, ...
 * ```
 */
export function collectDefaultMetrics(options: DefaultMetricsOptions = {}): DefaultMetrics {
  const checked = checkOptions(options);
  const host = detectHost();
  // On a backend shared by processes, the families only other runtimes measure are registered
  // too, never written here: a scrape from any process (a Deno server, a Worker) shows the whole
  // fleet's. (The threads sharing memory are one process, on one runtime.)
  const cls = currentBinding().cls;
  const shared = cls !== undefined && cls !== MemoryBackend && cls !== SharedMemoryBackend;
  const readings: FirstReadings = {
    memory: attempt(() => host.memory?.()),
    heap: attempt(() => host.heap?.()),
    openFds: attempt(() => host.openFds?.()),
  };
  const wanted = SPECS.filter((spec) => checked.wanted(spec));
  const available = new Set(wanted.filter((spec) => spec.available(host, readings)));
  const selected = shared ? wanted : [...available];
  const registry = checked.registry;
  const labels = checked.labels;
  const all = new Map<string, Metric>();
  perInstance(() => {
    for (const spec of selected) {
      const name = checked.prefix + spec.name;
      const common = {
        name,
        help: spec.help,
        labelNames: [...(spec.labelNames ?? []), ...Object.keys(labels)],
        defaultLabels: labels,
        registry: null,
      };
      all.set(
        spec.name,
        spec.kind === "counter"
          ? new Counter(common)
          : spec.kind === "histogram"
          ? new Histogram({ ...common, buckets: checked.gcDurationBuckets })
          : new Gauge(common),
      );
    }
  });
  // All or nothing: a name already taken, or a monitor the runtime refuses, registers nothing.
  const measured = new Map(
    [...available].map((spec) => [spec.name, all.get(spec.name)!]),
  );
  const registered: Metric[] = [];
  let updater: Updater;
  try {
    for (const metric of all.values()) {
      registry.register(metric);
      registered.push(metric);
    }
    updater = new Updater(host, measured, checked.precision);
  } catch (error) {
    for (const metric of registered) registry.unregister(metric);
    throw error;
  }
  // Read-only here: the series this process would write empty are dropped before any write.
  for (const [name, metric] of all) if (!measured.has(name)) (metric as MaybeInternal)[INTERNAL]!.retire();
  const first = measured.values().next().value;
  if (first !== undefined) setRefresh(first, () => updater.update());
  updater.update();
  let stopped = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  // On a shared backend the values are also written on an interval, for scrapes elsewhere.
  const binding = first === undefined ? undefined : (first as MaybeInternal)[INTERNAL]!.binding;
  void binding?.settle().then(() => {
    if (stopped || binding.cls === MemoryBackend || binding.cls === undefined) return;
    timer = setInterval(() => updater.update(), checked.updateIntervalMs);
    unrefTimer(timer);
  }, () => {});
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(timer);
    updater.stop();
    for (const metric of registered) {
      registry.unregister(metric);
      (metric as MaybeInternal)[INTERNAL]!.retire();
    }
  };
  return { names: registered.map((metric) => metric.name), stop, [Symbol.dispose]: stop };
}

interface Checked {
  readonly registry: Registry;
  readonly prefix: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly precision: number;
  readonly gcDurationBuckets: readonly number[];
  readonly updateIntervalMs: number;
  wanted(spec: Spec): boolean;
}

function checkOptions(options: DefaultMetricsOptions): Checked {
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      `Invalid options for collectDefaultMetrics: expected an object, got ${describe(options)}`,
    );
  }
  for (const key of Object.keys(options)) {
    if (OPTIONS.has(key)) continue;
    const hint = key === "register" ? ` (theus calls it "registry")` : "";
    throw new TypeError(
      `Unknown option "${key}" for collectDefaultMetrics${hint}: expected one of ${quoteList([...OPTIONS])}`,
    );
  }
  const prefix = options.prefix ?? "";
  if (typeof prefix !== "string" || (prefix !== "" && !/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix))) {
    throw new TypeError(
      `Invalid prefix ${
        describe(prefix)
      } for collectDefaultMetrics: expected letters, digits, "_" and ":", not starting with a digit`,
    );
  }
  if (prefix !== "") checkMetricName(`${prefix}x`, "prefix");
  const labels = options.labels ?? {};
  if (typeof labels !== "object" || labels === null || Array.isArray(labels)) {
    throw new TypeError(
      `Invalid labels for collectDefaultMetrics: expected an object, got ${describe(labels)}`,
    );
  }
  if (Object.hasOwn(labels, INSTANCE_LABEL)) {
    throw new TypeError(
      `Invalid label "${INSTANCE_LABEL}" for collectDefaultMetrics: shared backends add it to every runtime metric`,
    );
  }
  // Checked here, whatever this runtime measures: the same options must work on every runtime.
  const checkedLabels = checkLabels(
    labels,
    "collectDefaultMetrics",
    new Set(checkLabelNames(Object.keys(labels), "collectDefaultMetrics", undefined)),
    "label",
  );
  for (const name of Object.keys(labels)) {
    const owner = SPECS.find((spec) => spec.labelNames?.includes(name));
    if (owner !== undefined) {
      throw new TypeError(
        `Invalid label "${name}" for collectDefaultMetrics: ${owner.name} has a label of that name`,
      );
    }
  }
  const select = (list: unknown, option: string): ReadonlySet<string> | undefined => {
    if (list === undefined) return undefined;
    if (!Array.isArray(list)) {
      throw new TypeError(
        `Invalid ${option} for collectDefaultMetrics: expected an array, got ${describe(list)}`,
      );
    }
    for (const item of list) {
      if (!GROUPS.has(item) && !NAMES.has(item)) {
        throw new TypeError(
          `Invalid ${option} entry ${describe(item)} for collectDefaultMetrics: expected a group (${
            quoteList([...GROUPS])
          }) or a metric name such as "process_cpu_seconds_total" (see DEFAULT_METRICS)`,
        );
      }
    }
    return new Set(list);
  };
  const include = select(options.include, "include");
  const exclude = select(options.exclude, "exclude");
  const matches = (set: ReadonlySet<string>, spec: Spec) => set.has(spec.name) || set.has(spec.group);
  const precision = options.eventLoopMonitoringPrecision ?? 10;
  if (typeof precision !== "number" || !(precision >= 1 && precision <= 60_000)) {
    throw new TypeError(
      `Invalid eventLoopMonitoringPrecision ${describe(precision)}: expected milliseconds from 1 to 60000`,
    );
  }
  const updateIntervalMs = options.updateIntervalMs ?? 10_000;
  if (typeof updateIntervalMs !== "number" || !(updateIntervalMs >= 100 && updateIntervalMs <= 3_600_000)) {
    throw new TypeError(
      `Invalid updateIntervalMs ${describe(updateIntervalMs)}: expected milliseconds from 100 to 3600000`,
    );
  }
  const registry = options.registry ?? defaultRegistry;
  if (typeof registry?.register !== "function") {
    throw new TypeError(`Invalid registry for collectDefaultMetrics: got ${describe(registry)}`);
  }
  return {
    registry,
    prefix,
    labels: checkedLabels,
    precision,
    gcDurationBuckets: options.gcDurationBuckets === undefined
      ? DEFAULT_GC_DURATION_BUCKETS
      : checkBuckets(options.gcDurationBuckets, "nodejs_gc_duration_seconds"),
    updateIntervalMs,
    wanted: (spec) =>
      (include === undefined || matches(include, spec)) && !(exclude !== undefined && matches(exclude, spec)),
  };
}

// Reads the runtime into the metrics; owns the background monitors.
class Updater {
  #host: Host;
  #metrics: ReadonlyMap<string, Metric>;
  #loop: LoopMonitor | undefined;
  #stopGc: (() => void) | undefined;
  #cpu: { user: number; system: number } | undefined;
  #utilization: unknown;
  #types = new Map<string, Set<string>>();
  #versionLabels: Record<string, string> | undefined;

  constructor(host: Host, metrics: ReadonlyMap<string, Metric>, precision: number) {
    this.#host = host;
    this.#metrics = metrics;
    if ([...metrics.keys()].some((name) => name.startsWith("nodejs_eventloop_lag"))) {
      this.#loop = new LoopMonitor(precision);
    }
    const gc = metrics.get("nodejs_gc_duration_seconds") as Histogram | undefined;
    if (gc !== undefined) this.#stopGc = host.gc!((kind, seconds) => gc.labels({ kind }).observe(seconds));
    // The counters start from the CPU time spent before they were created, as /proc has it.
    this.#cpu = host.cpu === undefined ? undefined : { user: 0, system: 0 };
    this.#utilization = host.utilization?.();
    const version = host.version;
    if (version !== undefined) {
      const [major = "0", minor = "0", patch = "0"] = version.version.replace(/^v/, "").split(/[.+-]/);
      this.#versionLabels = { version: version.version, major, minor, patch };
    }
  }

  update(): void {
    const host = this.#host;
    const set = (name: string, value: number | undefined) => {
      if (value !== undefined && Number.isFinite(value)) {
        (this.#metrics.get(name) as Gauge | undefined)?.set(value);
      }
    };
    const cpu = host.cpu !== undefined ? attempt(host.cpu) : undefined;
    if (cpu !== undefined && this.#cpu !== undefined) {
      const user = Math.max(0, cpu.user - this.#cpu.user) / 1e6;
      const system = Math.max(0, cpu.system - this.#cpu.system) / 1e6;
      this.#cpu = cpu;
      const inc = (name: string, value: number) =>
        (this.#metrics.get(name) as Counter | undefined)?.inc(value);
      inc("process_cpu_user_seconds_total", user);
      inc("process_cpu_system_seconds_total", system);
      inc("process_cpu_seconds_total", user + system);
    }
    // Values that never change are written again too: on a shared backend that keeps them alive.
    set("process_start_time_seconds", host.startTime);
    set("process_max_fds", host.maxFds);
    const version = this.#versionLabels;
    if (version !== undefined) {
      (this.#metrics.get(`${host.version!.metric}_version_info`) as Gauge | undefined)?.labels(version).set(
        1,
      );
    }
    if (
      host.memory !== undefined &&
      ["resident_memory", "virtual_memory", "heap"].some((m) => this.#metrics.has(`process_${m}_bytes`))
    ) {
      const memory = attempt(host.memory);
      set("process_resident_memory_bytes", memory?.rss);
      set("process_virtual_memory_bytes", memory?.virtual);
      set("process_heap_bytes", memory?.data);
    }
    if (this.#metrics.has("process_open_fds")) set("process_open_fds", attempt(host.openFds!));
    if (this.#loop !== undefined) this.#lag(this.#loop.take(), set);
    if (host.utilization !== undefined && this.#metrics.has("nodejs_eventloop_utilization_ratio")) {
      const previous = this.#utilization;
      this.#utilization = attempt(() => host.utilization!());
      const delta = attempt(() => host.utilization!(previous));
      if (delta !== undefined && delta.active + delta.idle > 0) {
        set("nodejs_eventloop_utilization_ratio", delta.utilization);
      }
    }
    for (const what of ["handles", "requests", "resources"] as const) {
      const read = host[what];
      if (read === undefined || !this.#metrics.has(`nodejs_active_${what}_total`)) continue;
      const list = attempt(read);
      if (list === undefined) continue;
      set(`nodejs_active_${what}_total`, list.length);
      this.#byType(`nodejs_active_${what}`, list);
    }
    if (this.#metrics.has("nodejs_heap_size_used_bytes")) {
      const heap = attempt(host.heap!);
      set("nodejs_heap_size_total_bytes", heap?.total);
      set("nodejs_heap_size_used_bytes", heap?.used);
      set("nodejs_external_memory_bytes", heap?.external);
    }
    if (host.heapSpaces !== undefined && this.#metrics.has("nodejs_heap_space_size_total_bytes")) {
      for (const space of attempt(host.heapSpaces) ?? []) {
        for (const part of ["total", "used", "available"] as const) {
          const gauge = this.#metrics.get(`nodejs_heap_space_size_${part}_bytes`) as Gauge | undefined;
          gauge?.labels({ space: space.space }).set(space[part]);
        }
      }
    }
  }

  stop(): void {
    this.#loop?.stop();
    this.#stopGc?.();
  }

  #lag(stats: LagStats | undefined, set: (name: string, value: number | undefined) => void): void {
    // No tick since the previous update (a loop blocked throughout, or a very long precision):
    // the previous figures stay.
    if (stats === undefined) return;
    set("nodejs_eventloop_lag_seconds", stats.last);
    for (const stat of ["min", "max", "mean", "stddev", "p50", "p90", "p99"] as const) {
      set(`nodejs_eventloop_lag_${stat}_seconds`, stats[stat]);
    }
  }

  // One series per type present now; the types gone since the previous update are removed.
  #byType(name: string, list: readonly string[]): void {
    const gauge = this.#metrics.get(name) as Gauge | undefined;
    if (gauge === undefined) return;
    const counts = new Map<string, number>();
    for (const type of list) counts.set(type, (counts.get(type) ?? 0) + 1);
    const before = this.#types.get(name) ?? new Set();
    for (const type of before) if (!counts.has(type)) gauge.remove({ type });
    for (const [type, count] of counts) gauge.labels({ type }).set(count);
    this.#types.set(name, new Set(counts.keys()));
  }
}

function attempt<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}

/**
 * Backend selection: `loadBackend()` and `flush()`.
 *
 * @module
 */

import { MemoryBackend } from "./memory.ts";
import type { Backend, BackendClass, BackendConfig, MetricInfo } from "./types.ts";

/** The names of the backends that ship with theus. */
export type BuiltinBackendName = "memory" | "redis" | "upstash";

/** Options of {@linkcode loadBackend}. */
export interface LoadBackendOptions {
  /**
   * The backend: a built-in name, a backend class, or a module specifier with an export name
   * (`"./my_backend.ts#MyBackend"`, relative to the working directory, or a bare specifier
   * resolved through the import map).
   */
  backend?: BuiltinBackendName | BackendClass | string;
  /** The backend's configuration. */
  config?: BackendConfig;
}

// A selected backend class with its config. Metrics keep the binding that was current when
// they were created. A binding chosen from the environment may still be loading: its values
// are then held by forwarders and handed to real backends once the class has loaded.
export class Binding {
  cls: BackendClass | undefined;
  config: BackendConfig;
  pending: Promise<void> | undefined;
  error: unknown;
  /** Whether metrics keep their values themselves: the memory backend's binding. */
  readonly inline: boolean;
  #waiting: Forwarder[] = [];

  constructor(cls: BackendClass | undefined, config: BackendConfig, inline = false) {
    this.cls = cls;
    this.config = config;
    this.inline = inline;
  }

  create(metric: MetricInfo, histogramBucket?: string): Backend {
    if (this.cls !== undefined) return new this.cls(this.config, metric, histogramBucket);
    const forwarder = new Forwarder(this, metric, histogramBucket);
    if (this.error === undefined) this.#waiting.push(forwarder);
    return forwarder;
  }

  resolve(cls: BackendClass): void {
    this.cls = cls;
    for (const forwarder of this.#waiting) forwarder.attach(cls, this.config);
    this.#waiting = [];
  }

  fail(error: unknown): void {
    this.error = error;
    this.#waiting = [];
  }

  /** Waits for the class to load and flushes what it buffered; rejects if it cannot load. */
  async settle(): Promise<void> {
    if (this.pending !== undefined) await this.pending;
    if (this.error !== undefined) throw this.error;
    await this.cls?.flush?.();
  }
}

// Stands in for a backend whose class is still loading: folds the changes, then replays them.
class Forwarder implements Backend {
  #binding: Binding;
  #real: Backend | undefined;
  #metric: MetricInfo;
  #bucket: string | undefined;
  #delta = 0;
  #setTo: number | undefined;

  constructor(binding: Binding, metric: MetricInfo, bucket: string | undefined) {
    this.#binding = binding;
    this.#metric = metric;
    this.#bucket = bucket;
  }

  attach(cls: BackendClass, config: BackendConfig): void {
    const real = new cls(config, this.#metric, this.#bucket);
    if (this.#setTo !== undefined) real.set(this.#setTo);
    if (this.#delta > 0) real.inc(this.#delta);
    else if (this.#delta < 0) real.dec(-this.#delta);
    this.#real = real;
  }

  inc(value: number): void {
    if (this.#real !== undefined) this.#real.inc(value);
    else this.#delta += value;
  }

  dec(value: number): void {
    if (this.#real !== undefined) this.#real.dec(value);
    else this.#delta -= value;
  }

  set(value: number): void {
    if (this.#real !== undefined) return this.#real.set(value);
    this.#setTo = value;
    this.#delta = 0;
  }

  get(): number | Promise<number> {
    if (this.#real !== undefined) return this.#real.get();
    if (this.#binding.error !== undefined) return (this.#setTo ?? 0) + this.#delta;
    return this.#binding.settle().then(() => this.get(), () => this.get());
  }
}

const memoryBinding = new Binding(MemoryBackend, {}, true);
let current: Binding | undefined;
const used = new Set<Binding>();

/** The binding for a metric created now; applies the environment on first use. */
export function currentBinding(): Binding {
  if (current === undefined) current = bindingFromEnv();
  used.add(current);
  return current;
}

/** Every binding a metric was created with, for `flush()`. */
export function usedBindings(): Iterable<Binding> {
  return used;
}

function bindingFromEnv(): Binding {
  const name = readEnv("THEUS_BACKEND");
  if (name === undefined || name === "" || name === "memory") return memoryBinding;
  const binding = new Binding(undefined, {});
  binding.pending = (async () => {
    const configPath = readEnv("THEUS_BACKEND_CONFIG");
    const config = configPath ? await readConfigFile(configPath) : {};
    const cls = await resolveClass(name, "THEUS_BACKEND");
    await cls.initialize?.(config);
    binding.config = config;
    binding.resolve(cls);
  })().catch((error) => {
    binding.fail(error);
    // The application keeps running on local values; collection and flush() report the error.
    console.error(`theus: cannot load the backend from THEUS_BACKEND: ${message(error)}`);
  }).finally(() => {
    binding.pending = undefined;
  });
  return binding;
}

/**
 * Selects the backend for metrics created from now on. Metrics created earlier keep theirs.
 *
 * With no arguments it reads `THEUS_BACKEND` (`memory`, `redis`, `upstash`, or a module
 * specifier with an export name, `./my_backend.ts#MyBackend`) and `THEUS_BACKEND_CONFIG` (the
 * path of a JSON file holding the config). Where the environment cannot be read (edge
 * runtimes, Deno without `--allow-env`) it keeps the memory backend. The environment is also
 * applied on its own the first time a metric is created, so calling this is only needed to
 * choose a backend in code or to see loading errors early.
 *
 * @param options The backend and its config; omit to read the environment.
 * @returns Once the backend class is loaded and initialized.
 * @throws {TypeError} For an unknown backend name, a module without the named export, an
 * export that is not a backend class, or a config that is not an object.
 * @throws {Error} When the module or the config file cannot be read.
 *
 * @example Choose a backend class in code
 * ```ts
 * import { Counter, loadBackend, Registry } from "../mod.ts";
 * import { MemoryBackend } from "./memory.ts";
 *
 * await loadBackend({ backend: MemoryBackend, config: {} });
 * const hits = new Counter({ name: "hits", help: "Hits", registry: new Registry() });
 * hits.inc();
 * ```
 */
export async function loadBackend(options?: LoadBackendOptions): Promise<void> {
  if (options !== undefined && (typeof options !== "object" || options === null)) {
    throw new TypeError("Invalid loadBackend() options: expected an object");
  }
  let spec = options?.backend;
  let config = options?.config;
  let source = "loadBackend()";
  if (spec === undefined) {
    spec = readEnv("THEUS_BACKEND") || "memory";
    source = "THEUS_BACKEND";
    if (config === undefined) {
      const path = readEnv("THEUS_BACKEND_CONFIG");
      if (path) config = await readConfigFile(path);
    }
  }
  config ??= {};
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError("Invalid backend config: expected an object");
  }
  const cls = typeof spec === "string" ? await resolveClass(spec, source) : checkClass(spec, "backend");
  await cls.initialize?.(config);
  current = cls === MemoryBackend ? memoryBinding : new Binding(cls, config);
}

/**
 * Pushes every buffered change to the backends. A no-op on the memory backend; on a remote
 * backend, call it at the end of a serverless invocation.
 *
 * @returns Once everything buffered has been written.
 * @throws {Error} When the backend selected through the environment could not be loaded.
 *
 * @example
 * ```ts
 * import { flush } from "../mod.ts";
 *
 * await flush();
 * ```
 */
export async function flush(): Promise<void> {
  // A class-level flush covers every store of its class: call it once, not once per binding.
  const classes = new Set<BackendClass>();
  for (const binding of used) {
    if (binding.pending !== undefined) await binding.pending;
    if (binding.error !== undefined) throw binding.error;
    if (binding.cls !== undefined) classes.add(binding.cls);
  }
  for (const cls of classes) await cls.flush?.();
}

const BUILTIN: Record<BuiltinBackendName, [file: string, exportName: string]> = {
  memory: ["memory", "MemoryBackend"],
  redis: ["redis", "RedisBackend"],
  upstash: ["upstash", "UpstashBackend"],
};

async function resolveClass(spec: string, source: string): Promise<BackendClass> {
  if (spec === "memory") return MemoryBackend;
  let url: string;
  let exportName: string;
  if (Object.hasOwn(BUILTIN, spec)) {
    const [file, name] = BUILTIN[spec as BuiltinBackendName];
    // Computed so that bundlers leave the remote backends out of bundles that never select them.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    url = new URL(`./${file}${ext}`, import.meta.url).href;
    exportName = name;
  } else {
    const hash = spec.lastIndexOf("#");
    if (hash <= 0 || hash === spec.length - 1) {
      throw new TypeError(
        `Invalid backend ${JSON.stringify(spec)} in ${source}: expected "memory", "redis", ` +
          `"upstash" or a module specifier with an export name, like "./my_backend.ts#MyBackend"`,
      );
    }
    url = resolveSpecifier(spec.slice(0, hash));
    exportName = spec.slice(hash + 1);
  }
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (error) {
    throw new Error(`Cannot load backend module ${JSON.stringify(url)} from ${source}: ${message(error)}`, {
      cause: error,
    });
  }
  if (!(exportName in module)) {
    throw new TypeError(`Backend module ${JSON.stringify(url)} has no export named "${exportName}"`);
  }
  return checkClass(module[exportName], `"${exportName}" of ${JSON.stringify(url)}`);
}

function checkClass(value: unknown, what: string): BackendClass {
  if (typeof value !== "function" || typeof value.prototype !== "object") {
    throw new TypeError(`Invalid backend ${what}: expected a class`);
  }
  for (const method of ["inc", "dec", "set", "get"]) {
    if (typeof value.prototype[method] !== "function") {
      throw new TypeError(`Invalid backend ${what}: its instances have no ${method}() method`);
    }
  }
  return value as BackendClass;
}

// Relative module paths in THEUS_BACKEND are relative to the working directory, as in pytheus.
function resolveSpecifier(specifier: string): string {
  if (!specifier.startsWith("./") && !specifier.startsWith("../") && !specifier.startsWith("/")) {
    return specifier;
  }
  const cwd = workingDirectory();
  if (cwd === undefined) return specifier;
  const base = "file://" + cwd.split("/").map(encodeURIComponent).join("/") + "/";
  return new URL(specifier, base).href;
}

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;

function workingDirectory(): string | undefined {
  try {
    return runtime.Deno?.cwd?.() ?? runtime.process?.cwd?.();
  } catch {
    return undefined;
  }
}

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

async function readConfigFile(path: string): Promise<BackendConfig> {
  let text: string;
  try {
    if (runtime.Deno?.readTextFile !== undefined) {
      text = await runtime.Deno.readTextFile(path);
    } else {
      const fs = runtime.process?.getBuiltinModule?.("node:fs");
      if (fs === undefined) throw new Error("this runtime cannot read files");
      text = await fs.promises.readFile(path, "utf8");
    }
  } catch (error) {
    throw new Error(`Cannot read THEUS_BACKEND_CONFIG ${JSON.stringify(path)}: ${message(error)}`, {
      cause: error,
    });
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`Invalid JSON in THEUS_BACKEND_CONFIG ${JSON.stringify(path)}: ${message(error)}`);
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError(`Invalid THEUS_BACKEND_CONFIG ${JSON.stringify(path)}: expected a JSON object`);
  }
  return config as BackendConfig;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

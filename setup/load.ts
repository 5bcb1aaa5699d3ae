/**
 * Backend selection: `loadBackend()` and `flush()`, and the environment (`THEUS_BACKEND`,
 * `THEUS_BACKEND_CONFIG`) applied when the first metric is created.
 *
 * @module
 */

import type { BackendClass, BackendConfig } from "../core/backend.ts";
import { readEnv } from "../core/_runtime.ts";
import { selectBinding, usedBindings, useEnvironment } from "../metrics/_binding.ts";
import {
  bindingFromEnvironment,
  type BuiltinBackendName,
  checkBackend,
  checkConfig,
  configFromEnv,
  resolveBackend,
  select,
} from "./_resolve.ts";

export type { BuiltinBackendName } from "./_resolve.ts";

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

// The first metric applies the environment.
useEnvironment(bindingFromEnvironment);

/**
 * Selects the backend for metrics created from now on. Metrics created earlier keep theirs.
 *
 * With no arguments it reads `THEUS_BACKEND` (`memory`, `redis`, `upstash`, or a module
 * specifier with an export name, `./my_backend.ts#MyBackend`) and `THEUS_BACKEND_CONFIG` (the
 * config as inline JSON starting with `{`, or the path of a JSON file). Where the environment
 * cannot be read (edge runtimes, Deno without `--allow-env`) it keeps the memory backend. The
 * environment is also applied on its own the first time a metric is created, so calling this
 * is only needed to choose a backend in code or to see loading errors early.
 *
 * A backend named by a string is imported at run time. A bundle (an edge function, a webpack
 * build) should import the class and pass it instead, so the bundler sees what it needs.
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
 * import { MemoryBackend } from "../backends/memory.ts";
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
    if (config === undefined) config = await configFromEnv();
  }
  config = checkConfig(config ?? {});
  const cls = typeof spec === "string" ? await resolveBackend(spec, source) : checkBackend(spec, "backend");
  selectBinding(await select(cls, config));
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
  for (const binding of usedBindings()) {
    await binding.ready();
    if (binding.cls !== undefined) classes.add(binding.cls);
  }
  for (const cls of classes) await cls.flush?.();
}

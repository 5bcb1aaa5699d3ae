// From names to backends: the built-in names, `module#Export` specifiers, THEUS_BACKEND and
// THEUS_BACKEND_CONFIG (inline JSON or the path of a JSON file).

import { MemoryBackend } from "../backends/memory.ts";
import type { BackendClass, BackendConfig } from "../core/backend.ts";
import { errorMessage, readEnv, readTextFile, workingDirectory } from "../core/_runtime.ts";
import { Binding, memoryBinding } from "../metrics/_binding.ts";
import { AlreadyRegisteredError, defaultRegistry } from "../metrics/registry.ts";
import { importAtRunTime } from "./_import.ts";

/** The names of the backends that ship with theus. */
export type BuiltinBackendName = "memory" | "redis" | "upstash";

// The built-in remote backends: their module (beside this folder) and what they need installed.
const BUILTIN = {
  redis: { file: "redis", exportName: "RedisBackend", client: "ioredis" },
  upstash: { file: "upstash", exportName: "UpstashBackend", client: "@upstash/redis" },
} as const;

/** Loads the backend class a name or a `module#Export` specifier stands for. */
export async function resolveBackend(spec: string, source: string): Promise<BackendClass> {
  if (spec === "memory") return MemoryBackend;
  let url: string;
  let exportName: string;
  let needs = "";
  if (Object.hasOwn(BUILTIN, spec)) {
    const builtin = BUILTIN[spec as keyof typeof BUILTIN];
    // The sources run as .ts (Deno, Bun), the npm build as .js.
    const ext = import.meta.url.endsWith(".ts") ? ".ts" : ".js";
    url = new URL(`../backends/${builtin.file}${ext}`, import.meta.url).href;
    exportName = builtin.exportName;
    needs = `; the ${spec} backend needs the ${builtin.client} package installed`;
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
    module = await importAtRunTime(url);
  } catch (error) {
    throw new Error(
      `Cannot load backend module ${JSON.stringify(url)} from ${source}: ${errorMessage(error)}${needs}`,
      { cause: error },
    );
  }
  if (!(exportName in module)) {
    throw new TypeError(`Backend module ${JSON.stringify(url)} has no export named "${exportName}"`);
  }
  return checkBackend(module[exportName], `"${exportName}" of ${JSON.stringify(url)}`);
}

/** Returns the value if it is a backend class, or throws a TypeError saying why not. */
export function checkBackend(value: unknown, what: string): BackendClass {
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

/** Returns the config if it is a plain object, or throws a TypeError. */
export function checkConfig(config: unknown, what = "backend config"): BackendConfig {
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new TypeError(`Invalid ${what}: expected a JSON object, got ${describeJson(config)}`);
  }
  return config as BackendConfig;
}

/**
 * The config THEUS_BACKEND_CONFIG gives: inline JSON when the value starts with `{`, otherwise
 * the path of a JSON file. An error says which of the two was tried, and why it failed.
 */
export async function configFromEnv(): Promise<BackendConfig> {
  const value = readEnv("THEUS_BACKEND_CONFIG");
  if (value === undefined || value.trim() === "") return {};
  if (value.trimStart().startsWith("{")) {
    return parseConfig(value, 'THEUS_BACKEND_CONFIG (read as inline JSON, since it starts with "{")');
  }
  let text: string;
  try {
    text = await readTextFile(value);
  } catch (error) {
    throw new Error(
      `Cannot read THEUS_BACKEND_CONFIG ${JSON.stringify(value)} (read as a file path, since it does ` +
        `not start with "{"): ${errorMessage(error)}`,
      { cause: error },
    );
  }
  return parseConfig(text, `THEUS_BACKEND_CONFIG ${JSON.stringify(value)} (a file path)`);
}

function parseConfig(text: string, what: string): BackendConfig {
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new TypeError(`Invalid JSON in ${what}: ${errorMessage(error)}`);
  }
  return checkConfig(config, what);
}

function describeJson(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return typeof value === "string" ? "a string" : typeof value;
}

/** Initializes a backend class with its config, and gives the binding metrics will use. */
export async function select(cls: BackendClass, config: BackendConfig): Promise<Binding> {
  await cls.initialize?.(config);
  registerHealth(cls);
  return cls === MemoryBackend ? memoryBinding() : new Binding(cls, config);
}

/**
 * The binding THEUS_BACKEND asks for, undefined for the memory backend. Its class loads while
 * the application goes on, and what is recorded meanwhile is handed over once it is there. A
 * class that cannot load is reported once; collection and flush() then fail with the reason.
 */
export function bindingFromEnvironment(): Binding | undefined {
  const name = readEnv("THEUS_BACKEND");
  if (name === undefined || name === "" || name === "memory") return undefined;
  const loading = (async () => {
    const config = await configFromEnv();
    const cls = await resolveBackend(name, "THEUS_BACKEND");
    await select(cls, config);
    return { cls, config };
  })();
  loading.catch((error) => {
    // The application keeps running on local values; collection and flush() report the error.
    console.error(`theus: cannot load the backend from THEUS_BACKEND: ${errorMessage(error)}`);
  });
  return new Binding(undefined, {}, loading);
}

/** Registers a backend class's own health metrics in defaultRegistry, once. */
export function registerHealth(cls: BackendClass): void {
  const health = cls.health;
  if (health === undefined) return;
  try {
    defaultRegistry.register(health);
  } catch (error) {
    if (!(error instanceof AlreadyRegisteredError && error.existing === health)) throw error;
  }
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

/**
 * `generateLatest()`: the exposition of a registry as a string.
 *
 * @module
 */

import { defaultRegistry, type Registry } from "../metrics/registry.ts";
import { type Format, render } from "./_render.ts";

export type { Format } from "./_render.ts";

/** Options of {@linkcode generateLatest}. */
export interface GenerateOptions {
  /** `"prometheus"` (text 0.0.4, the default) or `"openmetrics"` (OpenMetrics 1.0). */
  format?: Format;
}

/**
 * Collects a registry and writes its exposition. Large registries are written in slices that
 * give the event loop a turn between them.
 *
 * @param registry The registry, {@linkcode defaultRegistry} by default.
 * @param options The format.
 * @returns The exposition text; OpenMetrics ends with `# EOF`.
 * @throws {TypeError} For an unknown format, or a custom collector returning an invalid family.
 * @throws {BackendUnavailableError} When a backend cannot be read.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Counter, generateLatest, Registry } from "../mod.ts";
 *
 * const registry = new Registry();
 * new Counter({ name: "jobs", help: "Jobs done", registry }).inc(3);
 * const text = await generateLatest(registry, { format: "openmetrics" });
 * assert.ok(text.includes("jobs_total 3\n"));
 * ```
 */
export async function generateLatest(
  registry: Registry = defaultRegistry,
  options: GenerateOptions = {},
): Promise<string> {
  const format = checkFormat(options.format);
  const families = await registry.collect();
  let text = "";
  for await (const chunk of render(families, format)) text += chunk;
  return text;
}

/** Returns a valid format, or throws a TypeError naming the bad one. */
export function checkFormat(format: unknown): Format {
  if (format === undefined) return "prometheus";
  if (format === "prometheus" || format === "openmetrics") return format;
  throw new TypeError(
    `Invalid exposition format ${JSON.stringify(format)}: expected "prometheus" or "openmetrics"`,
  );
}

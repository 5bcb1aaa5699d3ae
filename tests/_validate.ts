// External validators for exposition texts: `promtool check metrics` (text 0.0.4) and the
// strict OpenMetrics parser of prometheus_client, run through tests/validate_openmetrics.py.
// Both run as child processes through node:child_process, which Deno, Bun and Node all offer.
// A missing validator fails the test with a message saying what to install; it never skips.

import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Debian's python, the one with python3-prometheus-client (the python3 on PATH may lack it). */
export const PYTHON = "/usr/bin/python3";
/** The promtool binary, from the `prometheus` Debian package. */
export const PROMTOOL = "promtool";

/**
 * promtool lint warnings that are about the names a user chose, not about what the writer
 * produced: they are accepted where a test uses such names on purpose (random names in the
 * property test). "no help text" is a style warning too: an empty HELP is valid in both formats.
 * The `_total` suffix warning is never in this list: adding `_total` is the writer's job.
 */
export const NAME_STYLE_LINTS: readonly RegExp[] = [
  /no help text$/,
  /metric names should be written in 'snake_case' not 'camelCase'$/,
  /label names should be written in 'snake_case' not 'camelCase'$/,
  /metric names should not contain ':'$/,
  /metric names should not contain abbreviated units$/,
  /use base unit "[a-z]+" instead of "[a-z]+"$/,
  /non-histogram metrics should not have "_bucket" suffix$/,
  /non-histogram and non-summary metrics should not have "_(sum|count)" suffix$/,
  /metric name should not include type '[a-z]+'$/,
  /non-histogram metrics should not have "le" label$/,
  /non-summary metrics should not have "quantile" label$/,
];

/** What promtool said about one text. */
export interface PromtoolResult {
  /** 0 clean, 3 lint warnings, 1 parse error. */
  code: number;
  /** stdout and stderr together. */
  output: string;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], input: Uint8Array, install: string): Promise<Run> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const out: Uint8Array[] = [];
    const err: Uint8Array[] = [];
    child.stdout.on("data", (chunk: Uint8Array) => out.push(chunk));
    child.stderr.on("data", (chunk: Uint8Array) => err.push(chunk));
    child.on("error", (error: Error & { code?: string }) => {
      reject(
        new Error(
          error.code === "ENOENT"
            ? `Validator ${command} not found: ${install}`
            : `Cannot run ${command}: ${error}`,
        ),
      );
    });
    child.on("close", (code: number | null) => {
      const decoder = new TextDecoder();
      resolvePromise({
        code: code ?? -1,
        stdout: decoder.decode(concat(out)),
        stderr: decoder.decode(concat(err)),
      });
    });
    // A validator that exits early closes its stdin; the exit code tells what happened.
    child.stdin.on("error", () => {});
    child.stdin.end(input);
  });
}

/** The chunks as one array. */
export function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

// The bytes a client receives: TextEncoder is what metricsHandler uses, and it turns a lone
// surrogate into U+FFFD.
const encoder = new TextEncoder();

/**
 * Runs `promtool check metrics` on one text.
 *
 * @param text A text 0.0.4 exposition.
 * @returns The exit code and output.
 */
export async function promtool(text: string): Promise<PromtoolResult> {
  const { code, stdout, stderr } = await run(
    PROMTOOL,
    ["check", "metrics"],
    encoder.encode(text),
    "install the Debian package `prometheus` (it provides promtool)",
  );
  return { code, output: (stdout + stderr).trim() };
}

/** Options of {@linkcode assertPromtool}. */
export interface PromtoolOptions {
  /** Lint warnings accepted, matched line by line; every other warning fails. */
  allowLints?: readonly RegExp[];
}

/**
 * Throws unless promtool accepts a text: exit 0, or exit 3 with only allowed lint warnings.
 *
 * @param text A text 0.0.4 exposition.
 * @param options The accepted lint warnings.
 */
export async function assertPromtool(text: string, options: PromtoolOptions = {}): Promise<void> {
  const problem = promtoolProblem(await promtool(text), options);
  if (problem !== undefined) throw new Error(`${problem}\n--- text ---\n${clip(text)}`);
}

function promtoolProblem(result: PromtoolResult, options: PromtoolOptions): string | undefined {
  if (result.code === 0) return undefined;
  if (result.code === 3) {
    const allowed = options.allowLints ?? [];
    const lints = result.output.split("\n").filter((line) => line !== "");
    const rejected = lints.filter((line) => !allowed.some((pattern) => pattern.test(line)));
    if (rejected.length === 0) return undefined;
    return `promtool lint warnings: ${rejected.join("; ")}`;
  }
  return `promtool exit ${result.code}: ${result.output}`;
}

/**
 * Checks many texts with promtool, a few processes at a time, and throws one error listing
 * every rejected text.
 *
 * @param texts Text 0.0.4 expositions.
 * @param options The accepted lint warnings.
 */
export async function assertPromtoolAll(
  texts: readonly string[],
  options: PromtoolOptions = {},
): Promise<void> {
  const problems: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < texts.length) {
      const i = next++;
      const problem = promtoolProblem(await promtool(texts[i]), options);
      if (problem !== undefined) problems.push(`text #${i}: ${problem}\n--- text ---\n${clip(texts[i])}`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  if (problems.length > 0) {
    throw new Error(`promtool rejected ${problems.length} text(s):\n${problems.slice(0, 5).join("\n")}`);
  }
}

/** One family as the OpenMetrics parser read it. */
export interface ParsedFamily {
  /** The family name (a counter's without `_total`). */
  name: string;
  /** `counter`, `gauge`, `histogram`, `summary`, `unknown`, ... */
  type: string;
  /** The unescaped help text. */
  help: string;
  /** The unit, or "". */
  unit: string;
  /** Sample name, labels, and value in Go float syntax (`1.0`, `NaN`, `+Inf`). */
  samples: [string, Record<string, string>, string][];
}

/** What the OpenMetrics parser said about one text. */
export type OpenMetricsResult = { ok: true; families: ParsedFamily[] } | { ok: false; error: string };

function findScript(): string {
  // Next to this file on Deno and Bun; from a compiled copy (Node), up the tree in tests/.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    for (
      const candidate of [join(dir, "validate_openmetrics.py"), join(dir, "tests", "validate_openmetrics.py")]
    ) {
      if (existsSync(candidate)) return candidate;
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  const fallback = resolve("tests/validate_openmetrics.py");
  if (existsSync(fallback)) return fallback;
  throw new Error(
    "Cannot find tests/validate_openmetrics.py next to tests/_validate.ts or under the working directory",
  );
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/**
 * Parses many OpenMetrics texts in one python process.
 *
 * @param texts OpenMetrics expositions, sent as their UTF-8 bytes.
 * @returns One result per text, in order.
 */
export async function parseOpenMetrics(texts: readonly string[]): Promise<OpenMetricsResult[]> {
  if (texts.length === 0) return [];
  const input = encoder.encode(JSON.stringify(texts.map((text) => toBase64(encoder.encode(text)))));
  const { code, stdout, stderr } = await run(
    PYTHON,
    [findScript(), "-"],
    input,
    "install the Debian packages `python3` and `python3-prometheus-client`",
  );
  if (code !== 0 && code !== 1) {
    throw new Error(`OpenMetrics validator failed (exit ${code}): ${stderr.trim() || stdout.trim()}`);
  }
  const results = JSON.parse(stdout) as OpenMetricsResult[];
  if (results.length !== texts.length) {
    throw new Error(`OpenMetrics validator returned ${results.length} results for ${texts.length} texts`);
  }
  return results;
}

/**
 * Throws unless every text is valid OpenMetrics; returns what the parser read from each.
 *
 * @param texts OpenMetrics expositions.
 * @returns The parsed families of each text.
 */
export async function assertOpenMetricsAll(texts: readonly string[]): Promise<ParsedFamily[][]> {
  const results = await parseOpenMetrics(texts);
  const problems: string[] = [];
  results.forEach((result, i) => {
    if (!result.ok) problems.push(`text #${i}: ${result.error}\n--- text ---\n${clip(texts[i])}`);
  });
  if (problems.length > 0) {
    throw new Error(
      `The OpenMetrics parser rejected ${problems.length} text(s):\n${problems.slice(0, 5).join("\n")}`,
    );
  }
  return results.map((result) => (result as { families: ParsedFamily[] }).families);
}

/**
 * Throws unless a text is valid OpenMetrics; returns what the parser read.
 *
 * @param text An OpenMetrics exposition.
 * @returns The parsed families.
 */
export async function assertOpenMetrics(text: string): Promise<ParsedFamily[]> {
  return (await assertOpenMetricsAll([text]))[0];
}

function clip(text: string): string {
  return text.length > 2000 ? `${text.slice(0, 2000)}... (${text.length} chars)` : text;
}

/** Replaces lone surrogates with U+FFFD, as TextEncoder does on the way to the wire. */
export function wellFormed(text: string): string {
  return text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
}

/** Parses a number in Go's float syntax, as the OpenMetrics parser reports values. */
export function goFloat(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (Number.isNaN(value)) throw new Error(`Not a Go float: ${JSON.stringify(text)}`);
  return value;
}

interface Collected {
  name: string;
  type: string;
  help: string;
  buckets?: readonly number[];
  series: readonly {
    labels: Readonly<Record<string, string>>;
    value?: number;
    buckets?: readonly number[];
    sum?: number;
    count?: number;
  }[];
}

type ExpectedSample = [string, Record<string, string | number>, number];

// What an OpenMetrics parser must read from the exposition of collected families: an
// independent model of the format, not a second copy of the writer. `le` is compared as a
// number, so the model does not restate how bounds are written.
function expectedFamily(
  family: Collected,
): { name: string; type: string; help: string; samples: ExpectedSample[] } {
  const name = family.name;
  const labelsOf = (labels: Readonly<Record<string, string>>) => {
    const out: Record<string, string | number> = {};
    for (const [key, value] of Object.entries(labels)) out[key] = wellFormed(value);
    return out;
  };
  const samples: ExpectedSample[] = [];
  for (const series of family.series) {
    const labels = labelsOf(series.labels);
    if (family.type === "histogram") {
      family.buckets!.forEach((bound, i) =>
        samples.push([`${name}_bucket`, { ...labels, le: bound }, series.buckets![i]])
      );
      // The spec: no _sum with a negative bound, a _sum is never negative or NaN, and a
      // histogram's _count is present exactly when its _sum is.
      if (!(family.buckets![0] < 0) && series.sum! >= 0) {
        samples.push([`${name}_sum`, labels, series.sum!], [`${name}_count`, labels, series.count!]);
      }
    } else if (family.type === "summary") {
      if (series.sum! >= 0) samples.push([`${name}_sum`, labels, series.sum!]);
      samples.push([`${name}_count`, labels, series.count!]);
    } else {
      samples.push([family.type === "counter" ? `${name}_total` : name, labels, series.value!]);
    }
  }
  const type = family.type === "untyped" ? "unknown" : family.type;
  return { name, type, help: wellFormed(family.help), samples };
}

/**
 * Throws unless what the OpenMetrics parser read equals what the collected families hold:
 * names, types, help texts, label values (lone surrogates as U+FFFD), `le` bounds and values.
 *
 * @param collected The families the exposition was written from (`registry.collect()`).
 * @param parsed What the parser read from that exposition.
 */
export function assertRoundTrip(collected: readonly Collected[], parsed: readonly ParsedFamily[]): void {
  const expected = collected.map(expectedFamily);
  const actual = parsed.map((family) => ({
    name: family.name,
    type: family.type,
    help: family.help,
    samples: family.samples.map(([name, labels, value]): ExpectedSample => {
      const out: Record<string, string | number> = { ...labels };
      if (name === `${family.name}_bucket` && "le" in labels) out.le = goFloat(labels.le);
      return [name, out, goFloat(value)];
    }),
  }));
  // NaN never equals NaN; Object.is semantics (deepStrictEqual) compare it as equal, and -0 as
  // distinct, so normalise -0 (written "0") first.
  const zero = (families: typeof expected) =>
    families.forEach((f) => f.samples.forEach((s) => (s[2] = s[2] === 0 ? 0 : s[2])));
  zero(expected);
  zero(actual);
  // A path to the first difference reads better than a diff of thousands of samples.
  const message = diff(actual, expected, "$");
  if (message !== undefined) throw new Error(`Round trip mismatch at ${message}`);
}

function diff(a: unknown, b: unknown, path: string): string | undefined {
  if (Object.is(a, b)) return undefined;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) {
    return `${path}: got ${show(a)}, expected ${show(b)}`;
  }
  if (Array.isArray(a) !== Array.isArray(b)) return `${path}: got ${show(a)}, expected ${show(b)}`;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  if (ka.join("\0") !== kb.join("\0")) return `${path}: keys ${show(ka)}, expected ${show(kb)}`;
  for (const key of ka) {
    const d = diff(
      (a as Record<string, unknown>)[key],
      (b as Record<string, unknown>)[key],
      `${path}.${key}`,
    );
    if (d !== undefined) return d;
  }
  return undefined;
}

function show(value: unknown): string {
  const text = typeof value === "number" ? String(value) : JSON.stringify(value);
  return text !== undefined && text.length > 300 ? `${text.slice(0, 300)}...` : String(text);
}

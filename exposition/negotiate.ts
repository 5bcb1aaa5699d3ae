/**
 * Content negotiation for the metrics endpoint.
 *
 * @module
 */

import type { Format } from "./_render.ts";

/** The Content-Type of Prometheus text 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
/** The Content-Type of OpenMetrics 1.0. */
export const OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/**
 * The Content-Type of the Prometheus protobuf format: length-delimited
 * `io.prometheus.client.MetricFamily` messages.
 */
export const PROTOBUF_CONTENT_TYPE =
  "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/**
 * The formats a scrape can be answered in: text 0.0.4 (`"prometheus"`), OpenMetrics 1.0, or the
 * protobuf format (`"protobuf"`, written by `generateProtobuf()`).
 */
export type ExpositionFormat = Format | "protobuf";

/** Options of {@linkcode negotiateFormat}. */
export interface NegotiateOptions {
  /**
   * Whether the endpoint serves the protobuf format too, so that a scraper that ranks it first
   * gets it. False by default: only the text formats are chosen from.
   */
  protobuf?: boolean;
}

/**
 * Returns the Content-Type of a format.
 *
 * @param format The exposition format.
 * @returns Its Content-Type header value.
 */
export function contentType(format: ExpositionFormat): string {
  return format === "openmetrics"
    ? OPENMETRICS_CONTENT_TYPE
    : format === "protobuf"
    ? PROTOBUF_CONTENT_TYPE
    : PROMETHEUS_CONTENT_TYPE;
}

interface Range {
  type: string;
  params: Map<string, string>;
  q: number;
}

function parse(header: string): Range[] {
  const ranges: Range[] = [];
  for (const part of header.split(",")) {
    const [type, ...rest] = part.split(";").map((s) => s.trim());
    if (type === "") continue;
    const params = new Map<string, string>();
    let q = 1;
    for (const param of rest) {
      const eq = param.indexOf("=");
      if (eq < 0) continue;
      const key = param.slice(0, eq).trim().toLowerCase();
      const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1");
      if (key === "q") q = Number(value);
      else params.set(key, value);
    }
    if (!(q >= 0 && q <= 1)) q = 0;
    ranges.push({ type: type.toLowerCase(), params, q });
  }
  return ranges;
}

interface Served {
  format: ExpositionFormat;
  type: string;
  // The wildcard range (`text/*`) that matches the type, if any does.
  family?: string;
  // Parameters a range may give, and must give with these values when it does (`version`).
  optional: Readonly<Record<string, string>>;
  // Parameters a range must give, with these values (protobuf's `proto` and `encoding`).
  required: Readonly<Record<string, string>>;
}

// The types served, text first: when one range (`*/*`) matches several equally, text 0.0.4 wins.
// Protobuf matches only when named with its message and encoding, as client_golang's
// `expfmt.Negotiate` has it: no wildcard ever chooses it.
const TEXT: readonly Served[] = [
  {
    format: "prometheus",
    type: "text/plain",
    family: "text/*",
    optional: { version: "0.0.4" },
    required: {},
  },
  {
    format: "openmetrics",
    type: "application/openmetrics-text",
    family: "application/*",
    optional: { version: "1.0.0" },
    required: {},
  },
];
const WITH_PROTOBUF: readonly Served[] = [
  ...TEXT,
  {
    format: "protobuf",
    type: "application/vnd.google.protobuf",
    optional: {},
    required: { proto: "io.prometheus.client.MetricFamily", encoding: "delimited" },
  },
];

// How specifically a range names a served type: 3 with a parameter that names it exactly
// (`version=1.0.0`), 2 without one, 1 for `type/*`, 0 for `*/*`; -1 when it does not match
// (another type, another version, protobuf of another message or encoding).
function specificity(range: Range, served: Served): number {
  if (range.type === served.type) {
    for (const key in served.required) {
      if (range.params.get(key) !== served.required[key]) return -1;
    }
    let named = false;
    for (const key in served.optional) {
      const value = range.params.get(key);
      if (value === undefined) continue;
      if (value !== served.optional[key]) return -1;
      named = true;
    }
    return named || Object.keys(served.required).length > 0 ? 3 : 2;
  }
  if (served.family === undefined) return -1;
  return range.type === served.family ? 1 : range.type === "*/*" ? 0 : -1;
}

/**
 * Chooses the exposition format from an `Accept` header. Each format takes the quality of the
 * most specific range that matches it (so `text/plain;q=0, *\/*` excludes text); the format
 * with the highest quality wins, the one matched earliest in the header on a tie. No header,
 * or an empty one, means text 0.0.4.
 *
 * @param accept The `Accept` header, or null.
 * @returns The format, or undefined when the client accepts neither format.
 */
export function negotiateFormat(accept: string | null | undefined): Format | undefined;
/**
 * Chooses the exposition format from an `Accept` header, protobuf included when
 * `options.protobuf` is true. Protobuf is chosen only when the header names it with
 * `proto=io.prometheus.client.MetricFamily;encoding=delimited` and ranks it first: a higher
 * quality than the text formats, or the same and earlier in the header (Prometheus with native
 * histograms enabled asks for it so). A wildcard (`*\/*`) never chooses it.
 *
 * @param accept The `Accept` header, or null.
 * @param options Whether protobuf is served.
 * @returns The format, or undefined when the client accepts none of them.
 *
 * @example Prometheus with native histograms enabled
 * ```ts
 * import assert from "node:assert/strict";
 * import { negotiateFormat } from "./mod.ts";
 *
 * const accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;" +
 *   "encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,*\/*;q=0.1";
 * assert.equal(negotiateFormat(accept, { protobuf: true }), "protobuf");
 * assert.equal(negotiateFormat(accept), "openmetrics");
 * assert.equal(negotiateFormat("*\/*", { protobuf: true }), "prometheus");
 * ```
 */
export function negotiateFormat(
  accept: string | null | undefined,
  options: NegotiateOptions,
): ExpositionFormat | undefined;
export function negotiateFormat(
  accept: string | null | undefined,
  options: NegotiateOptions = {},
): ExpositionFormat | undefined {
  if (accept == null || accept.trim() === "") return "prometheus";
  const ranges = parse(accept);
  let best: ExpositionFormat | undefined;
  let bestQ = 0;
  let bestAt = Infinity;
  for (const served of options.protobuf === true ? WITH_PROTOBUF : TEXT) {
    let most = -1;
    let q = 0;
    let at = Infinity;
    ranges.forEach((range, i) => {
      const s = specificity(range, served);
      if (s > most) [most, q, at] = [s, range.q, i];
    });
    if (q > bestQ || (q > 0 && q === bestQ && at < bestAt)) [best, bestQ, bestAt] = [served.format, q, at];
  }
  return best;
}

/**
 * Whether an `Accept-Encoding` header allows a gzip-compressed response.
 *
 * @param acceptEncoding The `Accept-Encoding` header, or null.
 * @returns True when gzip (or `*`) is acceptable.
 */
export function acceptsGzip(acceptEncoding: string | null | undefined): boolean {
  if (!acceptEncoding) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const range of parse(acceptEncoding)) {
    if (range.type === "gzip" || range.type === "x-gzip") gzip = range.q;
    else if (range.type === "*") any = range.q;
  }
  return (gzip ?? any ?? 0) > 0;
}

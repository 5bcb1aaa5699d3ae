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
 * Returns the Content-Type of a format.
 *
 * @param format The exposition format.
 * @returns Its Content-Type header value.
 */
export function contentType(format: Format): string {
  return format === "openmetrics" ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
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

// The types served, text first: when one range (`*/*`) matches both equally, text 0.0.4 wins.
const SERVED: readonly { format: Format; type: string; family: string; version: string }[] = [
  { format: "prometheus", type: "text/plain", family: "text/*", version: "0.0.4" },
  { format: "openmetrics", type: "application/openmetrics-text", family: "application/*", version: "1.0.0" },
];

// How specifically a range names a served type: 3 with its version, 2 without one, 1 for
// `type/*`, 0 for `*/*`; -1 when it does not match (another type, or another version).
function specificity(range: Range, served: (typeof SERVED)[number]): number {
  if (range.type === served.type) {
    const version = range.params.get("version");
    return version === undefined ? 2 : version === served.version ? 3 : -1;
  }
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
export function negotiateFormat(accept: string | null | undefined): Format | undefined {
  if (accept == null || accept.trim() === "") return "prometheus";
  const ranges = parse(accept);
  let best: Format | undefined;
  let bestQ = 0;
  let bestAt = Infinity;
  for (const served of SERVED) {
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

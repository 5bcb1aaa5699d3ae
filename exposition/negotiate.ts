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

function formatFor(range: Range): Format | undefined {
  const version = range.params.get("version");
  switch (range.type) {
    case "application/openmetrics-text":
      return version === undefined || version === "1.0.0" ? "openmetrics" : undefined;
    case "text/plain":
      return version === undefined || version === "0.0.4" ? "prometheus" : undefined;
    case "text/*":
    case "*/*":
      return "prometheus";
    default:
      return undefined;
  }
}

/**
 * Chooses the exposition format from an `Accept` header: the acceptable type with the
 * highest quality, the earliest on a tie. No header, or an empty one, means text 0.0.4.
 *
 * @param accept The `Accept` header, or null.
 * @returns The format, or undefined when the client accepts neither format.
 */
export function negotiateFormat(accept: string | null | undefined): Format | undefined {
  if (accept == null || accept.trim() === "") return "prometheus";
  let best: Format | undefined;
  let bestQ = 0;
  for (const range of parse(accept)) {
    const format = formatFor(range);
    if (format !== undefined && range.q > bestQ) {
      best = format;
      bestQ = range.q;
    }
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

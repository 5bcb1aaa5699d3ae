/**
 * The exposition formats for a hand-made metrics endpoint (`@theus/theus/exposition`, npm
 * `theus/exposition`): which format a scraper asked for, its Content-Type, and whether it takes
 * gzip, and the protobuf format's bytes (`generateProtobuf`). `metricsHandler()` from the main
 * entry point does all of this for you; these are for servers that build their own response.
 *
 * @example Answer a scrape by hand
 * ```ts
 * import { contentType, negotiateFormat } from "./mod.ts";
 * import { generateLatest, Registry } from "../mod.ts";
 *
 * const registry = new Registry();
 * const request = new Request("http://localhost/metrics", {
 *   headers: { accept: "application/openmetrics-text;version=1.0.0" },
 * });
 * const format = negotiateFormat(request.headers.get("accept")) ?? "prometheus";
 * const response = new Response(await generateLatest(registry, { format }), {
 *   headers: { "content-type": contentType(format) },
 * });
 * ```
 *
 * @module
 */

export type { Format } from "./_render.ts";
export { generateProtobuf } from "./generate.ts";
export {
  acceptsGzip,
  contentType,
  type ExpositionFormat,
  negotiateFormat,
  type NegotiateOptions,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
} from "./negotiate.ts";

/**
 * theus: a Prometheus client for TypeScript, Deno- and Bun-first, also on Node and in edge
 * isolates. Every value lives in a backend: the memory backend by default, or a shared Redis
 * (`redis`, `upstash`) chosen by configuration, never by changing the code that records.
 *
 * This entry point holds what an application uses. Writing a backend: `@theus/theus/backend`;
 * content negotiation for a hand-made endpoint: `@theus/theus/exposition`; serving from Node's
 * `http` or Express: `@theus/theus/node`.
 *
 * @example Count requests and serve /metrics
 * ```ts ignore
 * import { Counter, metricsHandler } from "@theus/theus";
 *
 * const requests = new Counter({ name: "http_requests_total", help: "Requests", labelNames: ["status"] });
 * const metrics = metricsHandler();
 * Deno.serve((req) => {
 *   if (new URL(req.url).pathname === "/metrics") return metrics(req);
 *   requests.labels({ status: "200" }).inc();
 *   return new Response("hello");
 * });
 * ```
 *
 * @module
 */

export { Counter, type CounterOptions } from "./metrics/counter.ts";
export { Gauge, type GaugeOptions } from "./metrics/gauge.ts";
export {
  DEFAULT_BUCKETS,
  Histogram,
  type HistogramOptions,
  type NativeHistogramOptions,
} from "./metrics/histogram.ts";
export { exponentialBuckets, exponentialBucketsRange, linearBuckets } from "./metrics/buckets.ts";
export { EXEMPLAR_MAX_CHARS, type ExemplarLabels } from "./metrics/_exemplar.ts";
export { Summary, type SummaryOptions } from "./metrics/summary.ts";
export { Info, type InfoOptions } from "./metrics/info.ts";
export {
  Enum,
  type EnumOptions,
  StateSet,
  type StateSetOptions,
  type StateValues,
} from "./metrics/stateset.ts";
export { type LabelValues, Metric, type MetricOptions, OVERFLOW_LABEL_VALUE } from "./metrics/_metric.ts";
export type { InProgress, Timer } from "./metrics/_timer.ts";
export {
  AlreadyRegisteredError,
  defaultRegistry,
  Registry,
  type RegistryOptions,
} from "./metrics/registry.ts";
export type {
  Collector,
  Exemplar,
  HistogramFamily,
  HistogramSeries,
  InfoFamily,
  Labels,
  MetricFamily,
  MetricType,
  NativeBucket,
  NativeBuckets,
  Quantile,
  StateSetFamily,
  SummaryFamily,
  SummarySeries,
  ValueFamily,
  ValueSeries,
} from "./core/types.ts";
export {
  type Format,
  generateLatest,
  type GenerateOptions,
  generateProtobuf,
} from "./exposition/generate.ts";
export { metricsHandler, type MetricsHandlerOptions } from "./exposition/handler.ts";
export {
  Pushgateway,
  PushgatewayError,
  type PushgatewayFetch,
  type PushgatewayOptions,
} from "./exposition/pushgateway.ts";
export { type BuiltinBackendName, flush, loadBackend, type LoadBackendOptions } from "./setup/load.ts";
export { type SharedMemoryHandle, shareMemory, type ShareMemoryOptions } from "./setup/share.ts";
export { type WaitUntilContext, withFlush } from "./adapters/serverless.ts";
export { fromPromClient, type PromClientMetric, type PromClientRegistry } from "./adapters/prom_client.ts";
export {
  type BackendClass,
  type BackendConfig,
  BackendUnavailableError,
  type GaugeMode,
} from "./core/backend.ts";

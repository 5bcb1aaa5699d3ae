// What every HTTP adapter shares (instrument(), the Hono and the Node middleware): the options,
// the metrics and their one set per registry, the label values, routes from paths, and one
// request's record, which writes each metric once whatever happens to the request.

import { checkMetricName, describe } from "../core/_names.ts";
import { Counter } from "../metrics/counter.ts";
import { Gauge } from "../metrics/gauge.ts";
import { checkBuckets, Histogram } from "../metrics/histogram.ts";
import { OVERFLOW_LABEL_VALUE, removals } from "../metrics/_metric.ts";
import { checkMaxSeries, defaultRegistry, Registry } from "../metrics/registry.ts";
import type { ExemplarLabels } from "../metrics/_exemplar.ts";

/** Options every HTTP adapter takes; `In` is what the adapter's callbacks get. */
export interface HttpMetricsOptions<In> {
  /** Where the metrics are registered: `defaultRegistry` unless given. */
  registry?: Registry;
  /** Prepended to every metric name as it is (`myapp_` gives `myapp_http_requests_total`). */
  prefix?: string;
  /** The buckets of `http_request_duration_seconds`: {@linkcode HTTP_DURATION_BUCKETS} unless given. */
  buckets?: readonly number[];
  /**
   * The most series each HTTP metric keeps in this process, past which new label sets go to its
   * overflow series: {@linkcode HTTP_MAX_SERIES} unless given, or the registry's own `maxSeries`
   * when it sets one.
   */
  maxSeries?: number;
  /**
   * The `route` label of a request, instead of the adapter's own: the router's pattern where
   * there is one, else the path with id-like segments as `:id` ({@linkcode templatePath}).
   */
  route?: (input: In) => string;
  /**
   * Requests not to record: paths (the exact path, without the query, such as `"/metrics"`),
   * or a function that returns true for them.
   */
  exclude?: readonly string[] | ((input: In) => boolean);
  /** Also record `http_requests_in_flight{method}`, the requests being handled. */
  inFlight?: boolean;
  /** Also record `http_request_size_bytes`, the request body size from `Content-Length`. */
  requestSize?: boolean;
  /** Also record `http_response_size_bytes`, the response body size as sent. */
  responseSize?: boolean;
  /**
   * Where a request's duration ends: when the response's headers are ready (`"headers"`, the
   * default), or when its body has been sent (`"body"`), for streamed responses. The request
   * is counted at the same moment.
   */
  until?: "headers" | "body";
  /**
   * Exemplars on `http_request_duration_seconds` and `http_requests_total`: `true` takes
   * `trace_id` and `span_id` from a W3C `traceparent` header whose trace is sampled; a
   * function returns the exemplar's labels for a request, or undefined for none. None by
   * default. OpenMetrics writes them, and Prometheus keeps them with
   * `--enable-feature=exemplar-storage`.
   */
  exemplars?: boolean | ((input: In) => ExemplarLabels | undefined);
}

/** The buckets of `http_request_duration_seconds`, as `@hono/prometheus` has them. */
export const HTTP_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
]);

/** The buckets of the request and response size histograms: 64 bytes to 64 MiB, by 4. */
export const HTTP_SIZE_BUCKETS: readonly number[] = Object.freeze(
  Array.from({ length: 11 }, (_, i) => 64 * 4 ** i),
);

/** The series cap of each HTTP metric unless the options or the registry set one. */
export const HTTP_MAX_SERIES = 2000;

/**
 * The `route` of requests that matched no route: with a router, none of its routes; without
 * one, a 404 answer, so that paths nobody serves never become series of their own.
 */
export const UNMATCHED_ROUTE = "(unmatched)";

/** The status of a request whose client went away before the response started (nginx's 499). */
export const CLIENT_CLOSED = 499;

const KEYS = new Set([
  "registry",
  "prefix",
  "buckets",
  "maxSeries",
  "route",
  "exclude",
  "inFlight",
  "requestSize",
  "responseSize",
  "until",
  "exemplars",
]);

/** The options, checked once when the adapter is made. */
export interface CheckedOptions<In> {
  readonly metrics: HttpMetrics;
  readonly route: ((input: In) => string) | undefined;
  readonly exclude: ((input: In, path: () => string) => boolean) | undefined;
  readonly untilBody: boolean;
  /** The exemplar of a request, from the input or its `traceparent` header. */
  readonly exemplar:
    | ((input: In, traceparent: () => string | null | undefined) => ExemplarLabels | undefined)
    | undefined;
}

/**
 * Checks the options of an HTTP adapter and finds or creates its metrics.
 *
 * @param options What the caller gave.
 * @param what The adapter, for error messages (`instrument()`).
 */
export function checkOptions<In>(
  options: unknown,
  what: string,
): CheckedOptions<In> {
  if (options === undefined) options = {};
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TypeError(`Invalid options of ${what}: expected an object, got ${describe(options)}`);
  }
  const given = options as HttpMetricsOptions<In>;
  for (const key of Object.keys(given)) {
    if (!KEYS.has(key)) {
      const known = [...KEYS].map((name) => `"${name}"`).join(", ");
      throw new TypeError(`Unknown option "${key}" of ${what}: expected one of ${known}`);
    }
  }
  const registry = given.registry ?? defaultRegistry;
  if (!(registry instanceof Registry)) {
    throw new TypeError(`Invalid registry of ${what}: expected a Registry, got ${describe(given.registry)}`);
  }
  const prefix = given.prefix ?? "";
  if (typeof prefix !== "string" || (prefix !== "" && !isNamePrefix(prefix))) {
    throw new TypeError(
      `Invalid prefix of ${what}: expected the start of a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), got ${
        describe(given.prefix)
      }`,
    );
  }
  const maxSeries = given.maxSeries === undefined
    ? (registry.maxSeries === Infinity ? HTTP_MAX_SERIES : undefined)
    : checkMaxSeries(given.maxSeries, `maxSeries of ${what}`);
  for (const key of ["route", "exclude"] as const) {
    const value = given[key];
    if (value !== undefined && typeof value !== "function" && !(key === "exclude" && Array.isArray(value))) {
      const expected = key === "exclude" ? "an array of paths or a function" : "a function";
      throw new TypeError(`Invalid ${key} of ${what}: expected ${expected}, got ${describe(value)}`);
    }
  }
  for (const key of ["inFlight", "requestSize", "responseSize"] as const) {
    if (given[key] !== undefined && typeof given[key] !== "boolean") {
      throw new TypeError(`Invalid ${key} of ${what}: expected a boolean, got ${describe(given[key])}`);
    }
  }
  if (given.until !== undefined && given.until !== "headers" && given.until !== "body") {
    throw new TypeError(
      `Invalid until of ${what}: expected "headers" or "body", got ${describe(given.until)}`,
    );
  }
  const excluded = excluder(given.exclude, what);
  const exemplars = given.exemplars;
  if (exemplars !== undefined && typeof exemplars !== "boolean" && typeof exemplars !== "function") {
    throw new TypeError(
      `Invalid exemplars of ${what}: expected a boolean or a function, got ${describe(exemplars)}`,
    );
  }
  return {
    metrics: httpMetrics(registry, prefix, {
      buckets: given.buckets ?? HTTP_DURATION_BUCKETS,
      maxSeries,
      inFlight: given.inFlight === true,
      requestSize: given.requestSize === true,
      responseSize: given.responseSize === true,
    }),
    route: given.route,
    exclude: excluded,
    untilBody: given.until === "body",
    exemplar: exemplars === true
      ? (_input, header) => traceExemplar(header())
      : typeof exemplars === "function"
      ? (input) => exemplars(input)
      : undefined,
  };
}

function isNamePrefix(prefix: string): boolean {
  try {
    checkMetricName(`${prefix}x`);
    return true;
  } catch {
    return false;
  }
}

function excluder<In>(
  exclude: HttpMetricsOptions<In>["exclude"],
  what: string,
): CheckedOptions<In>["exclude"] {
  if (exclude === undefined) return undefined;
  if (typeof exclude === "function") return (input) => exclude(input) === true;
  const paths = new Set<string>();
  for (const path of exclude) {
    if (typeof path !== "string" || !path.startsWith("/")) {
      throw new TypeError(
        `Invalid path in exclude of ${what}: expected a string starting with "/", got ${describe(path)}`,
      );
    }
    paths.add(path);
  }
  return (_input, path) => paths.has(path());
}

// --- The metrics ---

interface MetricChoice {
  buckets: readonly number[];
  maxSeries: number | undefined;
  inFlight: boolean;
  requestSize: boolean;
  responseSize: boolean;
}

const LABELS = ["method", "status", "ok", "route"] as const;

/** The series of one label set, in each HTTP metric. */
export interface HttpSeries {
  readonly duration: Histogram;
  readonly requests: Counter;
  readonly requestSize: Histogram | undefined;
  readonly responseSize: Histogram | undefined;
}

/** The metrics of one registry and prefix, shared by every adapter that records into them. */
export class HttpMetrics {
  readonly duration: Histogram;
  readonly requests: Counter;
  inFlight: Gauge | undefined;
  requestSize: Histogram | undefined;
  responseSize: Histogram | undefined;

  /** The duration buckets, as checked (`+Inf` last). */
  readonly buckets: readonly number[];

  // The series of each label set seen, by route, status and method: one lookup for every metric
  // of a request. Emptied when children are removed from any of the metrics, or one is added.
  // It holds real series only, so it is bounded by the cap; the overflow series goes through
  // labels() every time, to be counted.
  #cache = new Map<string, Map<number, Map<string, HttpSeries>>>();
  #removals = 0;

  constructor(duration: Histogram, requests: Counter, buckets: readonly number[]) {
    this.duration = duration;
    this.requests = requests;
    this.buckets = buckets;
  }

  /** Starts the record of one request, with its exemplar if it has one. */
  begin(method: string, exemplar?: ExemplarLabels): RequestRecord {
    return new RequestRecord(this, method, exemplar);
  }

  /** Forgets the cached series: a metric was added. */
  forget(): void {
    this.#cache.clear();
  }

  /** The series of a label set. */
  series(method: string, status: number, route: string): HttpSeries {
    const seen = removals(this.duration) + removals(this.requests) +
      (this.requestSize === undefined ? 0 : removals(this.requestSize)) +
      (this.responseSize === undefined ? 0 : removals(this.responseSize));
    if (seen !== this.#removals) {
      this.#cache.clear();
      this.#removals = seen;
    }
    let byStatus = this.#cache.get(route);
    let byMethod = byStatus?.get(status);
    const cached = byMethod?.get(method);
    if (cached !== undefined) return cached;
    const labels = {
      method,
      status: String(status),
      ok: status >= 200 && status < 300 ? "true" : "false",
      route,
    };
    const series: HttpSeries = {
      duration: this.duration.labels(labels),
      requests: this.requests.labels(labels),
      requestSize: this.requestSize?.labels(labels),
      responseSize: this.responseSize?.labels(labels),
    };
    if (
      series.duration.labelValues.route === OVERFLOW_LABEL_VALUE ||
      series.requests.labelValues.route === OVERFLOW_LABEL_VALUE ||
      series.requestSize?.labelValues.route === OVERFLOW_LABEL_VALUE ||
      series.responseSize?.labelValues.route === OVERFLOW_LABEL_VALUE
    ) return series;
    if (byStatus === undefined) this.#cache.set(route, byStatus = new Map());
    if (byMethod === undefined) byStatus.set(status, byMethod = new Map());
    byMethod.set(method, series);
    return series;
  }
}

const sets = new WeakMap<Registry, Map<string, HttpMetrics>>();

// The metrics of a registry and prefix: created by the first adapter, reused by the next ones,
// which may add extras. Two adapters cannot disagree on the buckets or the cap.
function httpMetrics(registry: Registry, prefix: string, choice: MetricChoice): HttpMetrics {
  let byPrefix = sets.get(registry);
  if (byPrefix === undefined) sets.set(registry, byPrefix = new Map());
  const common = { labelNames: LABELS, registry, maxSeries: choice.maxSeries };
  let metrics = byPrefix.get(prefix);
  if (metrics === undefined) {
    const duration = new Histogram({
      name: `${prefix}http_request_duration_seconds`,
      help: "Duration of HTTP requests in seconds",
      buckets: choice.buckets,
      ...common,
    });
    let requests: Counter;
    try {
      requests = new Counter({
        name: `${prefix}http_requests_total`,
        help: "Total number of HTTP requests",
        ...common,
      });
    } catch (error) {
      registry.unregister(duration);
      throw error;
    }
    metrics = new HttpMetrics(duration, requests, checkBuckets(choice.buckets, duration.name));
    byPrefix.set(prefix, metrics);
  } else {
    const name = metrics.duration.name;
    const buckets = checkBuckets(choice.buckets, name);
    if (
      buckets.length !== metrics.buckets.length || buckets.some((bound, i) => bound !== metrics!.buckets[i])
    ) {
      throw new TypeError(
        `Cannot record HTTP metrics with other buckets: ${name} has [${metrics.buckets}] in this registry already`,
      );
    }
    if (choice.maxSeries !== undefined && metrics.duration.maxSeries !== choice.maxSeries) {
      throw new TypeError(
        `Cannot record HTTP metrics with maxSeries ${choice.maxSeries}: ${name} has ${metrics.duration.maxSeries} in this registry already`,
      );
    }
  }
  if (
    (choice.requestSize && metrics.requestSize === undefined) ||
    (choice.responseSize && metrics.responseSize === undefined)
  ) metrics.forget();
  if (choice.inFlight && metrics.inFlight === undefined) {
    metrics.inFlight = new Gauge({
      name: `${prefix}http_requests_in_flight`,
      help: "HTTP requests being handled",
      labelNames: ["method"],
      registry,
      mode: "livesum",
    });
  }
  if (choice.requestSize && metrics.requestSize === undefined) {
    metrics.requestSize = new Histogram({
      name: `${prefix}http_request_size_bytes`,
      help: "Size of HTTP request bodies in bytes, from Content-Length",
      buckets: HTTP_SIZE_BUCKETS,
      ...common,
    });
  }
  if (choice.responseSize && metrics.responseSize === undefined) {
    metrics.responseSize = new Histogram({
      name: `${prefix}http_response_size_bytes`,
      help: "Size of HTTP response bodies in bytes, as sent",
      buckets: HTTP_SIZE_BUCKETS,
      ...common,
    });
  }
  return metrics;
}

// --- Label values ---

const METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
  "QUERY",
]);

/** The `method` label: a standard method as it is, anything else `_OTHER`, so methods stay few. */
export function methodLabel(method: string | undefined): string {
  if (method === undefined) return "GET";
  if (METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return METHODS.has(upper) ? upper : "_OTHER";
}

/** The path of a URL: what follows the authority, without the query. */
export function pathOf(url: string): string {
  const scheme = url.indexOf("://");
  let start = 0;
  if (scheme !== -1) {
    start = url.indexOf("/", scheme + 3);
    if (start === -1) return "/";
  }
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 63 || c === 35) { // ? #
      end = i;
      break;
    }
  }
  return url.slice(start, end) || "/";
}

// --- Routes from paths ---

/**
 * Whether a path segment looks like an id: a number, a UUID, hex of 8 or more, a ULID, or a
 * long base64 or base64url token (20 or more characters with digits and letters in both
 * cases, or 32 or more with digits and letters and no `-`, so that slugs are left alone).
 */
export function isIdSegment(segment: string): boolean {
  return isIdAt(segment, 0, segment.length);
}

// isIdSegment on path[start, end), in one pass over its characters and no regular expression:
// this runs for every segment of every request.
function isIdAt(path: string, start: number, end: number): boolean {
  const n = end - start;
  if (n === 0) return false;
  let digits = 0;
  let upper = 0;
  let lower = 0;
  let hex = 0;
  let dashes = 0;
  for (let i = start; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c >= 48 && c <= 57) digits++;
    else if (c >= 97 && c <= 122) {
      lower++;
      if (c <= 102) hex++;
    } else if (c >= 65 && c <= 90) {
      upper++;
      if (c <= 70) hex++;
    } else if (c === 45) dashes++;
    else if (c !== 95 && c !== 43 && c !== 61) return false; // not a character of base64 or base64url
  }
  if (digits === n) return true;
  if (n < 8) return false;
  if (digits + hex === n) return true;
  if (n === 36 && dashes === 4) return isUuid(path, start);
  if (n === 26 && digits + upper + lower === n && isUlid(path, start)) return true;
  if (n < 20 || digits === 0) return false;
  return (upper > 0 && lower > 0) || (n >= 32 && dashes === 0 && upper + lower > 0);
}

// 8-4-4-4-12 hex digits.
function isUuid(path: string, start: number): boolean {
  for (let i = 0; i < 36; i++) {
    const c = path.charCodeAt(start + i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 45) return false;
    } else if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

// 26 characters of Crockford's base32 (no I, L, O or U), the first 0 to 7 (a 48-bit time).
function isUlid(path: string, start: number): boolean {
  const first = path.charCodeAt(start);
  if (first < 48 || first > 55) return false;
  for (let i = 1; i < 26; i++) {
    const c = path.charCodeAt(start + i) | 32; // letters in lower case; digits unchanged
    if (c === 105 || c === 108 || c === 111 || c === 117) return false;
  }
  return true;
}

/**
 * The route of a path for a service without a router: every segment that looks like an id
 * ({@linkcode isIdSegment}) becomes `:id`. `/users/83712/orders/3f9a1c20` gives
 * `/users/:id/orders/:id`.
 *
 * @param path A URL path, without the query.
 * @returns The path with its id-like segments replaced.
 */
export function templatePath(path: string): string {
  let out = "";
  let copied = 0;
  let start = 0;
  const n = path.length;
  for (let i = 0; i <= n; i++) {
    if (i < n && path.charCodeAt(i) !== 47) continue;
    if (isIdAt(path, start, i)) {
      out += path.slice(copied, start) + ":id";
      copied = i;
    }
    start = i + 1;
  }
  return copied === 0 ? path : out + path.slice(copied);
}

/** The default route of a request without a router: its template, or unmatched for a 404. */
export function pathRoute(path: string, status: number): string {
  return status === 404 ? UNMATCHED_ROUTE : templatePath(path);
}

// --- One request ---

/**
 * The record of one request, begun when it arrives. `end` records the count, the duration and
 * the request size, once; `sent` records the response size, once; later calls do nothing.
 */
export class RequestRecord {
  readonly #metrics: HttpMetrics;
  readonly #method: string;
  readonly #start = performance.now();
  readonly #inFlight: Gauge | undefined;
  #series: HttpSeries | undefined;
  #sent = false;

  readonly #exemplar: ExemplarLabels | undefined;

  constructor(metrics: HttpMetrics, method: string, exemplar: ExemplarLabels | undefined) {
    this.#metrics = metrics;
    this.#method = method;
    this.#exemplar = exemplar;
    const inFlight = this.#inFlight = metrics.inFlight?.labels({ method });
    inFlight?.inc();
  }

  /**
   * Counts the request and records its duration, until now, and its size when known. Only the
   * first call records.
   */
  end(route: string, status: number, requestBytes?: number): void {
    if (this.#series !== undefined) return;
    const seconds = (performance.now() - this.#start) / 1000;
    const series = this.#series = this.#metrics.series(this.#method, status, route);
    const exemplar = this.#exemplar;
    if (exemplar === undefined) {
      series.duration.observe(seconds);
      series.requests.inc();
    } else {
      series.duration.observe(seconds, exemplar);
      series.requests.inc(1, exemplar);
    }
    if (requestBytes !== undefined) series.requestSize?.observe(requestBytes);
    this.#inFlight?.dec();
  }

  /** Records the size of the response body, once, after `end`. */
  sent(bytes: number): void {
    if (this.#sent || this.#series === undefined) return;
    this.#sent = true;
    this.#series.responseSize?.observe(bytes);
  }
}

/** A body size from a `Content-Length` value; undefined when there is none or it is invalid. */
export function contentLength(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || !/^[0-9]+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * A stream that passes a body through, counting its bytes, and calls `done` once with the
 * count when the body has been sent, has failed, or was cancelled by the reader, or when `gone`
 * settles (the exchange is over: a runtime may drop the body of a client that went away
 * without cancelling it).
 */
export function countingStream(
  body: ReadableStream<Uint8Array>,
  done: (bytes: number) => void,
  gone?: Promise<unknown>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    done(bytes);
  };
  gone?.then(finish, finish);
  return new ReadableStream<Uint8Array>({
    async pull(controller): Promise<void> {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        finish();
        controller.error(error);
        return;
      }
      if (chunk.done) {
        finish();
        controller.close();
        return;
      }
      bytes += chunk.value?.byteLength ?? 0;
      controller.enqueue(chunk.value);
    },
    cancel(reason): Promise<void> {
      finish();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/**
 * Settles when the exchange is over, the response delivered or the client gone: Deno's
 * `info.completed` where the handler got it (Deno warns about listening to `request.signal`,
 * which it also aborts after a response that succeeded), else the request's signal aborting.
 */
function over(request: Request, info: unknown): Promise<unknown> {
  const completed = typeof info === "object" && info !== null
    ? (info as { completed?: unknown }).completed
    : undefined;
  if (completed instanceof Promise) return completed;
  const signal = request.signal;
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
}

/**
 * The exemplar of a W3C `traceparent` header (`00-<trace-id>-<parent-id>-<flags>`): its
 * `trace_id` and `span_id`, when the header is valid and the trace is sampled; else undefined.
 */
export function traceExemplar(traceparent: string | null | undefined): ExemplarLabels | undefined {
  if (typeof traceparent !== "string") return undefined;
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(traceparent.trim());
  if (match === null || match[1] === "ff" || (match[1] === "00" && match[5] !== undefined)) return undefined;
  if (/^0+$/.test(match[2]) || /^0+$/.test(match[3])) return undefined;
  if ((parseInt(match[4], 16) & 1) === 0) return undefined; // not sampled: no trace to look at
  return { trace_id: match[2], span_id: match[3] };
}

/** The size of a request body: its `Content-Length`, 0 without a body, else unknown. */
export function requestBytes(request: Request): number | undefined {
  return contentLength(request.headers.get("content-length")) ?? (request.body === null ? 0 : undefined);
}

/**
 * Records a request whose response is ready, and returns the response to send: the same one,
 * or, when the body has to be counted (`until: "body"`, or a response size without a
 * `Content-Length`), one whose body is counted as it is sent, recorded when it ends.
 */
export function recordResponse(
  checked: { readonly metrics: HttpMetrics; readonly untilBody: boolean },
  record: RequestRecord,
  request: Request,
  response: Response,
  route: string,
  requestBytes: number | undefined,
  info?: unknown,
): Response {
  const status = response.status;
  const untilBody = checked.untilBody;
  const counted = checked.metrics.responseSize !== undefined;
  if (!untilBody && !counted) {
    // The common case, and the cheap one: the body is not touched (reading `body` makes a
    // stream of a string body on some runtimes).
    record.end(route, status, requestBytes);
    return response;
  }
  const body = response.body;
  const length = counted && body !== null ? contentLength(response.headers.get("content-length")) : 0;
  if (body === null || status === 101 || request.method === "HEAD" || (!untilBody && length !== undefined)) {
    record.end(route, status, requestBytes);
    if (counted) record.sent(length ?? 0);
    return response;
  }
  if (!untilBody) record.end(route, status, requestBytes);
  const tapped = countingStream(body, (bytes) => {
    record.end(route, status, requestBytes);
    record.sent(bytes);
  }, untilBody ? over(request, info) : undefined);
  return new Response(tapped, response);
}

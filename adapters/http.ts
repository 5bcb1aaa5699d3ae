/**
 * Request metrics for fetch-style handlers: `Deno.serve`, `Bun.serve`, Workers' `fetch`, or
 * anything that takes a `Request` and returns a `Response`. `instrument(handler)` records, for
 * every request, `http_request_duration_seconds` (a histogram) and `http_requests_total` (a
 * counter), labelled `method`, `status`, `ok` and `route`: the names and labels of
 * `@hono/prometheus`, so its dashboards carry over. The in-flight gauge and the size histograms
 * are optional extras.
 *
 * Routes stay few: without a router, id-like path segments become `:id`
 * ({@linkcode templatePath}) and a 404 is counted under {@linkcode UNMATCHED_ROUTE}; a `route`
 * option can say better. Each HTTP metric keeps at most `maxSeries` series
 * ({@linkcode HTTP_MAX_SERIES} by default); past it, new label sets are recorded into one
 * overflow series and counted in `theus_series_overflow_total`.
 *
 * @example Deno.serve
 * ```ts ignore
 * import { metricsHandler } from "@theus/theus";
 * import { instrument } from "@theus/theus/http";
 *
 * const metrics = metricsHandler();
 * Deno.serve(instrument((request) => {
 *   if (new URL(request.url).pathname === "/metrics") return metrics(request);
 *   return new Response("hello\n");
 * }, { exclude: ["/metrics"] }));
 * ```
 *
 * @module
 */

import {
  checkOptions,
  type HttpMetricsOptions,
  methodLabel,
  pathOf,
  pathRoute,
  recordResponse,
  requestBytes,
  type RequestRecord,
} from "./_http.ts";

export {
  HTTP_DURATION_BUCKETS,
  HTTP_MAX_SERIES,
  HTTP_SIZE_BUCKETS,
  type HttpMetricsOptions,
  isIdSegment,
  templatePath,
  traceExemplar,
  UNMATCHED_ROUTE,
} from "./_http.ts";

/** Options of {@linkcode instrument}: `route` and `exclude` get the `Request`. */
export type InstrumentOptions = HttpMetricsOptions<Request>;

/**
 * Wraps a fetch-style handler so that every request it answers is recorded. Its extra
 * arguments (`info` on Deno, `server` on Bun, `env` and `ctx` on Workers) and `this` are passed
 * through, and its `Response` comes back as it is, unless the body has to be counted: with
 * `until: "body"`, or `responseSize` without a `Content-Length`, the body is passed through a
 * stream that counts it.
 *
 * - The duration runs on the monotonic clock (`performance.now()`), from the call until the
 *   handler's response is ready, or, with `until: "body"`, until its body has been sent.
 * - A handler that throws, or whose promise rejects, is counted as a 500, and the error is
 *   rethrown.
 * - A request whose client goes away is counted once: when the body is cancelled or the
 *   request's signal aborts, with the response's status.
 * - `route` is the option's, else the path with id-like segments as `:id`, and
 *   {@linkcode UNMATCHED_ROUTE} for a 404.
 * - A Bun handler that upgraded the request to a WebSocket (and returns nothing) is counted
 *   as a 101.
 *
 * @param handler The handler.
 * @param options Registry, prefix, buckets, cap, route, exclusions and extras.
 * @returns The handler, recording.
 * @throws {TypeError} For an unknown or invalid option, or buckets or a cap other than those of
 * the HTTP metrics already in the registry.
 * @throws {AlreadyRegisteredError} When the registry has a metric of one of the names already,
 * not made by theus' HTTP adapters.
 *
 * @example Bun.serve
 * ```ts ignore
 * import { instrument } from "@theus/theus/http";
 *
 * Bun.serve({ port: 8080, fetch: instrument(() => new Response("hello\n")) });
 * ```
 *
 * @example In a test, with its own registry
 * ```ts
 * import { generateLatest, Registry } from "../mod.ts";
 * import { instrument } from "./http.ts";
 *
 * const registry = new Registry();
 * const handler = instrument(() => new Response("hi"), { registry });
 * await handler(new Request("http://localhost/users/83712"));
 * const text = await generateLatest(registry);
 * // http_requests_total{method="GET",status="200",ok="true",route="/users/:id"} 1
 * ```
 */
export function instrument<Rest extends unknown[], Result extends Response | undefined>(
  handler: (request: Request, ...rest: Rest) => Result | Promise<Result>,
  options?: InstrumentOptions,
): (request: Request, ...rest: Rest) => Result | Promise<Result> {
  if (typeof handler !== "function") {
    throw new TypeError(`Invalid handler of instrument(): expected a function, got ${typeof handler}`);
  }
  const checked = checkOptions<Request>(options, "instrument()");
  const { metrics, route, exclude, exemplar } = checked;
  const sized = metrics.requestSize !== undefined;

  const done = (request: Request, record: RequestRecord, response: Result, info: unknown): Result => {
    const bytes = sized ? requestBytes(request) : undefined;
    if (response === undefined) {
      record.end(routeOf(request, 101), 101, bytes);
      record.sent(0);
      return response;
    }
    return recordResponse(
      checked,
      record,
      request,
      response,
      routeOf(request, response.status),
      bytes,
      info,
    ) as Result;
  };

  const routeOf = (request: Request, status: number): string =>
    route === undefined ? pathRoute(pathOf(request.url), status) : route(request);

  const wrapped = function (this: unknown, request: Request): Result | Promise<Result> {
    // `arguments` hands the extra arguments on without copying them into an array first.
    const args = arguments as unknown as [Request, ...Rest];
    if (exclude !== undefined && exclude(request, () => pathOf(request.url))) {
      return handler.apply(this, args);
    }
    const record = metrics.begin(
      methodLabel(request.method),
      exemplar?.(request, () => request.headers.get("traceparent")),
    );
    let result: Result | Promise<Result>;
    try {
      result = handler.apply(this, args);
    } catch (error) {
      record.end(routeOf(request, 500), 500, sized ? requestBytes(request) : undefined);
      throw error;
    }
    if (result instanceof Promise) {
      return result.then(
        (response) => done(request, record, response, args[1]),
        (error) => {
          record.end(routeOf(request, 500), 500, sized ? requestBytes(request) : undefined);
          throw error;
        },
      );
    }
    return done(request, record, result, args[1]);
  };
  return wrapped as unknown as (request: Request, ...rest: Rest) => Result | Promise<Result>;
}

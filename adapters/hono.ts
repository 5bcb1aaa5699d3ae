/**
 * Request metrics for Hono: `app.use(prometheus())` records `http_request_duration_seconds`
 * and `http_requests_total`, labelled `method`, `status`, `ok` and `route`, with the route
 * pattern that matched (`/users/:id`) as the label. The names and labels are those of
 * `@hono/prometheus`, so its dashboards carry over; the values live wherever theus' backend
 * keeps them, one process or a fleet.
 *
 * Hono is not imported: the middleware uses a few members of Hono's context, so any Hono 4
 * works, on Bun, Deno, Node (`@hono/node-server`) and Workers.
 *
 * @example
 * ```ts ignore
 * import { Hono } from "hono";
 * import { metricsHandler } from "@theus/theus";
 * import { prometheus } from "@theus/theus/hono";
 *
 * const app = new Hono();
 * app.use(prometheus({ exclude: ["/metrics"] }));
 * app.get("/users/:id", (c) => c.json({ id: c.req.param("id") }));
 * app.get("/metrics", (c) => metricsHandler()(c.req.raw));
 * export default app;
 * ```
 *
 * @module
 */

import {
  checkOptions,
  type HttpMetricsOptions,
  methodLabel,
  pathOf,
  recordResponse,
  requestBytes,
  UNMATCHED_ROUTE,
} from "./_http.ts";

export {
  HTTP_DURATION_BUCKETS,
  HTTP_MAX_SERIES,
  HTTP_SIZE_BUCKETS,
  type HttpMetricsOptions,
  UNMATCHED_ROUTE,
} from "./_http.ts";

/** The members of Hono's `Context` the middleware uses. */
export interface HonoContext {
  /** The request. */
  readonly req: {
    /** The fetch `Request`. */
    readonly raw: Request;
    /** The path of the route being run (`/users/:id`). */
    readonly routePath: string;
    /** The index of the handler being run among those that matched (Hono 4). */
    readonly routeIndex?: number;
  };
  /** The response, once a handler has set it. */
  res: Response;
  /** The second argument of `app.fetch` (Deno's handler info, Workers' bindings). */
  readonly env?: unknown;
}

/** A Hono middleware, as `app.use()` takes it. */
export type HonoMiddleware = (c: HonoContext, next: () => Promise<void>) => Promise<void>;

/** Options of {@linkcode prometheus}: `route` and `exclude` get Hono's context. */
export type HonoMetricsOptions = HttpMetricsOptions<HonoContext>;

/**
 * A Hono middleware that records every request it sees. Put it first (`app.use(prometheus())`)
 * so that it times the whole request.
 *
 * - `route` is the pattern of the route that answered (Hono's `routePath`), with sub-apps'
 *   mount paths; a request that no route answered is counted under
 *   {@linkcode UNMATCHED_ROUTE}.
 * - The duration runs on the monotonic clock, until the response is ready, or, with
 *   `until: "body"`, until its body has been sent.
 * - A handler that throws is counted with the status of the answer Hono's error handler makes
 *   (500 unless it says otherwise). An error that leaves the middleware is counted as a 500 and
 *   rethrown.
 * - A request whose client goes away is counted once.
 *
 * @param options Registry, prefix, buckets, cap, route, exclusions and extras.
 * @returns The middleware.
 * @throws {TypeError} For an unknown or invalid option.
 * @throws {AlreadyRegisteredError} When the registry has a metric of one of the names already,
 * not made by theus' HTTP adapters.
 */
export function prometheus(options?: HonoMetricsOptions): HonoMiddleware {
  const checked = checkOptions<HonoContext>(options, "prometheus()");
  const { metrics, route, exclude, exemplar } = checked;
  const sized = metrics.requestSize !== undefined;
  return (c: HonoContext, next: () => Promise<void>): Promise<void> => {
    const request = c.req.raw;
    if (exclude !== undefined && exclude(c, () => pathOf(request.url))) return next();
    // Which handler runs now: this middleware. The index is a field; routePath builds an array.
    const own = c.req.routeIndex ?? c.req.routePath;
    const record = metrics.begin(
      methodLabel(request.method),
      exemplar?.(c, () => request.headers.get("traceparent")),
    );
    const bytes = sized ? requestBytes(request) : undefined;
    return next().then(() => {
      const response = c.res;
      const sent = recordResponse(
        checked,
        record,
        request,
        response,
        route === undefined ? routeAfter(c, own) : route(c),
        bytes,
        c.env,
      );
      if (sent !== response) c.res = sent;
    }, (error: unknown) => {
      record.end(route === undefined ? routeAfter(c, own) : route(c), 500, bytes);
      throw error;
    });
  };
}

// The route that answered: after the handlers ran, Hono's current handler is the last one that
// ran, this middleware when no route did.
function routeAfter(c: HonoContext, own: number | string): string {
  const req = c.req;
  if (typeof own === "number" ? req.routeIndex === own : req.routePath === own) return UNMATCHED_ROUTE;
  return req.routePath;
}

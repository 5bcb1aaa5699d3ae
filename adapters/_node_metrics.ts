// requestMetrics(): request metrics as Express-style middleware, for node:http servers, Express,
// Connect and the frameworks built on them. Re-exported by node.ts.

import {
  checkOptions,
  CLIENT_CLOSED,
  contentLength,
  type HttpMetricsOptions,
  methodLabel,
  pathOf,
  pathRoute,
  type RequestRecord,
} from "./_http.ts";

/** The members of Node's `IncomingMessage` (or Express's `Request`) that {@linkcode requestMetrics} uses. */
export interface NodeMetricsRequest {
  /** The method. */
  readonly method?: string;
  /** The request target, relative to the mount path under Express. */
  readonly url?: string;
  /** The request target as received, set by Express. */
  readonly originalUrl?: string;
  /** The mount path of the router that matched, set by Express. */
  readonly baseUrl?: string;
  /** The route that matched, set by Express. */
  readonly route?: { readonly path?: unknown } | null;
  /** The headers, names in lower case. */
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** The members of Node's `ServerResponse` (or Express's `Response`) that {@linkcode requestMetrics} uses. */
export interface NodeMetricsResponse {
  /** The status, as set so far. */
  statusCode: number;
  /** Writes the status line and headers; wrapped to see when the headers go out. */
  writeHead(statusCode: number, ...rest: never[]): unknown;
  /** Writes a chunk of the body; wrapped, when the response size is recorded, to count it. */
  write(chunk: unknown, ...rest: never[]): boolean;
  /** Ends the response; wrapped, when the response size is recorded, to count its last chunk. */
  end(...args: never[]): unknown;
  /** A header set so far. */
  getHeader(name: string): unknown;
  /** Adds a listener for the end of the response (`finish`) or of the connection (`close`). */
  once(event: "finish" | "close", listener: () => void): unknown;
}

/** Express-style middleware: `next` is optional, for a plain `node:http` server. */
export type NodeMiddleware = (
  req: NodeMetricsRequest,
  res: NodeMetricsResponse,
  next?: (error?: unknown) => void,
) => void;

/** Options of {@linkcode requestMetrics}: `route` and `exclude` get the Node request. */
export type NodeMetricsOptions = HttpMetricsOptions<NodeMetricsRequest>;

/**
 * Express-style middleware `(req, res, next)` that records every request it sees, for
 * Express, Connect and `node:http` servers. Put it first (`app.use(requestMetrics())`).
 *
 * - `route` is Express's route (`req.baseUrl + req.route.path`, `/api/users/:id`), read when
 *   the headers go out. Without one (plain `node:http`, or a file from `express.static`), it is
 *   the path with id-like segments as `:id`, and a 404 is counted under `(unmatched)`.
 * - The duration runs on the monotonic clock, from the middleware until the headers are
 *   written, or, with `until: "body"`, until the response has finished.
 * - A handler that throws is counted with the status of the answer the framework makes (500
 *   for Express's own error handler).
 * - A request whose client goes away is counted once: with the status sent, or 499 when the
 *   headers had not gone out.
 *
 * @param options Registry, prefix, buckets, cap, route, exclusions and extras.
 * @returns The middleware. With `node:http`, call it first with `(req, res)`.
 * @throws {TypeError} For an unknown or invalid option.
 * @throws {AlreadyRegisteredError} When the registry has a metric of one of the names already,
 * not made by theus' HTTP adapters.
 *
 * @example Express
 * ```ts ignore
 * import express from "express";
 * import { metricsHandler } from "@theus/theus";
 * import { nodeListener, requestMetrics } from "@theus/theus/node";
 *
 * const app = express();
 * app.use(requestMetrics({ exclude: ["/metrics"] }));
 * app.get("/users/:id", (req, res) => res.json({ id: req.params.id }));
 * app.get("/metrics", nodeListener(metricsHandler()));
 * app.listen(8080);
 * ```
 */
export function requestMetrics(options?: NodeMetricsOptions): NodeMiddleware {
  const checked = checkOptions<NodeMetricsRequest>(options, "requestMetrics()");
  const { metrics, route, exclude, untilBody, exemplar } = checked;
  const sized = metrics.requestSize !== undefined;
  const counted = metrics.responseSize !== undefined;
  const routeOf = (req: NodeMetricsRequest, status: number, matched: string | undefined): string =>
    route !== undefined ? route(req) : matched ?? expressRoute(req) ?? pathRoute(nodePath(req), status);

  return (req, res, next) => {
    if (exclude !== undefined && exclude(req, () => nodePath(req))) return next?.();
    const record = metrics.begin(methodLabel(req.method), exemplar?.(req, () => traceparentOf(req)));
    const bytes = sized ? requestBytes(req) : undefined;
    new Watch(record, req, res, routeOf, untilBody, bytes, counted);
    next?.();
  };
}

// Watches one response: the headers going out, the end, the connection closing first.
class Watch {
  readonly #record: RequestRecord;
  readonly #req: NodeMetricsRequest;
  readonly #res: NodeMetricsResponse;
  readonly #routeOf: (req: NodeMetricsRequest, status: number, matched: string | undefined) => string;
  // Express's route as it was when the route matched: the mount path is put back when an error
  // leaves a router, before the error handler answers.
  #matched: string | undefined;
  readonly #untilBody: boolean;
  readonly #bytes: number | undefined;
  #route: string | undefined;
  #status = 0;
  #written = -1;
  #done = false;

  constructor(
    record: RequestRecord,
    req: NodeMetricsRequest,
    res: NodeMetricsResponse,
    routeOf: (req: NodeMetricsRequest, status: number, matched: string | undefined) => string,
    untilBody: boolean,
    bytes: number | undefined,
    counted: boolean,
  ) {
    this.#record = record;
    this.#req = req;
    this.#res = res;
    this.#routeOf = routeOf;
    this.#untilBody = untilBody;
    this.#bytes = bytes;
    this.#watchRoute(req);
    // Node writes implicit headers through this.writeHead too, so this sees every response.
    const writeHead = res.writeHead;
    const headers = (status: number): void => this.#headers(status);
    res.writeHead = function (this: unknown, statusCode: number, ...rest: never[]) {
      headers(typeof statusCode === "number" ? statusCode : res.statusCode);
      return writeHead.call(this, statusCode, ...rest);
    };
    if (counted) this.#count(res);
    res.once("finish", () => this.#end(false));
    res.once("close", () => this.#end(true));
  }

  #headers(status: number): void {
    if (this.#route !== undefined) return;
    this.#status = status;
    this.#route = this.#routeOf(this.#req, status, this.#matched);
    if (!this.#untilBody) this.#record.end(this.#route, status, this.#bytes);
  }

  #end(closed: boolean): void {
    if (this.#done) return;
    this.#done = true;
    // Closed before the headers went out: the client went away first.
    if (this.#route === undefined) this.#headers(closed ? CLIENT_CLOSED : this.#res.statusCode);
    this.#record.end(this.#route!, this.#status, this.#bytes);
    const length = contentLength(String(this.#res.getHeader("content-length") ?? ""));
    this.#record.sent(this.#written >= 0 ? this.#written : length ?? 0);
  }

  // Sees Express set req.route, and takes the route with the mount path of that moment.
  #watchRoute(req: NodeMetricsRequest): void {
    let current = req.route;
    try {
      Object.defineProperty(req, "route", {
        configurable: true,
        enumerable: true,
        get: () => current,
        set: (value: NodeMetricsRequest["route"]) => {
          current = value;
          this.#matched = expressRoute(req);
        },
      });
    } catch {
      // A request object that does not take the property: req.route is read when headers go out.
    }
  }

  // Counts the body as it is written, unless a Content-Length says it.
  #count(res: NodeMetricsResponse): void {
    const write = res.write;
    const end = res.end;
    const add = (chunk: unknown, encoding: unknown): void => {
      if (this.#written < 0) {
        if (res.getHeader("content-length") !== undefined) return;
        this.#written = 0;
      }
      this.#written += chunkBytes(chunk, encoding);
    };
    res.write = function (this: unknown, chunk: unknown, ...rest: never[]) {
      add(chunk, rest[0]);
      return write.call(this, chunk, ...rest);
    } as NodeMetricsResponse["write"];
    res.end = function (this: unknown, ...args: never[]) {
      const chunk = args[0] as unknown;
      if (chunk !== undefined && typeof chunk !== "function") add(chunk, args[1]);
      else add(undefined, undefined);
      return end.apply(this, args);
    } as NodeMetricsResponse["end"];
  }
}

const encoder = new TextEncoder();

function chunkBytes(chunk: unknown, encoding: unknown): number {
  if (chunk === undefined || chunk === null) return 0;
  if (typeof chunk === "string") {
    if (encoding === "base64") return Math.floor(chunk.replace(/=+$/, "").length * 3 / 4);
    if (encoding === "hex") return chunk.length >> 1;
    if (encoding === "latin1" || encoding === "binary" || encoding === "ascii") return chunk.length;
    return encoder.encode(chunk).byteLength;
  }
  if (typeof chunk === "object" && "byteLength" in chunk && typeof chunk.byteLength === "number") {
    return chunk.byteLength;
  }
  return 0;
}

// Express's route: the mount path and the route's path, when a route matched.
function expressRoute(req: NodeMetricsRequest): string | undefined {
  const path = req.route?.path;
  if (path === undefined || path === null) return undefined;
  const text = Array.isArray(path) ? path.map(String).join(",") : String(path);
  return (req.baseUrl ?? "") + text;
}

function nodePath(req: NodeMetricsRequest): string {
  return pathOf(req.originalUrl ?? req.url ?? "/");
}

function requestBytes(req: NodeMetricsRequest): number | undefined {
  const length = req.headers["content-length"];
  if (typeof length === "string") return contentLength(length);
  return req.headers["transfer-encoding"] === undefined ? 0 : undefined;
}

function traceparentOf(req: NodeMetricsRequest): string | undefined {
  const value = req.headers.traceparent;
  return Array.isArray(value) ? value[0] : value;
}

/**
 * `nodeListener()`: serves a fetch-style handler, such as {@linkcode metricsHandler}, from
 * `node:http` `createServer`, Express, Connect and the other frameworks built on Node's
 * `IncomingMessage` and `ServerResponse`. Deno and Bun serve fetch handlers natively; this is
 * for code that has a Node server already.
 *
 * The request becomes a `Request`: its method, its full URL (from the `Host` header, with
 * `https` on a TLS socket, and Express's `originalUrl` under a mount path), every header
 * (repeated ones too) and, for methods other than `GET` and `HEAD`, the body as a stream.
 * The `Response` goes back as it is: status, headers (each `set-cookie` on its own line), and
 * the body written chunk by chunk as the handler's stream produces it, waiting for `drain`
 * when the socket is full. A body the handler gzipped goes out byte for byte; `HEAD` sends the
 * headers only. When the client goes away first, the request's `signal` is aborted and the
 * response body is cancelled, so a streaming handler stops producing. A handler that throws
 * gets a plain 500 answer, or the connection destroyed when the headers were already sent.
 *
 * `requestMetrics()` is the other half: request metrics (`http_requests_total`,
 * `http_request_duration_seconds`, by method, status and Express route) as Express-style
 * middleware, for Express, Connect and `node:http`.
 *
 * Nothing here imports Node modules: the Node objects are typed by the few members used, and
 * the streams are web streams, so the same code runs on Node, and on the `node:http` of Deno
 * and Bun.
 *
 * @example Serve /metrics from node:http
 * ```ts ignore
 * import { createServer } from "node:http";
 * import { Counter, metricsHandler } from "@theus/theus";
 * import { nodeListener } from "@theus/theus/node";
 *
 * const requests = new Counter({ name: "http_requests_total", help: "Requests", labelNames: ["path"] });
 * const metrics = nodeListener(metricsHandler());
 * createServer((req, res) => {
 *   if (req.url?.startsWith("/metrics")) return metrics(req, res);
 *   requests.labels({ path: "other" }).inc();
 *   res.end("hello\n");
 * }).listen(8080);
 * ```
 *
 * @module
 */

import { bytes, describe, type NodeRequest, Refusal, RequestBody, requestUrl } from "./_node_request.ts";

export type { NodeRequest } from "./_node_request.ts";
export {
  type NodeMetricsOptions,
  type NodeMetricsRequest,
  type NodeMetricsResponse,
  type NodeMiddleware,
  requestMetrics,
} from "./_node_metrics.ts";

/** A fetch-style handler: what `Deno.serve`, `Bun.serve` and Workers call. */
export type FetchHandler = (request: Request) => Response | Promise<Response>;

/** A listener for `node:http` `createServer`, Express and the like. */
export type NodeListener = (req: NodeRequest, res: NodeResponse) => void;

/** Options of {@linkcode nodeListener}. */
export interface NodeListenerOptions {
  /**
   * Called with what the handler threw or rejected with, or the error of its response body;
   * not called when the client went away. Nothing is logged without it. An error it throws
   * is ignored.
   */
  onError?: (error: unknown) => void;
}

/**
 * The members of Node's `ServerResponse` (or Express's `Response`) that
 * {@linkcode nodeListener} uses.
 */
export interface NodeResponse {
  /** Whether the status line and headers have been written. */
  readonly headersSent: boolean;
  /** Whether the response has been destroyed. */
  readonly destroyed?: boolean;
  /** Sets a header, replacing one of that name. */
  setHeader(name: string, value: string | string[]): unknown;
  /** Removes a header. */
  removeHeader(name: string): unknown;
  /** Writes the status line and the headers. */
  writeHead(statusCode: number, statusMessage?: string): unknown;
  /** Writes a chunk of the body; false when the caller should wait for `drain`. */
  write(chunk: Uint8Array): boolean;
  /** Ends the response. */
  end(chunk?: string): unknown;
  /** Closes the connection. */
  destroy(): unknown;
  /** Adds a listener for `drain` (room to write again) or `close`. */
  on(event: "drain" | "close", listener: () => void): unknown;
  /** Adds a listener for an error. */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Removes a listener for `drain` or `close`. */
  off(event: "drain" | "close", listener: () => void): unknown;
  /** Removes a listener for an error. */
  off(event: "error", listener: (error: Error) => void): unknown;
}

/**
 * Turns a fetch-style handler into a `(req, res)` listener for `node:http` `createServer`,
 * Express (`app.get()`, `app.use()`, routers) and similar frameworks.
 *
 * The handler gets a `Request` with the method, the full URL (`http`, or `https` on a TLS
 * socket; the host from the `Host` header; Express's `originalUrl` when present), every header
 * as received, a streamed body for methods other than `GET` and `HEAD`, and a `signal` that is
 * aborted when the client goes away before the response is complete. Its `Response` is written
 * back with its status and headers, repeated `set-cookie` included, and its body streamed
 * chunk by chunk with backpressure: never decoded, re-encoded or buffered whole, and not sent
 * at all for `HEAD`. When the client goes away, the response body is cancelled.
 *
 * When the handler throws or rejects, the client gets a `500` `text/plain` answer, or, when
 * the headers were sent already (the body stream failed), the connection is destroyed, so the
 * client sees an incomplete response rather than a truncated one that looks whole. Either
 * way `options.onError` gets the error. A `Host` header that makes no valid URL gets a `400`,
 * and a method the runtime's `Request` refuses (`TRACE` on Node and Deno) a `501`, without
 * calling the handler. The listener never throws, and leaves no promise rejected.
 *
 * A body that a middleware (such as `express.json()`) has read already arrives empty.
 *
 * @param handler The fetch-style handler, such as `metricsHandler()`.
 * @param options Where errors go.
 * @returns The listener; it returns at once, and the response is written in the background.
 *
 * @example With Express
 * ```ts ignore
 * import express from "express";
 * import { metricsHandler } from "@theus/theus";
 * import { nodeListener } from "@theus/theus/node";
 *
 * const app = express();
 * app.get("/metrics", nodeListener(metricsHandler(), { onError: (error) => console.error(error) }));
 * app.listen(8080);
 * ```
 */
export function nodeListener(handler: FetchHandler, options: NodeListenerOptions = {}): NodeListener {
  const onError = options.onError;
  const report = (error: unknown): void => {
    try {
      onError?.(error);
    } catch {
      // The caller's own error callback failed: nothing sensible is left to tell.
    }
  };
  return (req: NodeRequest, res: NodeResponse): void => {
    new Exchange(req, res, report).run(handler).catch((error: unknown) => {
      // Only what the request or response objects throw from their own methods gets here.
      report(error);
      try {
        res.destroy();
      } catch {
        // Nothing more can be done for this response.
      }
    });
  };
}

const METHODS_WITHOUT_BODY = new Set(["GET", "HEAD"]);

/** One request and its response. */
class Exchange {
  readonly #req: NodeRequest;
  readonly #res: NodeResponse;
  readonly #report: (error: unknown) => void;
  readonly #abort = new AbortController();
  #body: RequestBody | undefined;
  /** The response has been ended by us. */
  #ended = false;
  /** The client went away, or the response was destroyed, before we ended it. */
  #gone = false;
  /** Cancels the response body being written, if any. */
  #cancel: ((reason: unknown) => void) | undefined;
  /** Wakes a write waiting for `drain`. */
  #wake: (() => void) | undefined;

  constructor(req: NodeRequest, res: NodeResponse, report: (error: unknown) => void) {
    this.#req = req;
    this.#res = res;
    this.#report = report;
  }

  async run(handler: FetchHandler): Promise<void> {
    const res = this.#res;
    const onClose = (): void => this.#leave();
    // The error listener stays: an error on this response must not reach the server as an
    // unhandled 'error' event, even after we are done with it.
    res.on("error", onClose);
    res.on("close", onClose);
    res.on("drain", this.#drained);
    try {
      let request: Request;
      try {
        request = this.#request();
      } catch (error) {
        if (error instanceof Refusal) return this.#plain(error.status, error.message);
        throw error;
      }
      let response: Response;
      try {
        response = await handler(request);
        if (!isResponse(response)) {
          throw new TypeError(`The handler returned ${describe(response)}, not a Response`);
        }
        if (response.bodyUsed || response.body?.locked) {
          throw new TypeError("The handler returned a Response whose body is read already");
        }
      } catch (error) {
        if (!this.#gone || !isAbort(error)) this.#report(error);
        if (!this.#gone && !res.headersSent) this.#plain(500, "Internal Server Error");
        else this.#destroy();
        return;
      }
      await this.#send(response);
    } finally {
      res.off("close", onClose);
      res.off("drain", this.#drained);
      this.#body?.release();
    }
  }

  /** The client went away, or the response failed, before the end. */
  #leave(): void {
    if (this.#ended || this.#gone) return;
    this.#gone = true;
    const reason = new DOMException("The client closed the connection", "AbortError");
    this.#abort.abort(reason);
    this.#cancel?.(reason);
    this.#wake?.();
  }

  #drained = (): void => this.#wake?.();

  #request(): Request {
    const req = this.#req;
    const method = req.method ?? "GET";
    const headers = new Headers();
    const raw = req.rawHeaders;
    let host: string | undefined;
    let authority: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i];
      // HTTP/2 pseudo-headers (node:http2's compatibility API) are no headers to fetch.
      if (name.startsWith(":")) {
        if (name === ":authority") authority ??= raw[i + 1];
        continue;
      }
      try {
        headers.append(name, raw[i + 1]);
      } catch (error) {
        throw new Refusal(400, "Bad Request: invalid header", { cause: error });
      }
      if (host === undefined && name.toLowerCase() === "host") host = raw[i + 1];
    }
    const url = requestUrl(req, host ?? authority);
    let body: RequestBody | undefined;
    if (!METHODS_WITHOUT_BODY.has(method.toUpperCase())) body = this.#body = new RequestBody(req);
    const init: RequestInit & { duplex?: "half" } = { method, headers, signal: this.#abort.signal };
    if (body !== undefined) {
      init.body = body.stream;
      init.duplex = "half";
    }
    try {
      return new Request(url, init);
    } catch (error) {
      throw new Refusal(501, `Method ${method} not implemented`, { cause: error });
    }
  }

  async #send(response: Response): Promise<void> {
    const res = this.#res;
    const body = response.body;
    if (this.#gone) {
      await cancel(body, this.#abort.signal.reason);
      return;
    }
    const names: string[] = [];
    try {
      // Each set-cookie on its own line: fetch's Headers joins every other repeated header.
      const cookies = setCookies(response.headers);
      const seen: string[] = [];
      response.headers.forEach((value, name) => {
        if (name === "set-cookie") return void seen.push(value);
        res.setHeader(name, value);
        names.push(name);
      });
      const all = cookies ?? seen;
      if (all.length > 0) {
        res.setHeader("set-cookie", all);
        names.push("set-cookie");
      }
      if (response.statusText) res.writeHead(response.status, response.statusText);
      else res.writeHead(response.status);
    } catch (error) {
      // A header Node refuses (its rules are a little stricter than fetch's): nothing is sent yet.
      this.#report(error);
      for (const name of names) res.removeHeader(name);
      await cancel(body, error);
      return this.#plain(500, "Internal Server Error");
    }
    if (body === null || this.#req.method?.toUpperCase() === "HEAD") {
      await cancel(body, undefined);
      return this.#end();
    }
    let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
    try {
      const current = reader = body.getReader();
      this.#cancel = (reason) => void current.cancel(reason).catch(() => {});
      for (;;) {
        const { done, value } = await current.read();
        if (done || this.#gone) break;
        const chunk = bytes(value);
        if (chunk.byteLength === 0) continue;
        if (res.destroyed) {
          this.#leave();
          break;
        }
        if (!res.write(chunk)) await this.#writable();
      }
    } catch (error) {
      // The body stream failed after the headers went out: the client must not take what it
      // got for the whole response.
      if (!this.#gone) {
        this.#report(error);
        this.#destroy();
      }
      return;
    } finally {
      this.#cancel = undefined;
      reader?.releaseLock();
    }
    if (!this.#gone) this.#end();
  }

  /** Resolves on `drain`, or at once when the client is gone. */
  #writable(): Promise<void> {
    if (this.#gone) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  #end(): void {
    if (this.#gone) return;
    this.#ended = true;
    this.#res.end();
  }

  #destroy(): void {
    this.#ended = true;
    this.#res.destroy();
  }

  #plain(status: number, message: string): void {
    const res = this.#res;
    if (this.#gone || res.headersSent) return;
    res.setHeader("content-type", "text/plain; charset=utf-8");
    res.removeHeader("content-encoding");
    res.removeHeader("content-length");
    res.writeHead(status);
    this.#ended = true;
    res.end(`${message}\n`);
  }
}

/** Each `set-cookie` value, or undefined when the runtime cannot tell them apart. */
function setCookies(headers: Headers): string[] | undefined {
  const getSetCookie = (headers as { getSetCookie?: () => string[] }).getSetCookie;
  return typeof getSetCookie === "function" ? getSetCookie.call(headers) : undefined;
}

async function cancel(body: ReadableStream<Uint8Array> | null, reason: unknown): Promise<void> {
  if (body === null || body.locked) return;
  try {
    await body.cancel(reason);
  } catch {
    // The stream's own cancel failed: it is not read anyway.
  }
}

function isResponse(value: unknown): value is Response {
  if (value instanceof Response) return true;
  // A Response from another realm or polyfill.
  const candidate = value as Partial<Response> | null;
  return typeof candidate === "object" && candidate !== null && typeof candidate.status === "number" &&
    candidate.headers instanceof Headers && "body" in candidate;
}

function isAbort(error: unknown): boolean {
  return error instanceof Error || error instanceof DOMException ? error.name === "AbortError" : false;
}

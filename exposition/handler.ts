/**
 * `metricsHandler()`: a fetch-style `/metrics` endpoint for any runtime.
 *
 * @module
 */

import { BackendUnavailableError } from "../core/backend.ts";
import type { MetricFamily } from "../core/types.ts";
import { defaultRegistry, type FamilyPiece, type Registry, STREAM } from "../metrics/registry.ts";
import { encodeProtobuf } from "./_protobuf.ts";
import { type Format, render } from "./_render.ts";
import {
  acceptsGzip,
  contentType,
  negotiateFormat,
  OPENMETRICS_CONTENT_TYPE,
  PROMETHEUS_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
} from "./negotiate.ts";

/** Options of {@linkcode metricsHandler}. */
export interface MetricsHandlerOptions {
  /** The registry to expose, {@linkcode defaultRegistry} by default. */
  registry?: Registry;
  /** Whether to gzip the response when the client accepts it. True by default. */
  compress?: boolean;
}

/**
 * Returns a handler that serves a registry's exposition: the same function serves
 * `Deno.serve`, `Bun.serve`, Hono and Workers. It picks OpenMetrics, text 0.0.4 or, when the
 * scraper ranks it first (Prometheus with native histograms enabled), the protobuf format from
 * `Accept` (406 when none is acceptable), gzips when `Accept-Encoding` allows it, answers
 * `GET` and `HEAD` (405 otherwise), and streams the body. A backend that cannot be read gives
 * 503; any other collection error gives 500, with the reason in the body.
 *
 * @param options The registry, and whether to compress.
 * @returns The handler.
 *
 * @example With Deno.serve
 * ```ts ignore
 * import { metricsHandler } from "../mod.ts";
 *
 * const metrics = metricsHandler();
 * Deno.serve((req) => new URL(req.url).pathname === "/metrics" ? metrics(req) : new Response("hello"));
 * ```
 */
export function metricsHandler(options: MetricsHandlerOptions = {}): (request: Request) => Promise<Response> {
  const registry = options.registry ?? defaultRegistry;
  const compress = options.compress ?? true;
  return async (request: Request): Promise<Response> => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return plain(405, `Method ${request.method} not allowed: use GET or HEAD`, { allow: "GET, HEAD" });
    }
    const format = negotiateFormat(request.headers.get("accept"), { protobuf: true });
    if (format === undefined) {
      return plain(
        406,
        `Not acceptable: this endpoint serves ${OPENMETRICS_CONTENT_TYPE}, ${PROMETHEUS_CONTENT_TYPE} ` +
          `and ${PROTOBUF_CONTENT_TYPE}`,
      );
    }
    // The first series are read before answering, so that a store that cannot be read (or a
    // collector that fails early) gives 503 or 500. Past STREAM_AFTER series, the text goes
    // out while the rest is read: a later failure then cuts the body short, which the scraper
    // sees as a failed scrape, never as numbers that look like a reset.
    let families: MetricFamily[] | undefined;
    let pieces: AsyncGenerator<FamilyPiece, void, undefined> | undefined;
    const head: FamilyPiece[] = [];
    try {
      if (format === "protobuf") {
        families = await registry.collect();
      } else {
        pieces = registry[STREAM]();
        let series = 0;
        while (series < STREAM_AFTER) {
          const next = await pieces.next();
          if (next.done) {
            pieces = undefined;
            break;
          }
          head.push(next.value);
          series += next.value.family.series.length;
        }
      }
    } catch (error) {
      const unavailable = error instanceof BackendUnavailableError;
      const reason = error instanceof Error ? error.message : String(error);
      return plain(unavailable ? 503 : 500, `Cannot collect metrics: ${reason}`);
    }
    const headers = new Headers({ "content-type": contentType(format), vary: "Accept, Accept-Encoding" });
    // Decided before HEAD returns, so HEAD answers with the headers GET would send.
    const gzip = compress && acceptsGzip(request.headers.get("accept-encoding"));
    if (gzip) headers.set("content-encoding", "gzip");
    if (request.method === "HEAD") {
      await pieces?.return();
      return new Response(null, { status: 200, headers });
    }
    let body = families !== undefined
      ? stream(encodeProtobuf(families))
      : textStream(piecesFrom(head, pieces), format as Format);
    if (gzip) {
      body = body.pipeThrough(
        new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
      );
    }
    return new Response(body, { status: 200, headers });
  };
}

/** Series read before the response starts; past them, the body goes out as the rest is read. */
const STREAM_AFTER = 10_000;

// The pieces read ahead, then the rest.
async function* piecesFrom(
  head: readonly FamilyPiece[],
  rest: AsyncGenerator<FamilyPiece, void, undefined> | undefined,
): AsyncGenerator<FamilyPiece, void, undefined> {
  yield* head;
  if (rest !== undefined) yield* rest;
}

function textStream(families: AsyncIterable<FamilyPiece>, format: Format): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return stream(render(families, format), (text) => encoder.encode(text));
}

// A stream that pulls the chunks of a writer one at a time, so a slow client slows the writer.
function stream<T>(
  chunks: AsyncGenerator<T, void, undefined>,
  toBytes: (chunk: T) => Uint8Array = (chunk) => chunk as Uint8Array,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await chunks.next();
      if (done) controller.close();
      else controller.enqueue(toBytes(value));
    },
    async cancel() {
      await chunks.return();
    },
  });
}

function plain(status: number, message: string, extra: Record<string, string> = {}): Response {
  return new Response(`${message}\n`, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...extra },
  });
}

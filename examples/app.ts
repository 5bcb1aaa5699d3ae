/**
 * The example service shared by `deno.ts` and `bun.ts`: a fetch-style handler whose requests
 * are counted, timed and tracked in flight by `instrument()`, serving `/metrics` with the
 * runtime's own metrics (CPU, memory, event loop, heap) alongside.
 * `node.mjs` is the same service in plain JavaScript, for Node.
 *
 * @module
 */

import { metricsHandler } from "../mod.ts";
import { instrument } from "../adapters/http.ts";
import { collectDefaultMetrics } from "../runtime/mod.ts";

collectDefaultMetrics();

const metrics = metricsHandler();

const routes: Record<string, (req: Request) => Response | Promise<Response>> = {
  "/": () => new Response("Hello from theus\n"),
  "/metrics": metrics,
};

/**
 * Handles one request. instrument() records http_requests_total and
 * http_request_duration_seconds by method, status and route (the path, with id-like segments
 * as :id; "(unmatched)" for a 404), and the requests in flight; a request with a sampled W3C
 * traceparent leaves its trace_id as an exemplar (OpenMetrics).
 */
export const app: (req: Request) => Response | Promise<Response> = instrument((req: Request) => {
  const { pathname } = new URL(req.url);
  return routes[pathname]?.(req) ?? new Response("Not found\n", { status: 404 });
}, { inFlight: true, exemplars: true });

/** The line each example prints once it listens; the tests read the port from it. */
export function listening(runtime: string, hostname: string, port: number): string {
  const base = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`;
  return `theus example (${runtime}) listening on ${base} — metrics at ${base}metrics`;
}

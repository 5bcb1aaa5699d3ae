/**
 * The example service shared by `deno.ts` and `bun.ts`: a fetch-style handler that counts
 * its requests, measures their latency, tracks those in flight and serves `/metrics`, with the
 * runtime's own metrics (CPU, memory, event loop, heap) alongside.
 * `node.mjs` is the same service in plain JavaScript, for Node.
 *
 * @module
 */

import { Counter, Gauge, Histogram, metricsHandler } from "../mod.ts";
import { collectDefaultMetrics } from "../runtime/mod.ts";

collectDefaultMetrics();

const requests = new Counter({
  name: "http_requests_total",
  help: "HTTP requests handled",
  labelNames: ["method", "path", "status"],
});
const latency = new Histogram({
  name: "http_request_duration_seconds",
  help: "Time spent handling HTTP requests",
  labelNames: ["method", "path"],
});
const inFlight = new Gauge({ name: "http_requests_in_flight", help: "HTTP requests being handled" });

const metrics = metricsHandler();

// Label by route, never by raw URL: every distinct label value is a new time series.
const routes: Record<string, (req: Request) => Response | Promise<Response>> = {
  "/": () => new Response("Hello from theus\n"),
  "/metrics": metrics,
};

/** Handles one request, recording it in the metrics above. */
export async function app(req: Request): Promise<Response> {
  const { pathname } = new URL(req.url);
  const path = Object.hasOwn(routes, pathname) ? pathname : "other";
  using _inFlight = inFlight.trackInProgress();
  using _timer = latency.labels({ method: req.method, path }).startTimer();
  const res = await (routes[path]?.(req) ?? new Response("Not found\n", { status: 404 }));
  requests.labels({ method: req.method, path, status: String(res.status) }).inc();
  return res;
}

/** The line each example prints once it listens; the tests read the port from it. */
export function listening(runtime: string, hostname: string, port: number): string {
  const base = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}/`;
  return `theus example (${runtime}) listening on ${base} — metrics at ${base}metrics`;
}

// The example service on Node (20 or later), in plain JavaScript:
//   npm start            (installs, builds dist/ when needed, then runs this file)
//   node examples/node.mjs
// PORT (default 8080, 0 picks a free one) and HOST (default 127.0.0.1) set the address;
// THEUS_BACKEND and THEUS_BACKEND_CONFIG choose where the values live (memory by default).
// It is the service of app.ts (Deno, Bun), served by node:http through nodeListener().

import { createServer } from "node:http";
import { Counter, flush, Gauge, Histogram, metricsHandler } from "theus";
import { nodeListener } from "theus/node";
import { collectDefaultMetrics } from "theus/runtime";

collectDefaultMetrics(); // CPU, memory, event loop, heap, GC, version

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
const routes = {
  "/": () => new Response("Hello from theus\n"),
  "/metrics": metrics,
};

/** Handles one request, recording it in the metrics above. */
async function app(req) {
  const { pathname } = new URL(req.url);
  const path = Object.hasOwn(routes, pathname) ? pathname : "other";
  const tracker = inFlight.trackInProgress(); // Node 20 has no `using`: end it in finally
  try {
    const res = await latency.labels({ method: req.method, path }).time(async () =>
      (await routes[path]?.(req)) ?? new Response("Not found\n", { status: 404 })
    );
    requests.labels({ method: req.method, path, status: String(res.status) }).inc();
    return res;
  } finally {
    tracker.end();
  }
}

// nodeListener() turns the fetch-style handler into a node:http listener: the request's
// method, headers and body in, the response streamed out (an aborted client cancels it).
const server = createServer(nodeListener(app));

const hostname = process.env.HOST ?? "127.0.0.1";
server.listen(Number(process.env.PORT ?? 8080), hostname, () => {
  const base = `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${server.address().port}/`;
  console.log(`theus example (node) listening on ${base} — metrics at ${base}metrics`);
});

// On shutdown, push whatever a remote backend still buffers.
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections();
    flush().finally(() => process.exit(0));
  });
}

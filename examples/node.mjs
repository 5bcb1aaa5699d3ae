// The example service on Node (20 or later), in plain JavaScript:
//   npm start            (installs, builds dist/ when needed, then runs this file)
//   node examples/node.mjs
// PORT (default 8080, 0 picks a free one) and HOST (default 127.0.0.1) set the address;
// THEUS_BACKEND and THEUS_BACKEND_CONFIG choose where the values live (memory by default).
// It is the service of app.ts (Deno, Bun), served by node:http through nodeListener().

import { createServer } from "node:http";
import { flush, metricsHandler } from "theus";
import { instrument } from "theus/http";
import { nodeListener } from "theus/node";
import { collectDefaultMetrics } from "theus/runtime";

collectDefaultMetrics(); // CPU, memory, event loop, heap, GC, version

const metrics = metricsHandler();

const routes = {
  "/": () => new Response("Hello from theus\n"),
  "/metrics": metrics,
};

// instrument() records http_requests_total and http_request_duration_seconds by method,
// status and route (the path, with id-like segments as :id; "(unmatched)" for a 404), the
// requests in flight, and, from a request with a sampled W3C traceparent, its trace_id as an
// exemplar (OpenMetrics).
const app = instrument((req) => {
  const { pathname } = new URL(req.url);
  return routes[pathname]?.(req) ?? new Response("Not found\n", { status: 404 });
}, { inFlight: true, exemplars: true });

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

// prometheus() from theus/hono on real Hono apps: in process through app.fetch(), next to
// @hono/prometheus on the same requests (same names, labels and counts), and behind a real
// server on each runtime (Deno.serve, Bun.serve, @hono/node-server) answering fetch over
// loopback, its exposition checked by promtool.

import assert from "node:assert/strict";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { prometheus as honoPrometheus } from "@hono/prometheus";
import { Registry as PromRegistry } from "prom-client";
import { generateLatest, metricsHandler, Registry } from "../mod.ts";
import { prometheus, UNMATCHED_ROUTE } from "../adapters/hono.ts";
import { runtime, test } from "./_harness.ts";
import { atLeast } from "./_servers.ts";
import { assertPromtool } from "./_validate.ts";
import { find, httpLabels, valueOf } from "./_samples.ts";

// --- helpers ------------------------------------------------------------------------------

const URL_BASE = "http://hono.test";

function get(app: Hono, path: string, init?: RequestInit): Promise<Response> {
  return Promise.resolve(app.fetch(new Request(`${URL_BASE}${path}`, init)));
}

/** Runs `fn` with console.error replaced, and returns what it was called with. */
async function quietErrors(fn: () => Promise<void>): Promise<unknown[][]> {
  const calls: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void calls.push(args);
  try {
    await fn();
  } finally {
    console.error = original;
  }
  return calls;
}

/** The app most tests use: routes with params, a sub-app, errors of each kind. */
function buildApp(use: (app: Hono) => void): Hono {
  const app = new Hono();
  use(app);
  app.get("/users/:id", (c) => c.json({ id: c.req.param("id") }));
  app.post("/users/:id", (c) => c.text("created", 201));
  const sub = new Hono();
  sub.get("/users/:id", (c) => c.text(`api user ${c.req.param("id")}`));
  sub.delete("/users/:id", (c) => c.body(null, 204));
  app.route("/api", sub);
  app.get("/boom", () => {
    throw new Error("handler failed on purpose");
  });
  app.get("/forbidden", () => {
    throw new HTTPException(401, { message: "no entry" });
  });
  return app;
}

// --- in process -----------------------------------------------------------------------------

test("prometheus() labels Hono requests with the route pattern, sub-app mount paths included", async () => {
  const registry = new Registry();
  const app = buildApp((app) => app.use(prometheus({ registry })));

  for (const id of ["1", "2", "alice"]) assert.equal((await get(app, `/users/${id}`)).status, 200);
  assert.equal((await get(app, "/users/9", { method: "POST" })).status, 201);
  assert.equal(await (await get(app, "/api/users/42")).text(), "api user 42");
  assert.equal((await get(app, "/api/users/43", { method: "DELETE" })).status, 204);

  const text = await generateLatest(registry);
  const total = "http_requests_total";
  assert.equal(valueOf(text, total, httpLabels("GET", 200, "/users/:id")), 3, text);
  assert.equal(valueOf(text, total, httpLabels("POST", 201, "/users/:id")), 1, text);
  assert.equal(valueOf(text, total, httpLabels("GET", 200, "/api/users/:id")), 1, text);
  assert.equal(valueOf(text, total, httpLabels("DELETE", 204, "/api/users/:id")), 1, text);
  // Nothing else: no raw path, no middleware pattern.
  assert.equal(find(text, total).length, 4, text);
  assert.deepEqual(
    find(text, total).map((s) => Object.keys(s.labels)),
    Array(4).fill(["method", "status", "ok", "route"]),
  );
  assert.equal(
    valueOf(text, "http_request_duration_seconds_count", httpLabels("GET", 200, "/api/users/:id")),
    1,
    text,
  );
  await assertPromtool(text);
});

test("prometheus() counts paths no Hono route answers under (unmatched), 1,000 of them as one series", async () => {
  const registry = new Registry();
  const app = buildApp((app) => app.use(prometheus({ registry })));
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_";
  const random = (n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("");
  for (let i = 0; i < 1000; i++) {
    const path = `/${random(1 + (i % 12))}/${i}/${random(30)}${i % 3 === 0 ? "?q=" + random(5) : ""}`;
    assert.equal((await get(app, path)).status, 404, path);
  }
  const text = await generateLatest(registry);
  const series = find(text, "http_requests_total");
  assert.equal(series.length, 1, text);
  assert.deepEqual(series[0].labels, httpLabels("GET", 404, UNMATCHED_ROUTE));
  assert.equal(series[0].value, 1000);
  assert.equal(UNMATCHED_ROUTE, "(unmatched)");
  assert.equal(find(text, "http_request_duration_seconds_count").length, 1, text);
});

test("prometheus() counts what a catch-all Hono route answers under its pattern, not as (unmatched)", async () => {
  // A catch-all route (an SPA fallback, serveStatic) has the pattern of app.use() itself: "/*".
  const registry = new Registry();
  const app = new Hono();
  app.use(prometheus({ registry }));
  app.get("/users/:id", (c) => c.text("user"));
  app.get("*", (c) => c.text("spa fallback"));
  for (const path of ["/users/1", "/some/page", "/other"]) assert.equal((await get(app, path)).status, 200);
  const text = await generateLatest(registry);
  // A route answered each request, so none is unmatched.
  assert.equal(find(text, "http_requests_total", { route: UNMATCHED_ROUTE }).length, 0, text);
  assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 200, "/users/:id")), 1, text);
  assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 200, "/*")), 2, text);
});

test("prometheus() counts a throwing Hono handler with the status Hono's error handler answers", async () => {
  const registry = new Registry();
  const app = buildApp((app) => app.use(prometheus({ registry })));
  let status = 0;
  const logged = await quietErrors(async () => {
    status = (await get(app, "/boom")).status;
  });
  assert.equal(status, 500);
  // Hono's default error handler ran (it logs the error).
  assert.ok(logged.some((args) => args.some((a) => a instanceof Error && /on purpose/.test(a.message))));
  assert.equal((await get(app, "/forbidden")).status, 401);

  const custom = new Registry();
  const other = buildApp((app) => app.use(prometheus({ registry: custom })));
  other.onError((_error, c) => c.text("unavailable", 503));
  assert.equal((await get(other, "/boom")).status, 503);

  const text = await generateLatest(registry);
  assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 500, "/boom")), 1, text);
  assert.equal(valueOf(text, "http_requests_total", httpLabels("GET", 401, "/forbidden")), 1, text);
  const customText = await generateLatest(custom);
  assert.equal(valueOf(customText, "http_requests_total", httpLabels("GET", 503, "/boom")), 1, customText);
  assert.equal(find(customText, "http_requests_total").length, 1, customText);
});

test('prometheus() with until: "body" counts a streamed Hono response once its body has been read', async () => {
  const registry = new Registry();
  const app = new Hono();
  app.use(prometheus({ registry, until: "body" }));
  app.get("/stream", () => {
    const encoder = new TextEncoder();
    let n = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (n === 3) return controller.close();
          if (n > 0) await atLeast(30);
          controller.enqueue(encoder.encode(`chunk ${n++}\n`));
        },
      }),
      { headers: { "content-type": "text/plain" } },
    );
  });
  const response = await get(app, "/stream");
  assert.equal(response.status, 200);
  const route = httpLabels("GET", 200, "/stream");
  const before = await generateLatest(registry);
  assert.equal(valueOf(before, "http_requests_total", route) ?? 0, 0, before);

  assert.equal(await response.text(), "chunk 0\nchunk 1\nchunk 2\n");
  const after = await generateLatest(registry);
  assert.equal(valueOf(after, "http_requests_total", route), 1, after);
  // The duration ran until the end of the body (two pauses of 30 ms), not the headers.
  assert.equal(valueOf(after, "http_request_duration_seconds_bucket", { ...route, le: "0.05" }), 0, after);
  assert.equal(valueOf(after, "http_request_duration_seconds_count", route), 1, after);
});

test("prometheus() records nothing for excluded paths such as /metrics", async () => {
  const registry = new Registry();
  const app = new Hono();
  app.use(prometheus({ registry, exclude: ["/metrics"] }));
  const serve = metricsHandler({ registry });
  app.get("/metrics", (c) => serve(c.req.raw));
  app.get("/users/:id", (c) => c.text("user"));
  for (let i = 0; i < 3; i++) assert.equal((await get(app, "/metrics")).status, 200);
  assert.equal((await get(app, "/metrics?x=1")).status, 200);
  await get(app, "/users/5");
  const text = await (await get(app, "/metrics")).text();
  const series = find(text, "http_requests_total");
  assert.deepEqual(series.map((s) => [s.labels.route, s.value]), [["/users/:id", 1]], text);
  assert.equal(find(text, "http_request_duration_seconds_count").length, 1, text);
});

test("prometheus() puts a 50 ms Hono handler in the le=0.1 bucket and not in le=0.05", async () => {
  const registry = new Registry();
  const app = new Hono();
  app.use(prometheus({ registry }));
  app.get("/slow", async (c) => {
    await atLeast(50);
    return c.text("slow");
  });
  app.get("/fast", (c) => c.text("fast"));
  assert.equal(await (await get(app, "/slow")).text(), "slow");
  assert.equal(await (await get(app, "/fast")).text(), "fast");
  const text = await generateLatest(registry);
  const slow = httpLabels("GET", 200, "/slow");
  const bucket = "http_request_duration_seconds_bucket";
  assert.equal(valueOf(text, bucket, { ...slow, le: "0.05" }), 0, text);
  assert.equal(valueOf(text, bucket, { ...slow, le: "0.1" }), 1, text);
  assert.equal(valueOf(text, bucket, { ...slow, le: "+Inf" }), 1, text);
  const sum = valueOf(text, "http_request_duration_seconds_sum", slow)!;
  assert.ok(sum >= 0.05 && sum < 0.1, `sum ${sum}`);
  const fast = httpLabels("GET", 200, "/fast");
  assert.equal(valueOf(text, bucket, { ...fast, le: "0.05" }), 1, text);
});

// --- next to @hono/prometheus ----------------------------------------------------------------

test("prometheus() gives the family names, label names and counts of @hono/prometheus", async () => {
  const registry = new Registry();
  const ours = buildApp((app) => app.use(prometheus({ registry })));
  const promRegistry = new PromRegistry();
  const { registerMetrics } = honoPrometheus({ registry: promRegistry });
  const theirs = buildApp((app) => app.use(registerMetrics));

  const requests: [string, RequestInit?][] = [
    ["/users/1"],
    ["/users/2"],
    ["/users/abc"],
    ["/users/3", { method: "POST" }],
    ["/api/users/7"],
    ["/api/users/8", { method: "DELETE" }],
    ["/boom"],
    ["/boom"],
    ["/forbidden"],
    ["/no/such/path"],
    ["/users/1/extra"],
    ["/users", { method: "PUT" }],
  ];
  await quietErrors(async () => {
    for (const [path, init] of requests) {
      const a = await get(ours, path, init);
      const b = await get(theirs, path, init);
      assert.equal(a.status, b.status, path);
    }
  });

  const ourText = await generateLatest(registry);
  const theirText = await promRegistry.metrics();
  const families = (text: string) =>
    [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`).filter((f) =>
      f.startsWith("http_")
    ).sort();
  assert.deepEqual(families(ourText), families(theirText));
  assert.deepEqual(families(ourText), [
    "http_request_duration_seconds histogram",
    "http_requests_total counter",
  ]);

  // Counts by label set, with the unmatched route set apart: theus says (unmatched), @hono/prometheus
  // the pattern of the middleware (/*).
  const byLabels = (text: string, name: string, unmatched: string) => {
    const map = new Map<string, number>();
    for (const s of find(text, name)) {
      const keys = Object.keys(s.labels).sort();
      assert.deepEqual(keys, ["method", "ok", "route", "status"], `${name} ${JSON.stringify(s.labels)}`);
      const route = s.labels.route === unmatched ? "UNMATCHED" : s.labels.route;
      map.set(JSON.stringify(keys.map((k) => [k, k === "route" ? route : s.labels[k]])), s.value);
    }
    return map;
  };
  for (const name of ["http_requests_total", "http_request_duration_seconds_count"]) {
    const a = byLabels(ourText, name, UNMATCHED_ROUTE);
    const b = byLabels(theirText, name, "/*");
    assert.deepEqual(new Map([...a].sort()), new Map([...b].sort()), `${name}\n${ourText}\n${theirText}`);
    assert.equal([...a.values()].reduce((x, y) => x + y, 0), requests.length);
  }
  // The difference, said explicitly.
  const unmatched = httpLabels("GET", 404, UNMATCHED_ROUTE);
  assert.equal(valueOf(ourText, "http_requests_total", unmatched), 2, ourText);
  assert.equal(valueOf(theirText, "http_requests_total", { ...unmatched, route: "/*" }), 2, theirText);
  assert.equal(valueOf(ourText, "http_requests_total", httpLabels("PUT", 404, UNMATCHED_ROUTE)), 1, ourText);
  // The buckets are those of @hono/prometheus too.
  const les = (text: string) =>
    find(text, "http_request_duration_seconds_bucket", httpLabels("GET", 500, "/boom"))
      .map((s) => Number(s.labels.le));
  assert.deepEqual(les(ourText), les(theirText));
  assert.equal(les(ourText).length, 15);
});

// --- a real server ---------------------------------------------------------------------------

interface Running {
  port: number;
  close(): Promise<void>;
}

type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Serves `fetch` on a free loopback port with the runtime's own server. */
async function serve(fetch: FetchHandler): Promise<Running> {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (runtime === "deno") {
    const server = g.Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, fetch);
    return { port: server.addr.port, close: () => server.shutdown() };
  }
  if (runtime === "bun") {
    const server = g.Bun.serve({ port: 0, hostname: "127.0.0.1", fetch });
    return { port: server.port, close: async () => void (await server.stop(true)) };
  }
  const { serve } = await import("@hono/node-server");
  return await new Promise<Running>((resolve) => {
    const server = serve({ fetch, port: 0, hostname: "127.0.0.1" }, (info) => {
      resolve({
        port: info.port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            (server as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
  });
}

test(`prometheus() behind a real ${runtime} server counts what fetch sent over loopback`, async () => {
  const registry = new Registry();
  const app = buildApp((app) => app.use(prometheus({ registry, exclude: ["/metrics"] })));
  const scrape = metricsHandler({ registry });
  app.get("/metrics", (c) => scrape(c.req.raw));
  app.post("/echo", async (c) => c.text(await c.req.text()));
  const server = await serve(app.fetch);
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const expect = async (path: string, status: number, init?: RequestInit) => {
      const response = await fetch(`${base}${path}`, init);
      await response.arrayBuffer();
      assert.equal(response.status, status, `${init?.method ?? "GET"} ${path}`);
    };
    await quietErrors(async () => {
      await Promise.all([1, 2, 3, 4, 5].map((i) => expect(`/users/${i}`, 200)));
      await expect("/users/6", 201, { method: "POST" });
      await expect("/api/users/1", 200);
      await expect("/api/users/2", 200);
      await expect("/echo", 200, { method: "POST", body: "x".repeat(1000) });
      await expect("/boom", 500);
      await expect("/forbidden", 401);
      await expect("/missing", 404);
      await expect("/missing/too", 404);
    });
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    const text = await response.text();
    const total = "http_requests_total";
    const expected: [Record<string, string>, number][] = [
      [httpLabels("GET", 200, "/users/:id"), 5],
      [httpLabels("POST", 201, "/users/:id"), 1],
      [httpLabels("GET", 200, "/api/users/:id"), 2],
      [httpLabels("POST", 200, "/echo"), 1],
      [httpLabels("GET", 500, "/boom"), 1],
      [httpLabels("GET", 401, "/forbidden"), 1],
      [httpLabels("GET", 404, UNMATCHED_ROUTE), 2],
    ];
    for (const [set, count] of expected) {
      assert.equal(valueOf(text, total, set), count, `${JSON.stringify(set)}\n${text}`);
      assert.equal(valueOf(text, "http_request_duration_seconds_count", set), count, text);
    }
    // /metrics is excluded, so this is every series.
    assert.equal(find(text, total).length, expected.length, text);
    await assertPromtool(text);
  } finally {
    await server.close();
  }
});

// Type-checked by deno check and tsc against Hono's own types: prometheus() is what app.use() takes.
const typed = new Hono();
typed.use(prometheus({ registry: new Registry() }));
typed.use("/api/*", prometheus({ registry: new Registry(), prefix: "api_" }));

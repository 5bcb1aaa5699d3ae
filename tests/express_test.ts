// requestMetrics() from theus/node on Express 5 and plain node:http, against real servers on
// loopback with fetch as the client, on Deno, Bun (both through their node:http) and Node:
// routes from Express's router, unmatched paths, errors, durations, clients that leave before
// the headers or in the middle of the body, the size histograms and the in-flight gauge.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import express from "express";
import { generateLatest, Registry } from "../mod.ts";
import { requestMetrics } from "../adapters/node.ts";
import { test } from "./_harness.ts";
import { atLeast, sleep } from "./_servers.ts";
import { assertPromtool } from "./_validate.ts";
import { find, httpLabels, valueOf } from "./_samples.ts";

// --- helpers ------------------------------------------------------------------------------

/** The counts of http_requests_total by "METHOD STATUS ROUTE". */
async function counts(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of find(await generateLatest(registry), "http_requests_total")) {
    out[`${s.labels.method} ${s.labels.status} ${s.labels.route}`] = s.value;
  }
  return out;
}

/** Polls `probe` until it returns true, for at most `ms`; returns whether it did. */
async function eventually(probe: () => Promise<boolean>, ms = 2_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return true;
    if (Date.now() > deadline) return false;
    await sleep(10);
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** Runs `fn` with `app` listening on a free loopback port, and closes the server for sure. */
async function withServer(
  app: Listener | express.Express,
  fn: (base: string) => Promise<void>,
): Promise<void> {
  let server: Server;
  if (typeof (app as express.Express).listen === "function") {
    server = (app as express.Express).listen(0, "127.0.0.1");
  } else {
    server = createServer(app as Listener).listen(0, "127.0.0.1");
  }
  await new Promise<void>((resolve, reject) => {
    if (server.listening) return resolve();
    server.once("error", reject);
    server.once("listening", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  try {
    await fn(`http://127.0.0.1:${port}`);
  } finally {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
    await closed;
  }
}

/** Fetches and reads the whole body; fails on another status. */
async function expect(url: string, status: number, init?: RequestInit): Promise<string> {
  const response = await fetch(url, init);
  const text = await response.text();
  assert.equal(response.status, status, `${init?.method ?? "GET"} ${url}: ${text.slice(0, 200)}`);
  return text;
}

/** An Express app with requestMetrics() first, quiet about the errors it is shown. */
function expressApp(options: Parameters<typeof requestMetrics>[0]): express.Express {
  const app = express();
  // Express's final handler logs every error unless env is "test".
  app.set("env", "test");
  app.use(requestMetrics(options));
  return app;
}

// --- routes -------------------------------------------------------------------------------

test("requestMetrics() labels Express requests with the route, mount path included, and passes promtool", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  app.get("/users/:id", (req, res) => void res.json({ id: req.params.id }));
  app.post("/users/:id", (_req, res) => void res.status(201).send("created"));
  const router = express.Router();
  router.get("/users/:id", (req, res) => void res.send(`api user ${req.params.id}`));
  router.get("/health", (_req, res) => void res.send("ok"));
  app.use("/api", router);

  await withServer(app, async (base) => {
    for (const id of ["1", "2", "alice"]) await expect(`${base}/users/${id}`, 200);
    await expect(`${base}/users/9`, 201, { method: "POST" });
    assert.equal(await expect(`${base}/api/users/42?x=1`, 200), "api user 42");
    await expect(`${base}/api/health`, 200);
    await expect(`${base}/api/nothing`, 404);
  });
  assert.deepEqual(await counts(registry), {
    "GET 200 /users/:id": 3,
    "POST 201 /users/:id": 1,
    "GET 200 /api/users/:id": 1,
    "GET 200 /api/health": 1,
    "GET 404 (unmatched)": 1,
  });
  const text = await generateLatest(registry);
  assert.deepEqual(
    find(text, "http_requests_total").map((s) => Object.keys(s.labels)),
    Array(5).fill(["method", "status", "ok", "route"]),
  );
  assert.equal(valueOf(text, "http_request_duration_seconds_count", httpLabels("GET", 200, "/users/:id")), 3);
  await assertPromtool(text);
});

test("requestMetrics() counts 500 random paths no Express route answers as one (unmatched) series", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  app.get("/users/:id", (_req, res) => void res.send("user"));
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  const random = (n: number) =>
    Array.from({ length: n }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join("");
  await withServer(app, async (base) => {
    let next = 0;
    const worker = async () => {
      while (next < 500) {
        const i = next++;
        await expect(`${base}/${random(1 + (i % 10))}/${i}/${random(24)}`, 404);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    await expect(`${base}/users/7`, 200);
  });
  assert.deepEqual(await counts(registry), { "GET 404 (unmatched)": 500, "GET 200 /users/:id": 1 });
});

test("requestMetrics() counts a throwing or rejecting Express handler as a 500, under its route", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  app.get("/boom", () => {
    throw new Error("handler failed on purpose");
  });
  app.get("/reject/:id", async () => {
    await sleep(1);
    throw new Error("async handler failed on purpose");
  });
  await withServer(app, async (base) => {
    await expect(`${base}/boom`, 500);
    await expect(`${base}/reject/3`, 500);
    await expect(`${base}/reject/4`, 500);
  });
  assert.deepEqual(await counts(registry), { "GET 500 /boom": 1, "GET 500 /reject/:id": 2 });
});

test("requestMetrics() keeps the mount path of a router whose handler fails, answered outside the router", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  const router = express.Router();
  router.get("/boom/:id", () => {
    throw new Error("router handler failed on purpose");
  });
  router.get("/reject/:id", async () => {
    await sleep(1);
    throw new Error("async router handler failed on purpose");
  });
  app.use("/api", router);
  const admin = express.Router();
  admin.get("/boom/:id", () => {
    throw new Error("admin handler failed on purpose");
  });
  app.use("/admin", admin);
  // An application-level error handler answers for the admin router.
  app.use(
    (error: unknown, req: express.Request, res: express.Response, next: express.NextFunction): void => {
      if (!req.originalUrl.startsWith("/admin")) return next(error);
      res.status(503).send("unavailable");
    },
  );
  await withServer(app, async (base) => {
    await expect(`${base}/api/boom/1`, 500);
    await expect(`${base}/api/reject/2`, 500);
    await expect(`${base}/admin/boom/3`, 503);
  });
  // Express's final handler (and any app-level error handler) runs after the router has restored
  // req.baseUrl, so the route must not be read from req.baseUrl at that moment alone.
  assert.deepEqual(await counts(registry), {
    "GET 500 /api/boom/:id": 1,
    "GET 500 /api/reject/:id": 1,
    "GET 503 /admin/boom/:id": 1,
  });
});

test("requestMetrics() puts a 50 ms async Express handler in the le=0.1 bucket and not in le=0.05", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  app.get("/slow", async (_req, res) => {
    await atLeast(50);
    res.send("slow");
  });
  app.get("/fast", (_req, res) => void res.send("fast"));
  await withServer(app, async (base) => {
    assert.equal(await expect(`${base}/slow`, 200), "slow");
    assert.equal(await expect(`${base}/fast`, 200), "fast");
  });
  const text = await generateLatest(registry);
  const slow = httpLabels("GET", 200, "/slow");
  const bucket = "http_request_duration_seconds_bucket";
  assert.equal(valueOf(text, bucket, { ...slow, le: "0.05" }), 0, text);
  assert.equal(valueOf(text, bucket, { ...slow, le: "0.1" }), 1, text);
  assert.equal(valueOf(text, bucket, { ...httpLabels("GET", 200, "/fast"), le: "0.05" }), 1, text);
});

// --- clients that leave ---------------------------------------------------------------------

test("requestMetrics() counts a client that leaves before the headers once, as a 499", async () => {
  const registry = new Registry();
  const app = expressApp({ registry });
  let answered = false;
  app.get("/slow/:id", async (_req, res) => {
    await sleep(300);
    res.send("too late");
    answered = true;
  });
  await withServer(app, async (base) => {
    const controller = new AbortController();
    const request = fetch(`${base}/slow/1`, { signal: controller.signal });
    await sleep(50);
    controller.abort();
    await assert.rejects(request);
    const seen = await eventually(async () => (await counts(registry))["GET 499 /slow/:id"] === 1);
    assert.ok(seen, `no 499 within 2 s: ${JSON.stringify(await counts(registry))}`);
    // The handler answers later, to nobody: nothing more is counted.
    assert.ok(await eventually(() => Promise.resolve(answered)), "the handler never answered");
    await sleep(100);
  });
  assert.deepEqual(await counts(registry), { "GET 499 /slow/:id": 1 });
});

test('requestMetrics() with until: "body" counts a client that leaves in the middle of the body once', async () => {
  const registry = new Registry();
  const app = expressApp({ registry, until: "body" });
  let closed = false;
  app.get("/drip", (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    res.write("first\n");
    let n = 0;
    const timer = setInterval(() => {
      // Never more than 3 s, whatever the runtime does with the closed connection.
      if (++n > 150) {
        clearInterval(timer);
        res.end("last\n");
      } else {
        res.write(`chunk ${n}\n`);
      }
    }, 20);
    res.once("close", () => {
      closed = true;
      clearInterval(timer);
    });
  });
  await withServer(app, async (base) => {
    const controller = new AbortController();
    const response = await fetch(`${base}/drip`, { signal: controller.signal });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.byteLength > 0);
    // The headers are out, yet the request is not counted until its body ends.
    assert.deepEqual(await counts(registry), {});
    controller.abort();
    await reader.cancel().catch(() => {});
    const seen = await eventually(async () => (await counts(registry))["GET 200 /drip"] === 1);
    assert.ok(seen, `not counted within 2 s: ${JSON.stringify(await counts(registry))}`);
    await sleep(200);
    assert.ok(closed, "the server never saw the client leave");
  });
  assert.deepEqual(await counts(registry), { "GET 200 /drip": 1 });
  const text = await generateLatest(registry);
  assert.equal(valueOf(text, "http_request_duration_seconds_count", httpLabels("GET", 200, "/drip")), 1);
});

// --- extras -------------------------------------------------------------------------------

test("requestMetrics() with responseSize counts the bytes of res.write + res.end, or the Content-Length", async () => {
  const registry = new Registry();
  const app = expressApp({ registry, responseSize: true });
  app.get("/chunked", (_req, res) => {
    res.status(200).type("text/plain");
    res.write("abc"); // 3
    res.write(Buffer.from([1, 2, 3, 4, 5])); // 5
    res.write("h\u00e9llo"); // 6 in UTF-8
    res.end("xy"); // 2
  });
  app.get("/sized", (_req, res) => void res.send("hello world")); // Content-Length: 11
  app.get("/empty", (_req, res) => void res.status(204).end());
  await withServer(app, async (base) => {
    const chunked = await fetch(`${base}/chunked`);
    assert.equal(chunked.headers.get("content-length"), null);
    assert.equal((await chunked.arrayBuffer()).byteLength, 16);
    const sized = await fetch(`${base}/sized`);
    assert.equal(sized.headers.get("content-length"), "11");
    assert.equal(await sized.text(), "hello world");
    await expect(`${base}/empty`, 204);
  });
  const text = await generateLatest(registry);
  const size = (status: number, route: string) => [
    valueOf(text, "http_response_size_bytes_count", httpLabels("GET", status, route)),
    valueOf(text, "http_response_size_bytes_sum", httpLabels("GET", status, route)),
  ];
  assert.deepEqual(size(200, "/chunked"), [1, 16], text);
  assert.deepEqual(size(200, "/sized"), [1, 11], text);
  assert.deepEqual(size(204, "/empty"), [1, 0], text);
  await assertPromtool(text);
});

test("requestMetrics() with requestSize observes the Content-Length of a POST, and 0 for a GET", async () => {
  const registry = new Registry();
  const app = expressApp({ registry, requestSize: true });
  app.post("/upload", async (req, res) => {
    let bytes = 0;
    for await (const chunk of req) bytes += (chunk as Uint8Array).byteLength;
    res.send(String(bytes));
  });
  app.get("/upload", (_req, res) => void res.send("nothing"));
  await withServer(app, async (base) => {
    assert.equal(await expect(`${base}/upload`, 200, { method: "POST", body: "x".repeat(300) }), "300");
    assert.equal(await expect(`${base}/upload`, 200, { method: "POST", body: "y".repeat(5000) }), "5000");
    await expect(`${base}/upload`, 200);
  });
  const text = await generateLatest(registry);
  const post = httpLabels("POST", 200, "/upload");
  assert.equal(valueOf(text, "http_request_size_bytes_count", post), 2, text);
  assert.equal(valueOf(text, "http_request_size_bytes_sum", post), 5300, text);
  // 300 is in the bucket of 1024 and not of 256; 5000 in neither.
  assert.equal(valueOf(text, "http_request_size_bytes_bucket", { ...post, le: "256" }), 0, text);
  assert.equal(valueOf(text, "http_request_size_bytes_bucket", { ...post, le: "1024" }), 1, text);
  const get = httpLabels("GET", 200, "/upload");
  assert.equal(valueOf(text, "http_request_size_bytes_count", get), 1, text);
  assert.equal(valueOf(text, "http_request_size_bytes_sum", get), 0, text);
  await assertPromtool(text);
});

test("requestMetrics() with inFlight shows 1 during a slow request and 0 after it", async () => {
  const registry = new Registry();
  const app = expressApp({ registry, inFlight: true });
  const entered = deferred();
  const release = deferred();
  app.get("/hold", async (_req, res) => {
    entered.resolve();
    await release.promise;
    res.send("released");
  });
  const inFlight = async () =>
    valueOf(await generateLatest(registry), "http_requests_in_flight", { method: "GET" });
  await withServer(app, async (base) => {
    const pending = expect(`${base}/hold`, 200);
    await entered.promise;
    assert.equal(await inFlight(), 1);
    release.resolve();
    assert.equal(await pending, "released");
    assert.equal(await inFlight(), 0);
  });
  assert.deepEqual(await counts(registry), { "GET 200 /hold": 1 });
});

// --- plain node:http ------------------------------------------------------------------------

test("requestMetrics() on plain node:http, called first without next, templates paths and counts 404s as (unmatched)", async () => {
  const registry = new Registry();
  const metrics = requestMetrics({ registry });
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    metrics(req, res);
    const path = (req.url ?? "/").split("?")[0];
    if (/^\/items\/[^/]+$/.test(path) || path === "/health") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("item");
    } else {
      res.statusCode = 404;
      res.end("not found");
    }
  };
  await withServer(listener, async (base) => {
    await expect(`${base}/items/42`, 200);
    await expect(`${base}/items/3f9a1c20?full=1`, 200);
    await expect(`${base}/items/01ARZ3NDEKTSV4RRFFQ69G5FAV`, 200);
    await expect(`${base}/health`, 200);
    await expect(`${base}/nothing/here`, 404);
    await expect(`${base}/items/42/more`, 404);
  });
  assert.deepEqual(await counts(registry), {
    "GET 200 /items/:id": 3,
    "GET 200 /health": 1,
    "GET 404 (unmatched)": 2,
  });
  await assertPromtool(await generateLatest(registry));
});

// instrument() from theus/http: request metrics for fetch-style handlers. First in process,
// calling the wrapped handler with Requests (routes, the series cap, errors, until "body",
// cancellation, options, extras), then behind a real server of each runtime (Deno.serve,
// Bun.serve, node:http through nodeListener) answering fetch() over loopback.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import {
  generateLatest,
  type HistogramSeries,
  type MetricFamily,
  OVERFLOW_LABEL_VALUE,
  Registry,
  type ValueSeries,
} from "../mod.ts";
import {
  HTTP_DURATION_BUCKETS,
  instrument,
  isIdSegment,
  templatePath,
  UNMATCHED_ROUTE,
} from "../adapters/http.ts";
import { nodeListener } from "../adapters/node.ts";
import { runtime, test } from "./_harness.ts";
import { atLeast, sleep, within } from "./_servers.ts";
import { assertOpenMetrics, assertPromtool } from "./_validate.ts";
import { warningsOf } from "./_samples.ts";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

const DURATION = "http_request_duration_seconds";
/** The counter's family name: collect() gives counters without `_total`. */
const REQUESTS = "http_requests";
const IN_FLIGHT = "http_requests_in_flight";
const REQUEST_SIZE = "http_request_size_bytes";
const RESPONSE_SIZE = "http_response_size_bytes";
const OVERFLOW_FAMILY = "theus_series_overflow";

// --- helpers ------------------------------------------------------------------------------

async function familyOf(registry: Registry, name: string): Promise<MetricFamily | undefined> {
  return (await registry.collect()).find((family) => family.name === name);
}

async function valueSeries(registry: Registry, name: string): Promise<readonly ValueSeries[]> {
  const family = await familyOf(registry, name);
  assert.ok(family, `no family ${name}`);
  assert.notEqual(family.type, "histogram");
  return family.series as readonly ValueSeries[];
}

async function histogramSeries(registry: Registry, name: string): Promise<readonly HistogramSeries[]> {
  const family = await familyOf(registry, name);
  assert.ok(family, `no family ${name}`);
  assert.equal(family.type, "histogram");
  return family.series as readonly HistogramSeries[];
}

/** The sum of http_requests_total over every series. */
async function requestsTotal(registry: Registry): Promise<number> {
  return (await valueSeries(registry, REQUESTS)).reduce((sum, s) => sum + s.value, 0);
}

/** The sum of the duration histogram's _count over every series. */
async function durationCount(registry: Registry): Promise<number> {
  return (await histogramSeries(registry, DURATION)).reduce((sum, s) => sum + s.count, 0);
}

function sameLabels(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((key) => a[key] === b[key]);
}

function labels(method: string, status: number, route: string): Record<string, string> {
  return {
    method,
    status: String(status),
    ok: status >= 200 && status < 300 ? "true" : "false",
    route,
  };
}

/** The counter series of these labels, asserting it exists. */
async function requestsOf(registry: Registry, want: Record<string, string>): Promise<number> {
  const series = await valueSeries(registry, REQUESTS);
  const found = series.find((s) => sameLabels(s.labels, want));
  assert.ok(found, `no ${REQUESTS} series ${JSON.stringify(want)} in ${JSON.stringify(series)}`);
  return found.value;
}

async function durationOf(registry: Registry, want: Record<string, string>): Promise<HistogramSeries> {
  const series = await histogramSeries(registry, DURATION);
  const found = series.find((s) => sameLabels(s.labels, want));
  assert.ok(found, `no ${DURATION} series ${JSON.stringify(want)} in ${JSON.stringify(series)}`);
  return found;
}

/** The cumulative count of the bucket with upper bound `le`. */
function bucket(series: HistogramSeries, le: number): number {
  const at = HTTP_DURATION_BUCKETS.indexOf(le);
  assert.ok(at >= 0, `no bucket ${le}`);
  return series.buckets[at];
}

const ok = (): Response => new Response("ok");

// Random ids of every kind templatePath turns into :id.
const HEX = "0123456789abcdef";
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = LOWER.toUpperCase();
const DIGITS = "0123456789";

function pick(alphabet: string): string {
  return alphabet[Math.floor(Math.random() * alphabet.length)];
}

function randomOf(alphabet: string, length: number): string {
  let out = "";
  for (let i = 0; i < length; i++) out += pick(alphabet);
  return out;
}

/** A 24-character base64url token with at least one digit, one upper- and one lowercase letter. */
function randomToken(): string {
  const chars = randomOf(BASE64URL, 21).split("");
  for (const alphabet of [UPPER, LOWER, DIGITS]) {
    chars.splice(Math.floor(Math.random() * (chars.length + 1)), 0, pick(alphabet));
  }
  return chars.join("");
}

const ID_KINDS: readonly (() => string)[] = [
  () => String(Math.floor(Math.random() * 1e9)),
  () => crypto.randomUUID(),
  () => randomOf(HEX, 12),
  () => pick("01234567") + randomOf(CROCKFORD, 25),
  randomToken,
];

/** A body of `chunks` chunks of `size` bytes, each `gapMs` after the one before. */
function slowBody(chunks: number, gapMs: number, size = 8): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent === chunks) return controller.close();
      await sleep(gapMs);
      sent++;
      controller.enqueue(new Uint8Array(size).fill(97));
    },
  });
}

/** Reads a body to its end, and returns its size. */
async function drain(body: ReadableStream<Uint8Array>): Promise<number> {
  const reader = body.getReader();
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return bytes;
    bytes += value.byteLength;
  }
}

// --- routes -------------------------------------------------------------------------------

test("instrument(): 1,000 requests to /users/<id> with ids of five kinds make one route series", async () => {
  const registry = new Registry();
  const handler = instrument(ok, { registry });
  const seen = new Set<string>();
  for (let i = 0; i < 1000; i++) {
    const id = ID_KINDS[i % ID_KINDS.length]();
    seen.add(id);
    const response = await handler(new Request(`http://localhost/users/${id}`));
    assert.equal(response.status, 200);
  }
  assert.ok(seen.size > 990, `${seen.size} distinct ids`);
  const series = await valueSeries(registry, REQUESTS);
  assert.deepEqual(series.map((s) => s.labels), [labels("GET", 200, "/users/:id")]);
  assert.equal(series[0].value, 1000);
  const durations = await histogramSeries(registry, DURATION);
  assert.equal(durations.length, 1);
  assert.equal(durations[0].count, 1000);
});

test("instrument(): 10,000 distinct routes with maxSeries 100 keep 100 series and one overflow, losing no count", async () => {
  const registry = new Registry();
  const handler = instrument(ok, { registry, maxSeries: 100 });
  const paths = new Set<string>();
  while (paths.size < 10_000) paths.add(`/page-${randomOf(LOWER, 8)}`);
  const warnings = await warningsOf(async () => {
    for (const path of paths) {
      const response = await handler(new Request(`http://localhost${path}`));
      assert.equal(response.status, 200);
    }
  });

  assert.equal(warnings.length, 2, warnings.join("\n"));
  assert.ok(warnings.some((w) => w.includes(`"${DURATION}"`)), warnings.join("\n"));
  assert.ok(warnings.some((w) => w.includes('"http_requests_total"')), warnings.join("\n"));

  const overflow = labels("GET", 200, "x");
  for (const key of Object.keys(overflow)) overflow[key] = OVERFLOW_LABEL_VALUE;

  const counters = await valueSeries(registry, REQUESTS);
  assert.ok(counters.length <= 101, `${counters.length} counter series`);
  assert.equal(counters.length, 101);
  assert.equal(counters.filter((s) => sameLabels(s.labels, overflow)).length, 1);
  assert.equal(counters.find((s) => sameLabels(s.labels, overflow))!.value, 9_900);
  assert.equal(await requestsTotal(registry), 10_000);
  for (const s of counters.filter((s) => !sameLabels(s.labels, overflow))) {
    assert.ok(paths.has(s.labels.route), s.labels.route);
    assert.equal(s.value, 1);
  }

  const histograms = await histogramSeries(registry, DURATION);
  assert.ok(histograms.length <= 101, `${histograms.length} histogram series`);
  assert.equal(histograms.filter((s) => sameLabels(s.labels, overflow)).length, 1);
  assert.equal(histograms.find((s) => sameLabels(s.labels, overflow))!.count, 9_900);
  assert.equal(await durationCount(registry), 10_000);

  const overflows = await valueSeries(registry, OVERFLOW_FAMILY);
  assert.equal(overflows.find((s) => s.labels.metric === "http_requests_total")?.value, 9_900);
  assert.equal(overflows.find((s) => s.labels.metric === DURATION)?.value, 9_900);
  const text = await generateLatest(registry);
  assert.match(text, /^theus_series_overflow_total\{metric="http_requests_total"\} 9900$/m);
});

test("instrument(): a 404 without a route option is counted as (unmatched), 500 paths in one series", async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response("not found", { status: 404 }), { registry });
  for (let i = 0; i < 500; i++) {
    await handler(new Request(`http://localhost/nothing-here-${randomOf(LOWER, 10)}/${i}`));
  }
  assert.equal(UNMATCHED_ROUTE, "(unmatched)");
  const series = await valueSeries(registry, REQUESTS);
  assert.deepEqual(series.map((s) => s.labels), [labels("GET", 404, "(unmatched)")]);
  assert.equal(series[0].value, 500);
  assert.equal((await durationOf(registry, labels("GET", 404, "(unmatched)"))).count, 500);
});

test("instrument(): a handler that takes 50 ms lands above le=0.05 and within le=0.1", async () => {
  const registry = new Registry();
  const handler = instrument(async () => {
    await atLeast(50); // a timer may fire a little early by the monotonic clock
    return ok();
  }, { registry });
  await handler(new Request("http://localhost/slow"));
  const series = await durationOf(registry, labels("GET", 200, "/slow"));
  assert.equal(series.count, 1);
  assert.equal(bucket(series, 0.05), 0, `sum ${series.sum}`);
  assert.equal(bucket(series, 0.1), 1, `sum ${series.sum}`);
});

test("instrument(): a handler that throws, or rejects, is counted as a 500 and its error rethrown", async () => {
  const registry = new Registry();
  const thrown = new Error("sync boom");
  const rejected = new Error("async boom");
  const throwing = instrument((): Response => {
    throw thrown;
  }, { registry });
  const rejecting = instrument(async (): Promise<Response> => {
    await sleep(1);
    throw rejected;
  }, { registry });
  assert.throws(() => throwing(new Request("http://localhost/sync")), (error) => error === thrown);
  await assert.rejects(
    Promise.resolve(rejecting(new Request("http://localhost/async"))),
    (error) => error === rejected,
  );
  assert.equal(await requestsOf(registry, labels("GET", 500, "/sync")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 500, "/async")), 1);
  assert.equal(await requestsTotal(registry), 2);
  assert.equal((await durationOf(registry, labels("GET", 500, "/sync"))).count, 1);
  assert.equal((await durationOf(registry, labels("GET", 500, "/async"))).count, 1);
});

// --- until "body", cancellation -----------------------------------------------------------

test('instrument(): until "body" counts a streamed response when its body has been read, for the whole time', async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response(slowBody(3, 30)), { registry, until: "body" });
  const response = await handler(new Request("http://localhost/stream"));
  assert.equal(await requestsTotal(registry), 0);
  const reader = response.body!.getReader();
  const readStart = performance.now();
  const first = await reader.read();
  assert.equal(first.done, false);
  await sleep(10);
  assert.equal(await requestsTotal(registry), 0, "counted after the first chunk");
  let bytes = first.value!.byteLength;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    bytes += value.byteLength;
  }
  const streamingMs = performance.now() - readStart;
  assert.equal(bytes, 24);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
  const series = await durationOf(registry, labels("GET", 200, "/stream"));
  assert.equal(series.count, 1);
  assert.ok(
    series.sum >= streamingMs / 1000 - 0.005,
    `duration ${series.sum} s, streaming ${streamingMs} ms`,
  );
  assert.ok(series.sum >= 0.09 - 0.005, `duration ${series.sum} s for 3 chunks 30 ms apart`);
});

test('instrument(): with until "headers" (the default) a streamed response is counted when the handler returns', async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response(slowBody(3, 30)), { registry });
  const response = await handler(new Request("http://localhost/stream"));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
  assert.equal(await drain(response.body!), 24);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
  assert.equal(await durationCount(registry), 1);
});

test('instrument(): until "body" counts a cancelled body once, with the status of the response', async () => {
  const registry = new Registry();
  let cancelled = false;
  const handler = instrument(() =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          await sleep(5);
          controller.enqueue(new Uint8Array([1, 2, 3]));
        },
        cancel() {
          cancelled = true;
        },
      }),
      { status: 206 },
    ), { registry, until: "body" });
  const response = await handler(new Request("http://localhost/partial"));
  const reader = response.body!.getReader();
  await reader.read();
  assert.equal(await requestsTotal(registry), 0);
  await reader.cancel("enough");
  assert.ok(cancelled, "the handler's body was cancelled through the counting stream");
  assert.equal(await requestsOf(registry, labels("GET", 206, "/partial")), 1);
  await sleep(20);
  assert.equal(await requestsTotal(registry), 1);
  assert.equal(await durationCount(registry), 1);
});

test('instrument(): until "body" counts a request whose signal aborts while its body is unread, once', async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response(slowBody(100, 30)), { registry, until: "body" });
  const controller = new AbortController();
  const response = await handler(new Request("http://localhost/gone", { signal: controller.signal }));
  await sleep(10);
  assert.equal(await requestsTotal(registry), 0);
  controller.abort();
  await sleep(0);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/gone")), 1);
  // The body cancelled afterwards, as a runtime does once the client is gone: still one.
  await response.body!.cancel();
  await sleep(20);
  assert.equal(await requestsTotal(registry), 1);
  assert.equal(await durationCount(registry), 1);
});

test('instrument(): until "body" counts a body cancelled and then a signal aborted once', async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response(slowBody(100, 30)), { registry, until: "body" });
  const controller = new AbortController();
  const response = await handler(new Request("http://localhost/twice", { signal: controller.signal }));
  const reader = response.body!.getReader();
  await reader.read();
  await reader.cancel();
  assert.equal(await requestsTotal(registry), 1);
  controller.abort();
  await sleep(20);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/twice")), 1);
  assert.equal(await durationCount(registry), 1);
});

// --- options ------------------------------------------------------------------------------

test("instrument(): the route option overrides the template and (unmatched)", async () => {
  const registry = new Registry();
  const seen: string[] = [];
  const handler = instrument(
    (request) => new Response("x", { status: new URL(request.url).pathname === "/missing" ? 404 : 200 }),
    {
      registry,
      route: (request) => {
        seen.push(request.url);
        return new URL(request.url).pathname.startsWith("/api/") ? "/api/*" : "/other";
      },
    },
  );
  await handler(new Request("http://localhost/api/users/42"));
  await handler(new Request("http://localhost/api/orders"));
  await handler(new Request("http://localhost/missing"));
  assert.equal(seen.length, 3);
  const series = await valueSeries(registry, REQUESTS);
  assert.equal(series.length, 2, JSON.stringify(series));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/api/*")), 2);
  assert.equal(await requestsOf(registry, labels("GET", 404, "/other")), 1);
});

test("instrument(): exclude paths and an exclude predicate record nothing for those requests", async () => {
  const registry = new Registry();
  let calls = 0;
  const byPath = instrument(() => {
    calls++;
    return new Response("metrics");
  }, { registry, exclude: ["/metrics", "/health"] });
  for (const url of ["/metrics", "/metrics?x=1", "/health"]) {
    const response = await byPath(new Request(`http://localhost${url}`));
    assert.equal(await response.text(), "metrics");
  }
  assert.equal(calls, 3);
  assert.equal(await requestsTotal(registry), 0);
  assert.equal(await durationCount(registry), 0);
  await byPath(new Request("http://localhost/metrics/extra"));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/metrics/extra")), 1);

  const other = new Registry();
  const byPredicate = instrument(() => {
    calls++;
    return ok();
  }, { registry: other, exclude: (request) => request.headers.get("x-internal") === "1" });
  await byPredicate(new Request("http://localhost/a", { headers: { "x-internal": "1" } }));
  assert.equal(calls, 5);
  assert.equal(await requestsTotal(other), 0);
  await byPredicate(new Request("http://localhost/a"));
  assert.equal(await requestsOf(other, labels("GET", 200, "/a")), 1);
});

/** Options instrument() must refuse, each with what its TypeError names. */
const INVALID_OPTIONS: readonly [Record<string, unknown>, RegExp][] = [
  [{ rout: () => "/x" }, /"rout"/],
  [{ until: "end" }, /until/],
  [{ until: true }, /until/],
  [{ maxSeries: 0 }, /maxSeries/],
  [{ maxSeries: 1.5 }, /maxSeries/],
  [{ maxSeries: "100" }, /maxSeries/],
  [{ route: "/users/:id" }, /route/],
  [{ exclude: ["metrics"] }, /exclude/],
  [{ exclude: ["/metrics", 42] }, /exclude/],
  [{ exclude: "/metrics" }, /exclude/],
  [{ inFlight: "yes" }, /inFlight/],
  [{ prefix: "my-app_" }, /prefix/],
];

test("instrument(): invalid options and a handler that is not a function throw TypeError", () => {
  for (const [options, names] of INVALID_OPTIONS) {
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => instrument(ok, { registry: new Registry(), ...options } as any),
      (error) => error instanceof TypeError && names.test(error.message),
      JSON.stringify(options),
    );
  }
  // deno-lint-ignore no-explicit-any
  assert.throws(() => instrument("handler" as any, { registry: new Registry() }), TypeError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => instrument(undefined as any), TypeError);
});

test("instrument(): an invalid option registers nothing, so the registry stays usable", async () => {
  for (const [options] of INVALID_OPTIONS) {
    const registry = new Registry();
    // deno-lint-ignore no-explicit-any
    assert.throws(() => instrument(ok, { registry, ...options } as any), TypeError);
    const names = (await registry.collect()).map((family) => family.name);
    assert.deepEqual(names, [], `after ${JSON.stringify(options)}`);
    // Valid options with another cap than the default still work on the registry.
    const handler = instrument(ok, { registry, maxSeries: 10, exclude: ["/metrics"] });
    await handler(new Request("http://localhost/a"));
    assert.equal(await requestsTotal(registry), 1);
  }
});

test("instrument(): two instrument() calls on one registry share the metrics; other buckets throw", async () => {
  const registry = new Registry();
  const first = instrument(ok, { registry });
  const second = instrument(() => new Response("no", { status: 403 }), {
    registry,
    buckets: HTTP_DURATION_BUCKETS,
  });
  await first(new Request("http://localhost/a"));
  await second(new Request("http://localhost/b"));
  await first(new Request("http://localhost/a"));
  const families = (await registry.collect()).filter((f) => f.name === REQUESTS);
  assert.equal(families.length, 1);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/a")), 2);
  assert.equal(await requestsOf(registry, labels("GET", 403, "/b")), 1);
  assert.throws(
    () => instrument(ok, { registry, buckets: [0.1, 1] }),
    (error) => error instanceof TypeError && /buckets/.test(error.message),
  );
  assert.throws(
    () => instrument(ok, { registry, maxSeries: 5 }),
    (error) => error instanceof TypeError && /maxSeries/.test(error.message),
  );
  // Another prefix is another set of metrics.
  const prefixed = instrument(ok, { registry, prefix: "myapp_", buckets: [0.1, 1] });
  await prefixed(new Request("http://localhost/c"));
  assert.equal(await requestsTotal(registry), 3);
  assert.equal((await valueSeries(registry, `myapp_${REQUESTS}`)).length, 1);
});

// --- extras -------------------------------------------------------------------------------

test("instrument(): inFlight goes up while a handler is pending and back to 0", async () => {
  const registry = new Registry();
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const handler = instrument(async () => {
    await gate;
    return ok();
  }, { registry, inFlight: true });
  const inFlight = async (method: string) =>
    (await valueSeries(registry, IN_FLIGHT)).find((s) => s.labels.method === method)?.value ?? 0;
  const a = handler(new Request("http://localhost/a"));
  const b = handler(new Request("http://localhost/b"));
  const c = handler(new Request("http://localhost/c", { method: "POST", body: "x" }));
  assert.equal(await inFlight("GET"), 2);
  assert.equal(await inFlight("POST"), 1);
  release();
  await Promise.all([a, b, c]);
  assert.equal(await inFlight("GET"), 0);
  assert.equal(await inFlight("POST"), 0);
  assert.equal(await requestsTotal(registry), 3);
});

test("instrument(): requestSize observes Content-Length, 0 for a request without a body", async () => {
  const registry = new Registry();
  const handler = instrument(async (request) => new Response(await request.text()), {
    registry,
    requestSize: true,
  });
  const response = await handler(
    new Request("http://localhost/upload", {
      method: "POST",
      body: "hello world",
      headers: { "content-length": "11" },
    }),
  );
  assert.equal(await response.text(), "hello world");
  let series = (await histogramSeries(registry, REQUEST_SIZE)).find((s) => s.labels.method === "POST");
  assert.ok(series);
  assert.deepEqual([series.count, series.sum], [1, 11]);
  await handler(new Request("http://localhost/upload"));
  series = (await histogramSeries(registry, REQUEST_SIZE)).find((s) => s.labels.method === "GET");
  assert.ok(series);
  assert.deepEqual([series.count, series.sum], [1, 0]);
});

test("instrument(): responseSize observes a streamed body as read and a Content-Length response", async () => {
  const registry = new Registry();
  const handler = instrument((request) => {
    const path = new URL(request.url).pathname;
    if (path === "/stream") return new Response(slowBody(3, 1, 100));
    if (path === "/text") return new Response("héllo");
    return new Response("x".repeat(1234), { headers: { "content-length": "1234" } });
  }, { registry, responseSize: true });
  const sizeOf = async (route: string) =>
    (await histogramSeries(registry, RESPONSE_SIZE)).find((s) => s.labels.route === route);

  const fixed = await handler(new Request("http://localhost/fixed"));
  let series = await sizeOf("/fixed");
  assert.ok(series, "a Content-Length response is observed at once");
  assert.deepEqual([series.count, series.sum], [1, 1234]);
  assert.equal((await fixed.text()).length, 1234);

  const streamed = await handler(new Request("http://localhost/stream"));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
  assert.equal((await sizeOf("/stream"))?.count ?? 0, 0, "observed before the body was read");
  assert.equal(await drain(streamed.body!), 300);
  series = await sizeOf("/stream");
  assert.ok(series);
  assert.deepEqual([series.count, series.sum], [1, 300]);

  const text = await handler(new Request("http://localhost/text"));
  assert.equal(await text.text(), "héllo");
  series = await sizeOf("/text");
  assert.ok(series);
  assert.deepEqual([series.count, series.sum], [1, 6]);
});

test("instrument(): standard methods are kept, others become _OTHER", async () => {
  const registry = new Registry();
  const handler = instrument(ok, { registry });
  await handler(new Request("http://localhost/a"));
  await handler(new Request("http://localhost/a", { method: "PURGE" }));
  await handler(new Request("http://localhost/a", { method: "PROPFIND" }));
  await handler(new Request("http://localhost/a", { method: "patch" }));
  await handler(new Request("http://localhost/a", { method: "delete" }));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/a")), 1);
  assert.equal(await requestsOf(registry, labels("_OTHER", 200, "/a")), 2);
  assert.equal(await requestsOf(registry, labels("PATCH", 200, "/a")), 1);
  assert.equal(await requestsOf(registry, labels("DELETE", 200, "/a")), 1);
  assert.equal((await valueSeries(registry, REQUESTS)).length, 4);
});

// --- templatePath -------------------------------------------------------------------------

const TEMPLATES: readonly [string, string][] = [
  ["/users/83712", "/users/:id"],
  ["/users/0", "/users/:id"],
  ["/orders/550e8400-e29b-41d4-a716-446655440000", "/orders/:id"],
  ["/orders/550E8400-E29B-41D4-A716-446655440000", "/orders/:id"],
  ["/blobs/deadbeef", "/blobs/:id"],
  ["/commits/3f9a1c20e4b7", "/commits/:id"],
  ["/events/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/events/:id"],
  ["/sessions/aB3dE5fG7hJ9kL1mN3pQ5rS7", "/sessions/:id"],
  ["/sessions/aB3dE5fG7h_9kL1mN3pQ-rS7", "/sessions/:id"],
  ["/keys/k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8", "/keys/:id"],
  ["/users/83712/orders/3f9a1c20", "/users/:id/orders/:id"],
  ["/users/83712/", "/users/:id/"],
  ["/83712", "/:id"],
  ["/", "/"],
  ["", ""],
  ["/users/", "/users/"],
  ["/users/me", "/users/me"],
  ["/blog/how-to-install-theus-on-deno", "/blog/how-to-install-theus-on-deno"],
  ["/blog/top-10-tips", "/blog/top-10-tips"],
  ["/blog/release-notes-2024-10-01", "/blog/release-notes-2024-10-01"],
  ["/blog/how-to-upgrade-from-version-1-to-version-2", "/blog/how-to-upgrade-from-version-1-to-version-2"],
  ["/api/v1/users", "/api/v1/users"],
  ["/colors/abc123", "/colors/abc123"],
  ["/blobs/deadbee", "/blobs/deadbee"],
  ["/static/app.3f9a8b2c.js", "/static/app.3f9a8b2c.js"],
  ["/docs/installation", "/docs/installation"],
];

test("templatePath() turns id-like segments into :id and leaves words, slugs and file names alone", () => {
  for (const [path, route] of TEMPLATES) {
    assert.equal(templatePath(path), route, JSON.stringify(path));
  }
});

test("isIdSegment() says which segments are ids", () => {
  const ids = [
    "0",
    "83712",
    "550e8400-e29b-41d4-a716-446655440000",
    "deadbeef",
    "3f9a1c20e4b7",
    "01ARZ3NDEKTSV4RRFFQ69G5FAV",
    "aB3dE5fG7hJ9kL1mN3pQ5rS7",
    "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8",
  ];
  const words = [
    "",
    "me",
    "users",
    "v1",
    "v2beta",
    "abc123",
    "deadbee",
    "how-to-install-theus-on-deno",
    "top-10-tips",
    "release-notes-2024-10-01",
    "app.3f9a8b2c.js",
    "installation",
    "8ARZ3NDEKTSV4RRFFQ69G5FAVW",
  ];
  for (const id of ids) assert.equal(isIdSegment(id), true, id);
  for (const word of words) assert.equal(isIdSegment(word), false, word);
  for (const kind of ID_KINDS) {
    for (let i = 0; i < 50; i++) {
      const id = kind();
      assert.equal(isIdSegment(id), true, id);
    }
  }
});

test("instrument(): routes ignore the query and keep a trailing slash", async () => {
  const registry = new Registry();
  const handler = instrument(ok, { registry });
  await handler(new Request("http://localhost/users/83712?tab=orders"));
  await handler(new Request("http://localhost/users/83713?next=/users/99/x"));
  await handler(new Request("http://localhost/users/83714"));
  await handler(new Request("http://localhost/users/83715/?tab=1"));
  await handler(new Request("http://localhost/blog/top-10-tips?utm=1"));
  await handler(new Request("http://localhost/static/app.3f9a8b2c.js"));
  await handler(new Request("http://localhost"));
  assert.equal(await requestsOf(registry, labels("GET", 200, "/users/:id")), 3);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/users/:id/")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/blog/top-10-tips")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/static/app.3f9a8b2c.js")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/")), 1);
  assert.equal((await valueSeries(registry, REQUESTS)).length, 5);
});

// --- exposition ---------------------------------------------------------------------------

test("instrument(): the exposition after traffic passes promtool and the OpenMetrics parser", async () => {
  const registry = new Registry();
  const handler = instrument(async (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/boom") throw new Error("boom");
    if (path.startsWith("/users/")) return new Response(`user ${path}`);
    if (path === "/upload") return new Response(await request.text(), { status: 201 });
    return new Response("no", { status: 404 });
  }, { registry, inFlight: true, requestSize: true, responseSize: true, maxSeries: 4 });
  const warnings = await warningsOf(async () => {
    for (const id of ["1", "2", crypto.randomUUID()]) {
      await (await handler(new Request(`http://localhost/users/${id}`))).text();
    }
    await (await handler(new Request("http://localhost/nope"))).text();
    await assert.rejects(Promise.resolve(handler(new Request("http://localhost/boom"))), /boom/);
    await (await handler(
      new Request("http://localhost/upload", {
        method: "POST",
        body: "abc",
        headers: { "content-length": "3" },
      }),
    )).text();
    await (await handler(new Request("http://localhost/users/7", { method: "PURGE" }))).text();
  });
  assert.ok(warnings.length > 0, "the fifth label set overflows");

  const text = await generateLatest(registry);
  await assertPromtool(text);
  assert.match(text, /^http_requests_total\{method="GET",status="200",ok="true",route="\/users\/:id"\} 3$/m);
  assert.match(
    text,
    /^http_requests_total\{method="GET",status="404",ok="false",route="\(unmatched\)"\} 1$/m,
  );
  assert.match(text, /^http_requests_total\{method="GET",status="500",ok="false",route="\/boom"\} 1$/m);
  assert.match(
    text,
    /^http_request_duration_seconds_count\{method="GET",status="200",ok="true",route="\/users\/:id"\} 3$/m,
  );
  assert.match(text, /^http_requests_in_flight\{method="GET"\} 0$/m);

  const families = await assertOpenMetrics(await generateLatest(registry, { format: "openmetrics" }));
  const byName = new Map(families.map((f) => [f.name, f]));
  assert.equal(byName.get(REQUESTS)?.type, "counter");
  assert.equal(byName.get(DURATION)?.type, "histogram");
  assert.equal(byName.get(REQUEST_SIZE)?.type, "histogram");
  assert.equal(byName.get(RESPONSE_SIZE)?.type, "histogram");
  assert.equal(byName.get(IN_FLIGHT)?.type, "gauge");
  const totals = byName.get(REQUESTS)!.samples.filter(([name]) => name === "http_requests_total");
  assert.equal(totals.reduce((sum, [, , value]) => sum + Number(value), 0), 7);
  assert.ok(totals.some(([, sample]) => sample.route === OVERFLOW_LABEL_VALUE), "the overflow series");
});

// --- real servers -------------------------------------------------------------------------

interface Served {
  readonly port: number;
  close(): Promise<void>;
}

type FetchHandler = (request: Request) => Response | Promise<Response>;

/** Serves a handler on a free loopback port with the runtime's own server. */
async function serve(handler: FetchHandler): Promise<Served> {
  const error = () => new Response("Internal Server Error", { status: 500 });
  if (runtime === "deno") {
    const server = g.Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {}, onError: error }, handler);
    return {
      port: server.addr.port,
      close: () => within(server.shutdown(), 5_000, "Deno.serve to shut down"),
    };
  }
  if (runtime === "bun") {
    const server = g.Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: handler, error });
    return {
      port: server.port,
      close: async () => {
        await server.stop(true);
      },
    };
  }
  const server = createServer(nodeListener(handler));
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections?.();
      return within(closed, 5_000, "the node:http server to close");
    },
  };
}

async function withServer(handler: FetchHandler, fn: (base: string) => Promise<void>): Promise<void> {
  const server = await serve(handler);
  try {
    await fn(`http://127.0.0.1:${server.port}`);
  } finally {
    await server.close();
  }
}

const SERVER = runtime === "deno"
  ? "Deno.serve"
  : runtime === "bun"
  ? "Bun.serve"
  : "node:http + nodeListener";

test(`instrument() behind ${SERVER}: routes, a 404, a thrown error and a 50 ms handler over loopback`, async () => {
  const registry = new Registry();
  const handler = instrument(async (request: Request) => {
    const path = new URL(request.url).pathname;
    if (path === "/boom") throw new Error("boom, on purpose");
    if (path === "/slow") {
      await atLeast(50);
      return new Response("slow");
    }
    if (path.startsWith("/users/")) return new Response(`user ${path.slice(7)}`);
    return new Response("not found", { status: 404 });
  }, { registry });
  await withServer(handler, async (base) => {
    const N = 20;
    for (let i = 0; i < N; i++) {
      const id = ID_KINDS[i % ID_KINDS.length]();
      const response = await fetch(`${base}/users/${id}`);
      assert.equal(response.status, 200);
      assert.equal(await response.text(), `user ${id}`);
    }
    const missing = await fetch(`${base}/no/such/page`);
    assert.equal(missing.status, 404);
    await missing.text();
    const boom = await fetch(`${base}/boom`);
    assert.equal(boom.status, 500);
    await boom.text();
    const slow = await fetch(`${base}/slow`);
    assert.equal(await slow.text(), "slow");
  });
  assert.equal(await requestsOf(registry, labels("GET", 200, "/users/:id")), 20);
  assert.equal(await requestsOf(registry, labels("GET", 404, "(unmatched)")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 500, "/boom")), 1);
  assert.equal(await requestsOf(registry, labels("GET", 200, "/slow")), 1);
  assert.equal((await valueSeries(registry, REQUESTS)).length, 4);
  assert.equal(await durationCount(registry), 23);
  const slow = await durationOf(registry, labels("GET", 200, "/slow"));
  assert.equal(bucket(slow, 0.05), 0, `sum ${slow.sum}`);
  assert.equal(bucket(slow, 0.1), 1, `sum ${slow.sum}`);
});

test(`instrument() behind ${SERVER}: until "body" counts a streamed response once the client has read it`, async () => {
  const registry = new Registry();
  const handler = instrument(() => new Response(slowBody(3, 30, 1000)), {
    registry,
    until: "body",
    responseSize: true,
  });
  await withServer(handler, async (base) => {
    const response = await fetch(`${base}/stream`);
    assert.equal(response.status, 200);
    assert.equal(await drain(response.body!), 3000);
  });
  assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
  assert.equal(await requestsTotal(registry), 1);
  const series = await durationOf(registry, labels("GET", 200, "/stream"));
  assert.equal(series.count, 1);
  assert.ok(series.sum >= 0.09 - 0.005, `duration ${series.sum} s for 3 chunks 30 ms apart`);
  const size = (await histogramSeries(registry, RESPONSE_SIZE))[0];
  assert.deepEqual([size.count, size.sum], [1, 3000]);
});

if (runtime === "deno") {
  test('instrument() with until "body" behind Deno.serve makes Deno print no warning about request.signal', async () => {
    // In a process of its own: Deno prints its warning once per process.
    const fixture = new URL("./fixtures/http_deno_signal.ts", import.meta.url).pathname;
    const output = await new g.Deno.Command(g.Deno.execPath(), {
      args: ["run", "-A", fixture],
      env: { NO_COLOR: "1" },
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    assert.equal(output.code, 0, decode(output.stderr));
    const { body, counted, warnings } = JSON.parse(decode(output.stdout)) as {
      body: string;
      counted: number;
      warnings: string[];
    };
    assert.equal(body, "hello");
    assert.equal(counted, 1);
    assert.deepEqual(warnings, []);
  });
}

test(`instrument() behind ${SERVER}: a client that aborts mid-stream is counted exactly once`, async () => {
  const registry = new Registry();
  let stopped = false;
  let produced = 0;
  const handler = instrument(() => {
    // Up to 3 s of chunks: longer than the 2 s the count is waited for.
    let sent = 0;
    return new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (stopped || sent === 100) return controller.close();
          if (sent > 0) await sleep(30);
          sent++;
          produced++;
          controller.enqueue(new Uint8Array(64).fill(98));
        },
      }),
    );
  }, { registry, until: "body" });
  const server = await serve(handler);
  try {
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${server.port}/stream`, { signal: controller.signal });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const first = await reader.read();
    assert.equal(first.done, false);
    assert.equal(await requestsTotal(registry), 0, "counted before the body ended");
    controller.abort();
    await reader.read().catch(() => {});

    const deadline = performance.now() + 2_000;
    while ((await requestsTotal(registry)) === 0 && performance.now() < deadline) await sleep(20);
    assert.equal(
      await requestsTotal(registry),
      1,
      `not counted within 2 s of the abort (${produced} chunks made)`,
    );
    await sleep(200);
    assert.equal(await requestsOf(registry, labels("GET", 200, "/stream")), 1);
    assert.equal(await requestsTotal(registry), 1);
    assert.equal(await durationCount(registry), 1);
  } finally {
    stopped = true;
    await server.close();
  }
});

/**
 * What theus' HTTP request metrics cost per request, in one process, without a network: the
 * handler or app is called directly with a `Request`, one request at a time.
 *
 * - `instrument()` (theus/http): the hello-world handler `() => new Response("hello")` called
 *   bare, against the same handler wrapped by `instrument(handler, { registry })` (a registry of
 *   its own), for `GET /users/83712` (a route templated to `/users/:id`) and for `GET /`. Reported:
 *   ns per request of each side and the overhead, instrumented − bare, in ns per request. No
 *   target: the aim is a small fixed cost, reported as is.
 * - Hono: three apps built alike (`new Hono()`, `app.get("/users/:id", (c) => c.text("hello"))`):
 *   bare; with theus' middleware first (`app.use(prometheus({ registry }))`, theus/hono); with
 *   `@hono/prometheus` first (`app.use("*", registerMetrics)`, prom-client's metrics in a
 *   prom-client `Registry` of its own). Each is driven with
 *   `await app.fetch(new Request("http://localhost/users/83712"))`. Reported: ns per request of
 *   the three, each middleware's overhead over the bare app, and theus' overhead ÷
 *   @hono/prometheus' overhead, target ≤ 0.33 (theus' overhead at most a third of theirs). A
 *   fourth app with a middleware that does nothing (`await next()`) shows what any middleware
 *   costs Hono (its dispatch takes one more step), under both overheads: each middleware's own
 *   work, its overhead over that one, is reported beside them, without a target.
 *
 * Every request is built in the timed loop (`new Request(url)`), the same on every side, and is
 * part of every figure; the overheads are differences, so it cancels out of them. No side reads
 * the body of the response it gets (only its status): a server would send it, which costs the
 * same with or without the metrics (with theus' default `until: "headers"` the response is
 * passed on as it is, the body untouched).
 *
 * The sides alternate in rounds: each round runs a batch of 2,000 requests of every side (1,000
 * with --quick), in an order that rotates from round to round, so that the slow drifts of a
 * shared machine (CPU frequency, neighbours, GC) hit every side alike. After a warm-up (at least
 * 5 rounds and 1 s; --quick: 3 and 0.3 s), 15 rounds (--quick: 7); reported are the medians over
 * the rounds of the ns per request of each side, and of each round's overhead (a side minus the
 * bare side of the same round, so that each difference is taken between batches run back to
 * back). The sides of `instrument()` are timed for one path, then for the other.
 *
 * Runs on Deno, Bun and Node:
 *
 *   ./node_modules/.bin/deno run -A bench/http.ts [--quick]
 *   ./node_modules/.bin/bun bench/http.ts [--quick]
 *   node <outDir>/bench/http.js [--quick]    (after tsc; `npm run bench` does it all,
 *                                            `node bench/run.mjs --only http` this)
 *
 * The exit code is non-zero only when a sanity check fails: a response other than the 200
 * expected, or counts that differ from the requests sent (theus' `http_requests_total` and
 * `http_request_duration_seconds` read with `registry.collect()`, @hono/prometheus' counter
 * with prom-client's `getMetricsAsJSON()`). A missed target is reported, never fatal.
 *
 * @module
 */

import { prometheus as honoPrometheus } from "@hono/prometheus";
import { Hono } from "hono";
import client from "prom-client";
import { type MetricFamily, Registry } from "../mod.ts";
import { instrument } from "../adapters/http.ts";
import { prometheus } from "../adapters/hono.ts";
import { ARGS, detectRuntime, fmt, median, type Runtime, sink } from "./_harness.ts";
import { atMost, check, exitProcess, failures, familyOf, infoRow, notes, printReport } from "./_report.ts";

const quick = ARGS.includes("--quick");
const runtime: Runtime = detectRuntime();

/** Requests per side per round. */
const BATCH = quick ? 1_000 : 2_000;
/** Timed rounds; the medians over them are reported. */
const ROUNDS = quick ? 7 : 15;
/**
 * Rounds run first and discarded, at least WARMUP_ROUNDS and WARMUP_MS: the JIT and the metrics'
 * series warm up.
 */
const WARMUP_ROUNDS = quick ? 3 : 5;
const WARMUP_MS = quick ? 300 : 1_000;
/** The target: theus' overhead over the bare Hono app, at most this share of @hono/prometheus'. */
const MAX_OVERHEAD_RATIO = 0.33;

const USERS_URL = "http://localhost/users/83712";
const ROOT_URL = "http://localhost/";

/** Written by every batch (the statuses seen), so that no engine drops the work. */
let statuses = 0;

/** One side of a comparison: runs `n` requests one after the other. */
interface Side {
  name: string;
  batch: (n: number) => number | Promise<number>;
  /** Requests sent so far, warm-up included. */
  sent: number;
  /** Whether a batch got a status other than 200. */
  failed?: boolean;
}

/**
 * Runs the sides in rounds of BATCH requests each, the order rotating from round to round, and
 * returns every side's ns per request of every timed round.
 */
async function rounds(sides: Side[]): Promise<number[][]> {
  const times: number[][] = sides.map(() => []);
  const oneRound = async (round: number, timed: boolean) => {
    for (let k = 0; k < sides.length; k++) {
      const i = (round + k) % sides.length;
      const side = sides[i];
      const start = performance.now();
      const sum = await side.batch(BATCH);
      const ms = performance.now() - start;
      side.sent += BATCH;
      statuses = (statuses + sum) | 0;
      if (sum !== 200 * BATCH && !side.failed) {
        side.failed = true; // reported once
        check(`${side.name}: statuses of a batch of ${BATCH}, all 200`, sum, 200 * BATCH);
      }
      if (timed) times[i].push((ms * 1e6) / BATCH);
    }
  };
  const warmupStart = performance.now();
  let round = 0;
  while (round < WARMUP_ROUNDS || performance.now() - warmupStart < WARMUP_MS) await oneRound(round++, false);
  for (let timed = 0; timed < ROUNDS; timed++) await oneRound(round++, true);
  return times;
}

/** Overheads at or below zero seen: a cost within the noise of the run. */
let belowZero = 0;

/** The median over the rounds of a side's ns per request minus the bare side's in the same round. */
function overhead(side: readonly number[], bare: readonly number[]): number {
  const ns = median(side.map((value, r) => value - bare[r]));
  if (ns <= 0) belowZero++;
  return ns;
}

/** ns, with the sign of a negative overhead in front. */
const signed = (ns: number) => `${ns < 0 ? "-" : ""}${fmt(Math.abs(ns), "ns")}`;

/** A batch of fetch-style calls of a handler that answers synchronously: the sum of the statuses. */
function syncBatch(handler: (request: Request) => Response | Promise<Response>, url: string) {
  return (n: number): number => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (handler(new Request(url)) as Response).status;
    return sum;
  };
}

/** A batch of `app.fetch()` calls, each awaited: the sum of the statuses. */
function appBatch(app: Hono, url: string) {
  return async (n: number): Promise<number> => {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (await app.fetch(new Request(url))).status;
    return sum;
  };
}

/** The value of the series of a theus counter family with these labels (0 without one). */
function counted(families: readonly MetricFamily[], name: string, labels: Record<string, string>): number {
  const family = familyOf(families, name);
  if (family === undefined || family.type === "histogram" || family.type === "summary") return NaN;
  const series = family.series.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return series?.value ?? 0;
}

/** The observations of the series of a theus histogram family with these labels. */
function observed(families: readonly MetricFamily[], name: string, labels: Record<string, string>): number {
  const family = familyOf(families, name);
  if (family?.type !== "histogram") return NaN;
  const series = family.series.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return series?.count ?? 0;
}

/** The sum of every series of a theus family (a counter's values, a histogram's counts). */
function total(families: readonly MetricFamily[], name: string): number {
  const family = familyOf(families, name);
  if (family === undefined) return NaN;
  return family.series.reduce((sum, s) => sum + ("value" in s ? s.value : s.count), 0);
}

const labelsOf = (route: string) => ({ method: "GET", status: "200", ok: "true", route });

// ---------------------------------------------------------------------------------------------
// instrument(): a fetch-style handler, bare and wrapped

async function instrumentCost(): Promise<void> {
  const registry = new Registry();
  const handler = (_request: Request) => new Response("hello");
  const wrapped = instrument(handler, { registry });
  const probe = wrapped(new Request(USERS_URL));
  check(
    "instrument(): a synchronous handler's answer comes back synchronously",
    probe instanceof Response,
    true,
  );
  check("instrument(): status", (probe as Response).status, 200);
  let sent = 1;
  for (const [url, path, route] of [[USERS_URL, "/users/83712", "/users/:id"], [ROOT_URL, "/", "/"]]) {
    const sides: Side[] = [
      { name: `bare handler ${path}`, batch: syncBatch(handler, url), sent: 0 },
      { name: `instrument() ${path}`, batch: syncBatch(wrapped, url), sent: 0 },
    ];
    const [bare, instrumented] = await rounds(sides);
    sent += sides[1].sent;
    const families = await registry.collect();
    const expected = sides[1].sent + (url === USERS_URL ? 1 : 0);
    check(
      `instrument() ${path}: http_requests_total`,
      counted(families, "http_requests_total", labelsOf(route)),
      expected,
    );
    check(
      `instrument() ${path}: http_request_duration_seconds count`,
      observed(families, "http_request_duration_seconds", labelsOf(route)),
      expected,
    );
    const bareNs = median(bare);
    const instrumentedNs = median(instrumented);
    const extra = overhead(instrumented, bare);
    infoRow(
      `instrument(), GET ${path}: overhead per request (instrumented - bare)`,
      signed(extra),
      `${fmt(bareNs, "ns")} bare`,
    );
    atMost(
      "  ns per request: instrumented vs bare handler",
      fmt(instrumentedNs, "ns"),
      `${fmt(bareNs, "ns")} bare`,
      instrumentedNs / bareNs,
    );
  }
  const families = await registry.collect();
  check("instrument(): every request counted, no other", total(families, "http_requests_total"), sent);
  check("instrument(): every request timed", total(families, "http_request_duration_seconds"), sent);
}

// ---------------------------------------------------------------------------------------------
// Hono: the bare app, theus' middleware, @hono/prometheus

function app(middleware?: (app: Hono) => void): Hono {
  const app = new Hono();
  middleware?.(app);
  app.get("/users/:id", (c) => c.text("hello"));
  return app;
}

async function honoCost(): Promise<void> {
  const registry = new Registry();
  const register = new client.Registry();
  const { registerMetrics } = honoPrometheus({ registry: register });
  const bareApp = app();
  const theusApp = app((a) => a.use(prometheus({ registry })));
  const promApp = app((a) => a.use("*", registerMetrics));
  // What any middleware costs Hono (one more step of its dispatch, a promise): the floor under
  // both middlewares' overheads.
  const noopApp = app((a) =>
    a.use(async (_c, next) => {
      await next();
    })
  );
  const apps = [
    ["bare", bareApp],
    ["theus", theusApp],
    ["@hono/prometheus", promApp],
    ["no-op", noopApp],
  ] as const;
  for (const [what, a] of apps) {
    const response = await a.fetch(new Request(USERS_URL));
    check(`Hono ${what}: status`, response.status, 200);
    check(`Hono ${what}: body`, await response.text(), "hello");
  }
  const sides: Side[] = [
    { name: "Hono bare", batch: appBatch(bareApp, USERS_URL), sent: 1 },
    { name: "Hono theus", batch: appBatch(theusApp, USERS_URL), sent: 1 },
    { name: "Hono @hono/prometheus", batch: appBatch(promApp, USERS_URL), sent: 1 },
    { name: "Hono no-op middleware", batch: appBatch(noopApp, USERS_URL), sent: 1 },
  ];
  const [bare, theus, prom, noop] = await rounds(sides);

  const families = await registry.collect();
  const labels = labelsOf("/users/:id");
  check("Hono theus: http_requests_total", counted(families, "http_requests_total", labels), sides[1].sent);
  check("Hono theus: every request counted, no other", total(families, "http_requests_total"), sides[1].sent);
  check(
    "Hono theus: http_request_duration_seconds count",
    observed(families, "http_request_duration_seconds", labels),
    sides[1].sent,
  );
  const theirs = (await register.getMetricsAsJSON()).find((m) => m.name === "http_requests_total");
  const values = (theirs?.values ?? []) as { labels: Record<string, unknown>; value: number }[];
  check(
    "Hono @hono/prometheus: http_requests_total",
    values.find((v) => v.labels.route === "/users/:id" && v.labels.status === "200")?.value,
    sides[2].sent,
  );
  check(
    "Hono @hono/prometheus: every request counted, no other",
    values.reduce((sum, v) => sum + v.value, 0),
    sides[2].sent,
  );

  const bareNs = median(bare);
  const theusNs = median(theus);
  const promNs = median(prom);
  const ours = overhead(theus, bare);
  const theirsNs = overhead(prom, bare);
  // Without a positive overhead of theirs, there is nothing to divide by: reported as missed.
  atMost(
    "Hono GET /users/:id: overhead per request over the bare app, theus vs @hono/prometheus",
    signed(ours),
    `${signed(theirsNs)} @hono/prometheus`,
    theirsNs > 0 ? ours / theirsNs : NaN,
    MAX_OVERHEAD_RATIO,
  );
  atMost(
    "  ns per request: theus middleware vs @hono/prometheus",
    fmt(theusNs, "ns"),
    `${fmt(promNs, "ns")} @hono/prometheus`,
    theusNs / promNs,
  );
  // Each middleware's own work: its overhead over a middleware that does nothing.
  const ownWork = overhead(theus, noop);
  const theirWork = overhead(prom, noop);
  atMost(
    "  own work per request (overhead over a no-op middleware), theus vs @hono/prometheus",
    signed(ownWork),
    `${signed(theirWork)} @hono/prometheus`,
    theirWork > 0 ? ownWork / theirWork : NaN,
  );
  infoRow("  ns per request: the bare app (no middleware)", fmt(bareNs, "ns"));
  infoRow("  ns per request: a no-op middleware (Hono's floor for any middleware)", fmt(median(noop), "ns"));
}

// ---------------------------------------------------------------------------------------------

const started = performance.now();
console.log(`theus HTTP request metrics — ${runtime.version}${quick ? " — quick" : ""}`);
try {
  await instrumentCost();
  await honoCost();
} catch (error) {
  failures.push(
    `the benchmark failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`,
  );
}
notes.push(
  `in this process, no network; per side and round a batch of ${BATCH} requests, one at a time, each a new ` +
    `Request, the response's body not read; at least ${WARMUP_ROUNDS} warm-up rounds and ${WARMUP_MS} ms, ` +
    `then ${ROUNDS} rounds, the sides' order rotating; medians over the rounds, an overhead being the ` +
    `median of a round's side minus the same round's bare side`,
);
if (belowZero > 0) {
  notes.push(
    `${belowZero} overhead(s) at or below zero: that cost is within the noise of this run (a ratio to it ` +
      `says little); run again on a quieter machine`,
  );
}
printReport({
  runtime,
  kind: "http",
  quick,
  ratios: "ratio = instrumented / bare, theus / @hono/prometheus (lower is better)",
  elapsedMs: performance.now() - started,
  sane: "every response was the 200 expected, and each library counted exactly the requests it was sent",
  sink: (sink + statuses) | 0,
});
exitProcess();

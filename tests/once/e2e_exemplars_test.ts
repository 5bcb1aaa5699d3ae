// End to end, exemplars: the example service (instrument(..., { exemplars: true })) records the
// trace of a request with a sampled W3C traceparent as an exemplar, writes it in OpenMetrics,
// and a real Prometheus started with --enable-feature=exemplar-storage keeps it and gives it
// back from /api/v1/query_exemplars. Three examples are scraped:
//   - the Node example (from the build, dist/) on the memory backend;
//   - the Deno and the Bun examples on the redis backend of one real redis-server, same
//     keyPrefix: only the Deno example gets traffic, and the Bun example's scrape, hence
//     Prometheus' Bun job, must carry the same exemplars, read from Redis.
// Each route gets a known sequence of requests, one after another: sampled traceparents, and
// between and after them requests without a traceparent or with an unsampled one (-00). The
// latest exemplar of each series must be the last sampled request's, with its span_id, its
// value (1 for the counter, the duration for a bucket, inside that bucket) and a timestamp
// taken while that request was in flight; the ids of the unsampled requests appear nowhere.
// The traffic is all sent before Prometheus starts, so it stores one exemplar per series.
// A missing /usr/bin/prometheus, redis-server or dist/ is a failure, never a skip.

import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { HTTP_DURATION_BUCKETS } from "../../adapters/http.ts";
import { test } from "../_harness.ts";
import { PROMETHEUS, startPrometheus } from "../_prometheus.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import { type Child, type RecordingProxy, sleep, startProcess, waitUntil } from "../_servers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BIN = join(ROOT, "node_modules", ".bin");
const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const LISTENING = /theus example \((\w+)\) listening on (http:\/\/127\.0\.0\.1:(\d+)\/) — metrics at \S+/;
const KEY_PREFIX = "e2eexemplars";
/** Seconds an exemplar's timestamp may stray outside the request's round trip (ms rounding). */
const CLOCK_SLACK = 0.005;

type Runtime = "node" | "deno" | "bun";

/** What each route gets, in this order: the latest sampled request is not the last request. */
const PATTERN = [
  "sampled",
  "unsampled",
  "sampled",
  "none",
  "sampled",
  "sampled",
  "none",
  "unsampled",
] as const;
type Kind = typeof PATTERN[number];

/** The routes requested, with the labels their series get. */
const ROUTES = [
  { path: "/", route: "/", status: "200" },
  { path: "/missing", route: "(unmatched)", status: "404" },
] as const;

/** One request sent, with the moments around it (Unix seconds). */
interface Sent {
  kind: Kind;
  path: string;
  route: string;
  traceId: string;
  spanId: string;
  before: number;
  after: number;
}

/** An exemplar, from an exposition or from Prometheus. */
interface Exemplar {
  /** The labels of its series, `__name__` included. */
  series: Record<string, string>;
  labels: Record<string, string>;
  value: number;
  timestamp: number;
}

function hex(bytes: number): string {
  for (;;) {
    const id = [...crypto.getRandomValues(new Uint8Array(bytes))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!/^0+$/.test(id)) return id;
  }
}

/** Sends PATTERN to each route of `base`, one request after another. */
async function sendTraffic(base: string): Promise<Sent[]> {
  const sent: Sent[] = [];
  for (const { path, route, status } of ROUTES) {
    for (const kind of PATTERN) {
      const traceId = hex(16);
      const spanId = hex(8);
      const headers: Record<string, string> = {};
      if (kind !== "none") {
        headers.traceparent = `00-${traceId}-${spanId}-${kind === "sampled" ? "01" : "00"}`;
      }
      const before = Date.now() / 1000;
      const res = await fetch(`${base}${path.slice(1)}`, { headers });
      await res.arrayBuffer();
      const after = Date.now() / 1000;
      assert.equal(String(res.status), status, `GET ${path} on ${base}`);
      sent.push({ kind, path, route, traceId, spanId, before, after });
      // Apart by more than the exemplars' millisecond timestamps.
      await sleep(5);
    }
  }
  return sent;
}

/** The exemplars of an OpenMetrics exposition. */
function parseExemplars(text: string): Exemplar[] {
  const labelsOf = (s: string) =>
    Object.fromEntries([...s.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
  const out: Exemplar[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*?)\})? \S+(?: \S+)? # \{(.*)\} (\S+) (\S+)$/.exec(line);
    if (m === null) continue;
    out.push({
      series: { __name__: m[1], ...labelsOf(m[2] ?? "") },
      labels: labelsOf(m[3]),
      value: Number(m[4]),
      timestamp: Number(m[5]),
    });
  }
  return out;
}

const key = (labels: Record<string, string>) =>
  Object.entries(labels).sort(([a], [b]) => a < b ? -1 : 1).map(([k, v]) => `${k}=${v}`).join(",");

function bucketBounds(le: string): [number, number] {
  const upper = le === "+Inf" ? Infinity : Number(le);
  assert.ok(!Number.isNaN(upper), `le="${le}"`);
  const lower = Math.max(0, ...HTTP_DURATION_BUCKETS.filter((b) => b < upper));
  return [lower, upper];
}

/**
 * Asserts that `exemplars` (of one target, in its exposition or in Prometheus) are exactly what
 * the traffic `sent` leaves: per route, the counter's latest exemplar is the last sampled
 * request's; every bucket's exemplars are sampled requests of that route, inside the bucket,
 * each request in one bucket at most, the latest of them the last sampled request's.
 * `onePerSeries`: each series holds exactly one exemplar (no history).
 */
function assertExemplars(where: string, exemplars: Exemplar[], sent: Sent[], onePerSeries: boolean): void {
  const byTrace = new Map(sent.map((s) => [s.traceId, s]));
  for (const e of exemplars) {
    const what = `${where}: exemplar ${JSON.stringify(e)}`;
    assert.deepEqual(Object.keys(e.labels).sort(), ["span_id", "trace_id"], what);
    const s = byTrace.get(e.labels.trace_id);
    assert.ok(s !== undefined, `${what}: a trace id not sent to this target`);
    assert.equal(s.kind, "sampled", `${what}: the trace of a request that was not sampled`);
    assert.equal(e.labels.span_id, s.spanId, `${what}: not the span id sent with that trace id`);
    assert.equal(e.series.route, s.route, `${what}: on another route than its request's`);
    assert.equal(e.series.method, "GET", what);
    assert.ok(
      e.timestamp >= s.before - CLOCK_SLACK && e.timestamp <= s.after + CLOCK_SLACK,
      `${what}: timestamp outside its request [${s.before}, ${s.after}]`,
    );
    if (e.series.__name__ === "http_requests_total") {
      assert.equal(e.value, 1, `${what}: a counter exemplar's value is the increment`);
    } else {
      assert.equal(e.series.__name__, "http_request_duration_seconds_bucket", what);
      const [lower, upper] = bucketBounds(e.series.le);
      assert.ok(
        e.value > lower && e.value <= upper,
        `${what}: value outside its bucket (${lower}, ${upper}]`,
      );
      assert.ok(e.value <= s.after - s.before + CLOCK_SLACK, `${what}: longer than its request's round trip`);
    }
  }
  for (const { route, status } of ROUTES) {
    const sampled = sent.filter((s) => s.route === route && s.kind === "sampled");
    const last = sampled.at(-1)!;
    const of = (name: string) =>
      exemplars.filter((e) => e.series.__name__ === name && e.series.route === route);
    const bySeries = (list: Exemplar[]) => {
      const map = new Map<string, Exemplar[]>();
      for (const e of list) map.set(key(e.series), [...(map.get(key(e.series)) ?? []), e]);
      for (const [series, list] of map) {
        if (onePerSeries) assert.equal(list.length, 1, `${where}: ${series} has ${list.length} exemplars`);
        list.sort((a, b) => a.timestamp - b.timestamp);
      }
      return map;
    };

    const counters = bySeries(of("http_requests_total"));
    assert.equal(
      counters.size,
      1,
      `${where}: http_requests_total{route="${route}"} exemplars: ${[...counters.keys()]}`,
    );
    const [[series, list]] = [...counters];
    assert.equal(list[0].series.status, status, series);
    assert.equal(
      list.at(-1)!.labels.trace_id,
      last.traceId,
      `${where}: ${series}: the latest exemplar is not the last sampled request's`,
    );

    const buckets = bySeries(of("http_request_duration_seconds_bucket"));
    assert.ok(
      buckets.size > 0,
      `${where}: no http_request_duration_seconds_bucket{route="${route}"} exemplar`,
    );
    const seen = new Map<string, string>();
    let latest: Exemplar | undefined;
    for (const [series, list] of buckets) {
      for (const e of list) {
        const other = seen.get(e.labels.trace_id);
        assert.ok(
          other === undefined || other === series,
          `${where}: trace ${e.labels.trace_id} in two buckets`,
        );
        seen.set(e.labels.trace_id, series);
        if (latest === undefined || e.timestamp > latest.timestamp) latest = e;
      }
    }
    assert.equal(
      latest!.labels.trace_id,
      last.traceId,
      `${where}: the latest bucket exemplar of route ${route} is not the last sampled request's`,
    );
  }
}

/** Asserts that the unsampled requests' and the other targets' ids appear nowhere in `text`. */
function assertAbsent(where: string, text: string, forbidden: Sent[]): void {
  for (const s of forbidden) {
    assert.ok(!text.includes(s.traceId), `${where} holds trace id ${s.traceId} (${s.kind}, ${s.path})`);
    assert.ok(!text.includes(s.spanId), `${where} holds span id ${s.spanId} (${s.kind}, ${s.path})`);
  }
}

async function getJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  const body = await res.json();
  if (body.status !== "success") throw new Error(`${url}: ${res.status} ${body.error ?? ""}`);
  return body.data;
}

/** Stops a child by pid, SIGTERM then SIGKILL, and waits until it is gone (see tests/_redis.ts). */
async function stopForSure(child: Child, graceMs = 3000): Promise<void> {
  const pid = child.process.pid;
  if (pid === undefined) return;
  const alive = () => {
    if (child.closed()) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  };
  const gone = async (ms: number) => {
    const deadline = Date.now() + ms;
    while (alive() && Date.now() < deadline) await sleep(20);
    return !alive();
  };
  if (!alive()) return;
  signal("SIGTERM");
  if (await gone(graceMs)) return;
  signal("SIGKILL");
  if (!(await gone(5000))) throw new Error(`${child.name} (pid ${pid}) survived SIGKILL`);
}

test(
  "a real Prometheus keeps the exemplars of the Node (memory), Deno and Bun (one redis) examples",
  async () => {
    assert.ok(
      existsSync(PROMETHEUS),
      `${PROMETHEUS} is missing: install the Debian package "prometheus" (apt-get install prometheus)`,
    );
    assert.ok(
      existsSync(join(ROOT, "dist", "mod.js")),
      "dist/mod.js is missing: the Node example imports the built package; run node tests/run.mjs",
    );

    const children: Child[] = [];
    const proxies: RecordingProxy[] = [];
    let prometheus: Child | undefined;
    let redis: RedisServer | undefined;
    const cleanup: unknown[] = [];
    const dir = mkdtempSync(join(tmpdir(), "theus-e2e-exemplars-"));
    try {
      redis = await startRedis(); // a missing redis-server throws
      const redisConfig = (instanceId: string) =>
        JSON.stringify({ url: redis!.url, keyPrefix: KEY_PREFIX, flushIntervalMs: 100, instanceId });
      const specs: {
        runtime: Runtime;
        command: string;
        args: string[];
        env: Record<string, string | undefined>;
      }[] = [
        {
          runtime: "node",
          command: "node",
          args: ["examples/node.mjs"],
          env: { THEUS_BACKEND: undefined, THEUS_BACKEND_CONFIG: undefined },
        },
        {
          runtime: "deno",
          command: join(BIN, "deno"),
          args: ["run", "--allow-net", "--allow-env", "--allow-read", "examples/deno.ts"],
          env: { THEUS_BACKEND: "redis", THEUS_BACKEND_CONFIG: redisConfig("deno-example") },
        },
        {
          runtime: "bun",
          command: join(BIN, "bun"),
          args: ["examples/bun.ts"],
          env: { THEUS_BACKEND: "redis", THEUS_BACKEND_CONFIG: redisConfig("bun-example") },
        },
      ];
      const services = await Promise.all(specs.map(async ({ runtime, command, args, env }) => {
        const child = await startProcess({
          name: `the ${runtime} example`,
          command,
          args,
          cwd: ROOT,
          env: { PORT: "0", HOST: "127.0.0.1", DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
        });
        children.push(child);
        const [, printed, base, port] = await child.waitFor(LISTENING, 20_000);
        assert.equal(printed, runtime);
        return { runtime, base, port: Number(port), child };
      }));
      const [node, deno] = services; // the Bun example gets no traffic

      // The traffic, all of it before Prometheus starts. The Bun example gets none.
      const t0 = Date.now() / 1000;
      const sentTo: Record<Runtime, Sent[]> = {
        node: await sendTraffic(node.base),
        deno: await sendTraffic(deno.base),
        bun: [],
      };
      sentTo.bun = sentTo.deno; // what the Bun example reads from Redis
      const allSent = [...sentTo.node, ...sentTo.deno];
      /** What must not show in a target's exemplars: the unsampled, and the other target's. */
      const forbiddenFor = (runtime: Runtime) =>
        allSent.filter((s) => s.kind !== "sampled" || !sentTo[runtime].includes(s));

      // Each example's own OpenMetrics scrape, until it shows the final exemplars (the redis pair
      // flushes every 100 ms). Failures are kept, to be reported in order: memory first.
      const scrapeChecks = new Map<Runtime, Error | undefined>();
      await Promise.all(services.map(async ({ runtime, base }) => {
        const where = `the ${runtime} example's own scrape`;
        try {
          await waitUntil(`${where} to show the exemplars sent`, async () => {
            const res = await fetch(`${base}metrics`, { headers: { accept: OPENMETRICS } });
            const text = await res.text();
            assert.equal(res.headers.get("content-type"), OPENMETRICS, where);
            const lines = text.split("\n").filter((l) => l.startsWith("http_request")).join("\n");
            assertAbsent(where, text, forbiddenFor(runtime));
            try {
              assertExemplars(where, parseExemplars(text), sentTo[runtime], true);
            } catch (error) {
              throw new Error(`${(error as Error).message}\n${lines}`);
            }
            return true;
          }, { timeoutMs: runtime === "node" ? 10_000 : 8_000, intervalMs: 200 });
          scrapeChecks.set(runtime, undefined);
        } catch (error) {
          scrapeChecks.set(runtime, error as Error);
        }
      }));

      // Prometheus, with exemplar storage, scraping each example through a recording proxy.
      const api = await startPrometheus(
        dir,
        services.map(({ runtime, port }) => ({
          job: `theus-${runtime}`,
          instance: `${runtime}-example`,
          port,
        })),
        { proxies, started: (child: Child) => (prometheus = child) },
        { args: ["--enable-feature=exemplar-storage"], timeoutMs: 15_000 },
      );
      const prom = prometheus!;
      const abort = () => prom.closed() ? `prometheus exited:\n${prom.output()}` : undefined;

      const exemplarsOf = async (expr: string): Promise<Exemplar[]> => {
        const end = Date.now() / 1000 + 1;
        const data = await getJson(
          `${api}/api/v1/query_exemplars?query=${encodeURIComponent(expr)}&start=${
            Math.floor(t0) - 1
          }&end=${end}`,
        ) as { seriesLabels: Record<string, string>; exemplars: Exemplar[] }[] | null;
        return (data ?? []).flatMap(({ seriesLabels, exemplars }) =>
          exemplars.map((e) => ({
            series: seriesLabels,
            labels: e.labels,
            value: Number(e.value),
            timestamp: Number(e.timestamp),
          }))
        );
      };
      /** Polls Prometheus until the job's exemplars are exactly what `sent` leaves. */
      const assertStored = (runtime: Runtime, timeoutMs: number) =>
        waitUntil(`Prometheus' exemplars of job theus-${runtime} to be those sent`, async () => {
          const selector = `{job="theus-${runtime}"}`;
          const exemplars = [
            ...await exemplarsOf(`http_requests_total${selector}`),
            ...await exemplarsOf(`http_request_duration_seconds_bucket${selector}`),
          ];
          for (const e of exemplars) {
            assert.equal(e.series.job, `theus-${runtime}`);
            assert.equal(e.series.instance, `${runtime}-example`);
          }
          assertExemplars(`Prometheus, job theus-${runtime}`, exemplars, sentTo[runtime], true);
          return true;
        }, { abort, timeoutMs, intervalMs: 500 });
      const assertOpenMetricsScrapes = (runtime: Runtime) => {
        const proxy = proxies[services.findIndex((s) => s.runtime === runtime)];
        const scrapes = proxy.exchanges.filter((e) => e.path === "/metrics");
        assert.ok(scrapes.length > 0, `no scrape of the ${runtime} example went through its proxy`);
        for (const scrape of scrapes) {
          assert.match(scrape.accept ?? "", /^application\/openmetrics-text;\s*version=1\.0\.0[,;]/, runtime);
          assert.equal(scrape.status, 200, runtime);
          assert.equal(scrape.contentType, OPENMETRICS, runtime);
        }
      };
      /** Nothing Prometheus holds, of any job, carries an id it must not. */
      const assertNothingForbidden = async () => {
        const all = await exemplarsOf(`{__name__=~"http_.+"}`);
        for (const e of all) {
          const runtime = e.series.job.replace(/^theus-/, "") as Runtime;
          assertAbsent(`Prometheus, job ${e.series.job}`, JSON.stringify(e), forbiddenFor(runtime));
          assert.ok(
            sentTo[runtime].some((s) => s.kind === "sampled" && s.traceId === e.labels.trace_id),
            `Prometheus, job ${e.series.job}: ${JSON.stringify(e)} is no sampled request's of this job`,
          );
        }
        return all.length;
      };

      // The memory backend: the Node example.
      if (scrapeChecks.get("node")) throw scrapeChecks.get("node");
      await assertStored("node", 15_000);
      assertOpenMetricsScrapes("node");
      assert.ok((await assertNothingForbidden()) > 0);
      console.log("exemplars, memory backend (node): stored and read back from Prometheus");

      // The redis backend: what the Deno example recorded, in both its scrape and the Bun one's.
      for (const runtime of ["deno", "bun"] as const) {
        const error = scrapeChecks.get(runtime);
        if (error) throw new Error(`redis backend: ${error.message}`, { cause: error });
      }
      await assertStored("deno", 10_000);
      await assertStored("bun", 10_000);
      assertOpenMetricsScrapes("deno");
      assertOpenMetricsScrapes("bun");
      await assertNothingForbidden();
      console.log("exemplars, redis backend (deno -> bun): stored and read back from Prometheus");
    } finally {
      // Prometheus first (it holds connections to the proxies), then the proxies, the examples
      // and redis; every step runs whatever the one before did.
      const steps = [
        () => prometheus ? stopForSure(prometheus) : undefined,
        () => Promise.all(proxies.map((p) => p.close())),
        () => Promise.all(children.map((c) => stopForSure(c))),
        () => redis?.stop(),
        () => rmSync(dir, { recursive: true, force: true }),
      ];
      for (const step of steps) {
        try {
          await step();
        } catch (error) {
          console.error("clean-up:", error);
          cleanup.push(error);
        }
      }
    }
    // Reached only when the test itself passed: then a failed clean-up fails it.
    if (cleanup.length > 0) throw cleanup[0];
  },
  { timeout: 90_000 },
);

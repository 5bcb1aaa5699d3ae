// HTTP request metrics of a fleet in one real redis-server: three HTTP server processes
// (tests/fixtures/http_server.ts), one on Deno (Deno.serve), one on Bun (Bun.serve) and one on
// Node (node:http through nodeListener(), from the build in dist/), each serving a fetch handler
// wrapped by instrument(handler, { inFlight: true, exclude: ["/metrics"] }) on the redis backend
// (THEUS_BACKEND=redis, THEUS_BACKEND_CONFIG inline JSON, one keyPrefix). This process sends each
// server a different number of requests over loopback, then:
//
// - while a /slow request is pending on two of the servers, the third server's /metrics shows
//   http_requests_in_flight{method="GET"} 2 (gauge mode livesum: the other processes' requests;
//   its own scrape is excluded);
// - once everything is answered and flushed, every server's /metrics shows the same fleet-wide
//   totals, exactly the sum of what all three were sent: by route (:id templated, 404s as
//   (unmatched)), the duration histogram's count equal to the counter, the /slow durations in
//   their buckets, and nothing left in flight. Each scrape passes promtool.
//
// The Node server runs from the build: dist/ (tests/run.mjs builds it first), or the tsc outDir
// in THEUS_WRITER_DIST.

import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import { instancesKey } from "../../backends/_remote/layout.ts";
import { test } from "../_harness.ts";
import { type RedisServer, startRedis } from "../_redis.ts";
import { childCommand, ROOT } from "../_root.ts";
import { type Child, killProcess, sleep, startProcess, waitUntil, within } from "../_servers.ts";
import { parseSamples, valueOf } from "../_samples.ts";
import { assertPromtool } from "../_validate.ts";

type Runtime = "deno" | "bun" | "node";

const FIXTURE = "tests/fixtures/http_server.ts";
/** Milliseconds between the servers' background flushes (the fleet tests use 50 to 100). */
const FLUSH_INTERVAL_MS = 100;
/** GET /users/<id> sent to each server, different on each, so that a sum shows. */
const USERS: Record<Runtime, number> = { deno: 40, bun: 25, node: 30 };
/** GET of a path no route answers (404), sent to each server. */
const MISSES: Record<Runtime, number> = { deno: 3, bun: 2, node: 4 };
/** How long each /slow request takes. */
const SLOW_MS = 1500;
/** The servers a /slow request is pending on while the third one is scraped. */
const SLOW_ON: readonly Runtime[] = ["deno", "bun"];
const SCRAPED: Runtime = "node";
const RUNTIMES: readonly Runtime[] = ["deno", "bun", "node"];
const LISTENING = /http_server \((deno|bun|node) (\S+)\) listening on 127\.0\.0\.1:(\d+)/;

const sum = (values: Record<Runtime, number>) => RUNTIMES.reduce((total, r) => total + values[r], 0);

interface Server {
  runtime: Runtime;
  version: string;
  base: string;
  child: Child;
}

/** Starts the fixture on `runtime`, on the redis backend with `config`. */
function startServer(runtime: Runtime, config: Record<string, unknown>): Promise<Child> {
  const [command, args] = childCommand(runtime, FIXTURE);
  return startProcess({
    name: `the ${runtime} HTTP server`,
    command,
    args,
    cwd: ROOT,
    env: {
      THEUS_BACKEND: "redis",
      THEUS_BACKEND_CONFIG: JSON.stringify(config),
      DENO_NO_UPDATE_CHECK: "1",
      NO_COLOR: "1",
    },
  });
}

/** GET `url`; asserts the status and returns the body. */
async function get(url: string, status: number): Promise<string> {
  const response = await within(fetch(url), 10_000, `GET ${url}`);
  const body = await response.text();
  assert.equal(response.status, status, `GET ${url}: ${response.status} ${body}`);
  return body;
}

/** The /metrics of one server, text 0.0.4. */
async function scrape(server: Server): Promise<string> {
  const response = await within(
    fetch(`${server.base}/metrics`, { headers: { accept: "text/plain; version=0.0.4" } }),
    10_000,
    `the ${server.runtime} scrape`,
  );
  const text = await response.text();
  assert.equal(response.status, 200, `${server.runtime} /metrics: ${text}`);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return text;
}

/** http_requests_total by "METHOD STATUS ROUTE", checking the label names and ok on the way. */
function counts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of parseSamples(text)) {
    if (s.name !== "http_requests_total") continue;
    const { method, status, ok, route } = s.labels;
    assert.deepEqual(Object.keys(s.labels), ["method", "status", "ok", "route"], JSON.stringify(s.labels));
    assert.equal(ok, String(status.startsWith("2")), JSON.stringify(s.labels));
    out[`${method} ${status} ${route}`] = s.value;
  }
  return out;
}

/** The duration histogram's count of each series, which must match the counter. */
function durationCounts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of parseSamples(text)) {
    if (s.name !== "http_request_duration_seconds_count") continue;
    out[`${s.labels.method} ${s.labels.status} ${s.labels.route}`] = s.value;
  }
  return out;
}

/** Every http_requests_in_flight sample, as "method value". */
function inFlight(text: string): string[] {
  return parseSamples(text)
    .filter((s) => s.name === "http_requests_in_flight")
    .map((s) => `${JSON.stringify(s.labels)} ${s.value}`);
}

/** The sample lines of the HTTP metrics, sorted: what every server must show alike. */
function httpLines(text: string): string[] {
  return text.split("\n").filter((line) => line.startsWith("http_")).sort();
}

test(
  "instrument() on Deno, Bun and Node servers in one Redis: in flight across processes, and every /metrics shows the fleet's exact totals",
  async () => {
    const redis: RedisServer = await startRedis();
    const keyPrefix = `httpfleet-${crypto.randomUUID()}`;
    const children: Child[] = [];
    try {
      // --- The fleet: three servers, one per runtime, one Redis and keyPrefix.
      const started = await Promise.allSettled(RUNTIMES.map(async (runtime) => {
        const child = await startServer(runtime, {
          url: redis.url,
          keyPrefix,
          flushIntervalMs: FLUSH_INTERVAL_MS,
          instanceId: `${runtime}-server`,
        });
        children.push(child);
        return child;
      }));
      for (const result of started) if (result.status === "rejected") throw result.reason;
      const servers: Record<Runtime, Server> = Object.fromEntries(
        await Promise.all(
          started.map(async (result, i): Promise<[Runtime, Server]> => {
            const child = (result as PromiseFulfilledResult<Child>).value;
            const [, runtime, version, port] = await child.waitFor(LISTENING, 30_000);
            assert.equal(runtime, RUNTIMES[i], `${child.name} says it runs on ${runtime}`);
            return [RUNTIMES[i], { runtime: RUNTIMES[i], version, base: `http://127.0.0.1:${port}`, child }];
          }),
        ),
      ) as Record<Runtime, Server>;
      const ports = new Set(RUNTIMES.map((r) => servers[r].base));
      assert.equal(ports.size, 3, "the servers share a port");
      console.log(
        `http fleet: ${RUNTIMES.map((r) => `${r} ${servers[r].version} at ${servers[r].base}`).join(", ")}`,
      );
      const died = () => {
        const dead = children.find((c) => c.closed());
        return dead === undefined ? undefined : `${dead.name} exited:\n${dead.output()}`;
      };

      // Nothing recorded before the traffic: the keyPrefix is fresh, and /metrics is excluded.
      for (const runtime of RUNTIMES) {
        const text = await scrape(servers[runtime]);
        assert.deepEqual(counts(text), {}, `${runtime} before any request:\n${text}`);
      }

      // --- Known traffic, a different amount to each server, a few requests at a time.
      await Promise.all(RUNTIMES.map(async (runtime) => {
        const { base } = servers[runtime];
        const ids = Array.from(
          { length: USERS[runtime] },
          (_, i) => i % 2 === 0 ? String(1 + Math.floor(Math.random() * 1e9)) : crypto.randomUUID(),
        );
        for (let i = 0; i < ids.length; i += 5) {
          await Promise.all(
            ids.slice(i, i + 5).map(async (id) => {
              const body = JSON.parse(await get(`${base}/users/${id}`, 200));
              assert.deepEqual(body, { id, runtime }, `${runtime} /users/${id}`);
            }),
          );
        }
        for (let i = 0; i < MISSES[runtime]; i++) {
          await get(`${base}/nowhere/${crypto.randomUUID()}`, 404);
        }
      }));
      assert.equal(died(), undefined);

      // --- In flight across processes: a /slow request pending on two servers, the third scraped.
      let slowDone = 0;
      const slow = SLOW_ON.map((runtime) =>
        get(`${servers[runtime].base}/slow?ms=${SLOW_MS}`, 200).then((body) => {
          slowDone++;
          assert.equal(body, `slow ${SLOW_MS} ms on ${runtime}\n`);
        })
      );
      const sent = performance.now();
      const seen: string[] = [];
      try {
        // The increments reach Redis with each server's next background flush; until then the
        // gauge reads less. It must read 2 (never more) while both requests are still pending.
        for (;;) {
          const text = await scrape(servers[SCRAPED]);
          const samples = inFlight(text);
          const pending = slowDone;
          seen.push(`${Math.round(performance.now() - sent)} ms: ${samples.join(", ") || "none"}`);
          const value = valueOf(text, "http_requests_in_flight", { method: "GET" });
          assert.ok(
            samples.length <= 1 && (value === undefined || value === 0 || value === 1 || value === 2),
            `http_requests_in_flight on ${SCRAPED} with 2 requests pending elsewhere: ${seen.join("; ")}`,
          );
          assert.equal(pending, 0, `a /slow request finished first; in flight seen: ${seen.join("; ")}`);
          if (value === 2) {
            await assertPromtool(text);
            break;
          }
          assert.ok(
            performance.now() - sent < SLOW_MS - 300,
            `http_requests_in_flight{method="GET"} never read 2 while two /slow requests were pending: ${
              seen.join("; ")
            }`,
          );
          await sleep(50);
        }
      } finally {
        await Promise.allSettled(slow);
      }
      await Promise.all(slow);
      console.log(`http fleet: in flight on ${SCRAPED}: ${seen.join("; ")}`);

      // --- The fleet's totals, the same on every server once the last flushes are in.
      const expected = {
        "GET 200 /users/:id": sum(USERS),
        "GET 404 (unmatched)": sum(MISSES),
        "GET 200 /slow": SLOW_ON.length,
      };
      assert.deepEqual(expected, { "GET 200 /users/:id": 95, "GET 404 (unmatched)": 9, "GET 200 /slow": 2 });
      await waitUntil(
        "every server to show the fleet's totals",
        async () => {
          for (const runtime of RUNTIMES) {
            // Thrown to say what is missing yet: waitUntil reports the last one at the deadline.
            const text = await scrape(servers[runtime]);
            const got = counts(text);
            if (!isDeepStrictEqual(got, expected)) {
              throw new Error(`${runtime} shows ${JSON.stringify(got)}`);
            }
            const flying = inFlight(text);
            if (flying.join() !== `{"method":"GET"} 0`) throw new Error(`${runtime} in flight: ${flying}`);
          }
          return true;
        },
        { timeoutMs: 10_000, intervalMs: 100, abort: died },
      );
      // Several more flush intervals: nothing may arrive late, twice, or differ between servers.
      await sleep(10 * FLUSH_INTERVAL_MS);
      const texts: Record<Runtime, string> = Object.fromEntries(
        await Promise.all(RUNTIMES.map(async (r) => [r, await scrape(servers[r])])),
      );
      for (const runtime of RUNTIMES) {
        const text = texts[runtime];
        const where = `${runtime} /metrics:\n${text}`;
        assert.deepEqual(counts(text), expected, where);
        assert.deepEqual(durationCounts(text), expected, where);
        for (const [key, count] of Object.entries(expected)) {
          const [method, status, route] = key.split(" ");
          const labels = { method, status, ok: String(status === "200"), route };
          assert.equal(
            valueOf(text, "http_request_duration_seconds_bucket", { ...labels, le: "+Inf" }),
            count,
            `${key} +Inf bucket, ${where}`,
          );
        }
        // The /slow requests took SLOW_MS each, wherever they ran.
        const slowLabels = { method: "GET", status: "200", ok: "true", route: "/slow" };
        assert.equal(
          valueOf(text, "http_request_duration_seconds_bucket", { ...slowLabels, le: "1" }),
          0,
          where,
        );
        assert.equal(
          valueOf(text, "http_request_duration_seconds_bucket", { ...slowLabels, le: "2.5" }),
          2,
          where,
        );
        const slowSum = valueOf(text, "http_request_duration_seconds_sum", slowLabels);
        assert.ok(
          slowSum !== undefined && slowSum >= (2 * SLOW_MS) / 1000 - 0.01 && slowSum < 2 * 2.5,
          `/slow duration sum ${slowSum}, ${where}`,
        );
        assert.deepEqual(inFlight(text), [`{"method":"GET"} 0`], where);
        await assertPromtool(text);
      }
      assert.deepEqual(
        httpLines(texts.bun),
        httpLines(texts.deno),
        "bun and deno show different HTTP metrics",
      );
      assert.deepEqual(
        httpLines(texts.node),
        httpLines(texts.deno),
        "node and deno show different HTTP metrics",
      );

      // Three instances wrote to the one Redis, each under its own id.
      const instances = (await redis.cli("HKEYS", instancesKey(keyPrefix))).split("\n").filter(Boolean);
      assert.deepEqual(instances.sort(), RUNTIMES.map((r) => `${r}-server`).sort());
      assert.equal(died(), undefined);
    } finally {
      const problems: string[] = [];
      for (const child of children) {
        await killProcess(child).catch((error) => problems.push(String(error)));
      }
      await redis.stop();
      assert.deepEqual(problems, [], "a server could not be stopped");
    }
  },
  { timeout: 60_000 },
);

// The HTTP adapters inside a real Workers runtime: two Workers bundled by esbuild as Wrangler does,
// run in workerd (Miniflare), one exporting `{ fetch: instrument(handler) }` from theus/http, one
// a Hono app with `app.use(prometheus())` from theus/hono. Each serves /metrics with
// metricsHandler() from the root entry, excluded from its HTTP metrics. Requests go in through
// mf.dispatchFetch (routed to a Worker by host name); each Worker's /metrics must then show
// exactly what it was sent: routes templated or from Hono's router, 404s as (unmatched), and a
// throwing handler as a 500. One Miniflare serves both Workers; the last test stops it.

import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { WORKER_BUILD } from "../_esbuild.ts";
import { test } from "../_harness.ts";
import { ROOT } from "../_root.ts";
import { assertPromtool } from "../_validate.ts";
import { parseSamples } from "../_samples.ts";

const COMPATIBILITY_DATE = "2025-09-01";

const PLAIN_WORKER = `
import { metricsHandler } from "./mod.ts";
import { instrument } from "./adapters/http.ts";

const metrics = metricsHandler();

async function handler(request, env, ctx) {
  const path = new URL(request.url).pathname;
  if (path === "/metrics") return metrics(request);
  if (path === "/boom") throw new Error("plain worker handler failed on purpose");
  const user = /^\\/users\\/([^/]+)$/.exec(path);
  if (user !== null) {
    ctx.waitUntil(Promise.resolve());
    return Response.json({ id: user[1], greeting: env.GREETING, waitUntil: typeof ctx.waitUntil });
  }
  if (path === "/slow") {
    await new Promise((resolve) => setTimeout(resolve, 60));
    return new Response("slow");
  }
  return new Response("not found", { status: 404 });
}

export default { fetch: instrument(handler, { exclude: ["/metrics"] }) };
`;

const HONO_WORKER = `
import { Hono } from "hono";
import { metricsHandler } from "./mod.ts";
import { prometheus } from "./adapters/hono.ts";

const app = new Hono();
app.use(prometheus({ exclude: ["/metrics"] }));
const metrics = metricsHandler();
app.get("/metrics", (c) => metrics(c.req.raw));
app.get("/users/:id", (c) => c.json({ id: c.req.param("id"), greeting: c.env.GREETING }));
app.post("/users/:id", (c) => c.text("created", 201));
const api = new Hono();
api.get("/items/:item", (c) => c.text("item " + c.req.param("item")));
app.route("/api", api);
app.get("/boom", () => {
  throw new Error("hono worker handler failed on purpose");
});

export default app;
`;

async function bundle(source: string, name: string): Promise<string> {
  const result = await esbuild.build({
    ...WORKER_BUILD,
    stdin: { contents: source, resolveDir: ROOT, loader: "js", sourcefile: name },
  });
  return result.outputFiles[0].text;
}

/** The text of a Miniflare response, gunzipped: workerd shows the Worker `Accept-Encoding: gzip`. */
async function bodyText(response: { arrayBuffer(): Promise<ArrayBuffer> }): Promise<string> {
  const bytes = new Uint8Array(await response.arrayBuffer());
  if (bytes[0] !== 0x1f || bytes[1] !== 0x8b) return new TextDecoder().decode(bytes);
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  return await new Response(stream).text();
}

interface Running {
  mf: Miniflare;
  output(): string;
}

let running: Promise<Running> | undefined;

/** Starts the one Miniflare with both Workers, on first use. */
function start(): Promise<Running> {
  return running ??= (async () => {
    let plain: string;
    let hono: string;
    try {
      plain = await bundle(PLAIN_WORKER, "plain_worker.js");
      hono = await bundle(HONO_WORKER, "hono_worker.js");
    } finally {
      await esbuild.stop();
    }
    for (const code of [plain, hono]) {
      assert.doesNotMatch(code, /from\s*["']node:/, "a Worker bundle imports a node: module");
    }
    let output = "";
    const mf = new Miniflare({
      workers: [
        {
          name: "plain",
          modules: [{ type: "ESModule", path: "plain.js", contents: plain }],
          compatibilityDate: COMPATIBILITY_DATE,
          bindings: { GREETING: "hello from env" },
          routes: ["plain.test/*"],
        },
        {
          name: "hono",
          modules: [{ type: "ESModule", path: "hono.js", contents: hono }],
          compatibilityDate: COMPATIBILITY_DATE,
          bindings: { GREETING: "hello from hono env" },
          routes: ["hono.test/*"],
        },
      ],
      handleRuntimeStdio(stdout: Readable, stderr: Readable) {
        stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
      },
    });
    await mf.ready.catch(async (error) => {
      await mf.dispose().catch(() => {});
      throw new Error(`${error}\n--- workerd output\n${output}`, { cause: error });
    });
    return { mf, output: () => output };
  })();
}

async function send(
  mf: Miniflare,
  url: string,
  init: { method?: string } = {},
): Promise<{ status: number; text: string }> {
  const response = await mf.dispatchFetch(url, init);
  return { status: response.status, text: await bodyText(response) };
}

/** http_requests_total by "METHOD STATUS ROUTE", checking the ok label on the way. */
function counts(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of parseSamples(text)) {
    if (s.name !== "http_requests_total") continue;
    const { method, status, ok, route } = s.labels;
    assert.deepEqual(Object.keys(s.labels), ["method", "status", "ok", "route"]);
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

test(
  "instrument() in workerd: a Worker's { fetch: instrument(handler) } gets env and ctx, and /metrics counts each route",
  async () => {
    const { mf, output } = await start();
    const base = "http://plain.test";
    for (const id of ["1", "2", "83712", "3f9a1c20-1b2c-4d5e-8f90-a1b2c3d4e5f6"]) {
      const answer = await send(mf, `${base}/users/${id}`);
      assert.equal(answer.status, 200, `${answer.text}\n${output()}`);
      assert.deepEqual(JSON.parse(answer.text), { id, greeting: "hello from env", waitUntil: "function" });
    }
    assert.equal((await send(mf, `${base}/users/5`, { method: "DELETE" })).status, 200);
    assert.equal((await send(mf, `${base}/slow`)).status, 200);
    assert.equal((await send(mf, `${base}/nowhere/${Math.random()}`)).status, 404);
    assert.equal((await send(mf, `${base}/nowhere/else`)).status, 404);
    const boom = await send(mf, `${base}/boom`);
    assert.equal(boom.status, 500);
    // instrument() rethrew the error: workerd answered with it, as for any uncaught error.
    assert.match(boom.text, /plain worker handler failed on purpose/);
    // Scraped twice: /metrics is excluded, so the second scrape shows the same counts.
    for (let round = 0; round < 2; round++) {
      const scrape = await send(mf, `${base}/metrics`);
      assert.equal(scrape.status, 200, scrape.text);
      const expected = {
        "GET 200 /users/:id": 4,
        "DELETE 200 /users/:id": 1,
        "GET 200 /slow": 1,
        "GET 404 (unmatched)": 2,
        "GET 500 /boom": 1,
      };
      assert.deepEqual(counts(scrape.text), expected, scrape.text);
      assert.deepEqual(durationCounts(scrape.text), expected, scrape.text);
      await assertPromtool(scrape.text);
    }
  },
  { timeout: 60_000 },
);

test(
  "prometheus() in workerd: a Hono Worker's /metrics counts its routes, (unmatched) and a throwing handler",
  async () => {
    const { mf, output } = await start();
    const base = "http://hono.test";
    for (const id of ["1", "2", "alice"]) {
      const answer = await send(mf, `${base}/users/${id}`);
      assert.equal(answer.status, 200, `${answer.text}\n${output()}`);
      assert.deepEqual(JSON.parse(answer.text), { id, greeting: "hello from hono env" });
    }
    assert.equal((await send(mf, `${base}/users/9`, { method: "POST" })).status, 201);
    assert.equal((await send(mf, `${base}/api/items/7`)).text, "item 7");
    assert.equal((await send(mf, `${base}/missing`)).status, 404);
    assert.equal((await send(mf, `${base}/users/1/missing`)).status, 404);
    assert.equal((await send(mf, `${base}/users/1`, { method: "DELETE" })).status, 404);
    assert.equal((await send(mf, `${base}/boom`)).status, 500);
    for (let round = 0; round < 2; round++) {
      const scrape = await send(mf, `${base}/metrics`);
      assert.equal(scrape.status, 200, scrape.text);
      const expected = {
        "GET 200 /users/:id": 3,
        "POST 201 /users/:id": 1,
        "GET 200 /api/items/:item": 1,
        "GET 404 (unmatched)": 2,
        "DELETE 404 (unmatched)": 1,
        "GET 500 /boom": 1,
      };
      assert.deepEqual(counts(scrape.text), expected, scrape.text);
      assert.deepEqual(durationCounts(scrape.text), expected, scrape.text);
      await assertPromtool(scrape.text);
    }
  },
  { timeout: 60_000 },
);

test(
  "the Workers logged only the errors thrown on purpose, and Miniflare stops",
  async () => {
    const { mf, output } = await start();
    try {
      const other = output().split("\n").filter((line) =>
        /error|uncaught|unhandled|warn/i.test(line) && !/failed on purpose/.test(line) &&
        !/^\s+at /.test(line)
      );
      assert.deepEqual(other, [], output());
      assert.match(output(), /hono worker handler failed on purpose/);
    } finally {
      await mf.dispose();
      running = undefined;
    }
  },
  { timeout: 60_000 },
);

// Pushgateway inside a real Workers runtime: a Worker bundled by esbuild as Wrangler does, run in
// workerd (Miniflare) with no compatibility flag, counts its requests and pushes its registry to
// a real prometheus-pushgateway from its fetch handler, over workerd's own fetch (the gateway's
// loopback address is reachable: Miniflare allows private addresses). The test reads the
// gateway back: the pushed counts, the grouping labels in the @base64 form, a gzip push through
// workerd's CompressionStream, the gateway's 400 surfacing as a PushgatewayError, and DELETE.

import assert from "node:assert/strict";
import type { Readable } from "node:stream";
import * as esbuild from "esbuild";
import { Miniflare } from "miniflare";
import { WORKER_BUILD } from "../_esbuild.ts";
import { test } from "../_harness.ts";
import { ROOT } from "../_root.ts";
import { ofGroup, type Sample, startPushgateway } from "../_pushgateway.ts";

const COMPATIBILITY_DATE = "2025-09-01";

const WORKER = `
import { Counter, Gauge, Registry } from "./mod.ts";
import { Pushgateway, PushgatewayError } from "./exposition/pushgateway.ts";

const registry = new Registry();
const runs = new Counter({ name: "pg_worker_runs", help: "Runs of the Worker", labelNames: ["route"], registry });

export default {
  async fetch(request, env) {
    const route = new URL(request.url).pathname.slice(1);
    const options = {
      url: env.GATEWAY,
      job: "pg_worker",
      grouping: { instance: "worker/1", colo: "" },
      registry,
      timeoutMs: 5000,
    };
    try {
      if (route === "delete") {
        await new Pushgateway(options).delete();
        return new Response("deleted");
      }
      if (route === "clash") {
        // A gauge under the name of the gateway's own summary: the gateway answers 400.
        const clash = new Registry();
        new Gauge({ name: "go_gc_duration_seconds", help: "Not a summary", registry: clash }).set(1);
        await new Pushgateway({ ...options, registry: clash, grouping: {} }).push();
        return new Response("pushed");
      }
      runs.labels({ route }).inc();
      await new Pushgateway({ ...options, gzip: route === "gzip" }).push();
      return new Response("pushed");
    } catch (error) {
      const status = error instanceof PushgatewayError ? error.status : "none";
      return new Response(error.name + " " + status + " " + error.message, { status: 500 });
    }
  },
};
`;

async function bundle(): Promise<string> {
  try {
    const result = await esbuild.build({
      ...WORKER_BUILD,
      stdin: { contents: WORKER, resolveDir: ROOT, loader: "js", sourcefile: "pushgateway_worker.js" },
    });
    return result.outputFiles[0].text;
  } finally {
    await esbuild.stop();
  }
}

function valueOf(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string>,
): number | undefined {
  return ofGroup(samples, labels).find((s) => s.name === name)?.value;
}

test(
  "a Worker in workerd pushes its registry to a real Pushgateway, plain and gzip, and deletes its group",
  async () => {
    const gateway = await startPushgateway();
    let output = "";
    let mf: Miniflare | undefined;
    try {
      const code = await bundle();
      assert.doesNotMatch(code, /from\s*["']node:/, "the Worker bundle imports a node: module");
      mf = new Miniflare({
        modules: [{ type: "ESModule", path: "worker.js", contents: code }],
        compatibilityDate: COMPATIBILITY_DATE,
        bindings: { GATEWAY: gateway.url },
        handleRuntimeStdio(stdout: Readable, stderr: Readable) {
          stdout.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
          stderr.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
        },
      });
      await mf.ready.catch((error) => {
        throw new Error(`${error}\n--- workerd output\n${output}`, { cause: error });
      });
      const call = async (path: string) => {
        const response = await mf!.dispatchFetch(`http://worker.test/${path}`);
        return `${response.status} ${await response.text()}`;
      };

      for (let i = 0; i < 3; i++) assert.equal(await call("plain"), "200 pushed", output);
      const group = { job: "pg_worker", instance: "worker/1", colo: "" };
      let samples = await gateway.samples();
      assert.equal(
        valueOf(samples, "pg_worker_runs_total", { ...group, route: "plain" }),
        3,
        await gateway.text(),
      );
      assert.deepEqual((await gateway.groups()).filter((g) => g.job === "pg_worker"), [group]);

      // gzip through workerd's CompressionStream; PUT replaces the group with both series.
      for (let i = 0; i < 2; i++) assert.equal(await call("gzip"), "200 pushed", output);
      samples = await gateway.samples();
      assert.equal(valueOf(samples, "pg_worker_runs_total", { ...group, route: "plain" }), 3);
      assert.equal(valueOf(samples, "pg_worker_runs_total", { ...group, route: "gzip" }), 2);

      // The gateway's 400 reaches the Worker as a PushgatewayError with the status and the reason.
      assert.match(
        await call("clash"),
        /^500 PushgatewayError 400 Cannot PUT http:\/\/127\.0\.0\.1:\d+\/metrics\/job\/pg_worker: the Pushgateway answered 400 .*inconsistent/,
      );

      assert.equal(await call("delete"), "200 deleted");
      // A DELETE is queued by the gateway (202): wait for it to be applied.
      for (let i = 0; i < 50 && ofGroup(samples, group).length > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        samples = await gateway.samples();
      }
      assert.deepEqual(ofGroup(samples, group), []);
      assert.doesNotMatch(output, /uncaught|unhandled|error|warn/i, output);
    } finally {
      await mf?.dispose();
      await gateway.stop();
    }
  },
  { timeout: 60_000 },
);

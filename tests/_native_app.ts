// An app process for tests/once/e2e_native_test.ts, on Deno, Bun or Node (built, from dist/):
// it observes known values into a native histogram, then serves metricsHandler() on
// node:http (nodeListener()) for Prometheus to scrape.
//
//   THEUS_BACKEND, THEUS_BACKEND_CONFIG        the backend, as in an application (memory if unset)
//   THEUS_NATIVE_SAMPLES                       the values: float64, little-endian
//   THEUS_NATIVE_PART, THEUS_NATIVE_PARTS      observe only this part of them (all if unset)
//
// It observes its values, flushes (so that on a shared backend what it wrote is there before it
// says it listens), listens on a free loopback port and prints one line
// `native app (<runtime>) listening on 127.0.0.1:<port>`. Every request is answered by the
// metrics handler, whatever its path. It runs until it is killed.

import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { flush, Histogram, loadBackend, metricsHandler, Registry } from "../mod.ts";
import { nodeListener } from "../adapters/node.ts";
import { partOf, readSamples } from "./_quantile_writer.ts";

/** The native histogram's name. */
export const NATIVE_APP_METRIC = "e2e_native_seconds";

// deno-lint-ignore no-explicit-any
const g = globalThis as any;
const RUNTIME: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

const fail = (what: string, error: unknown): never => {
  const text = error instanceof Error ? error.stack ?? error.message : String(error);
  process.stderr.write(`native app (${RUNTIME}): ${what}: ${text}\n`);
  process.exit(1);
};

async function main(path: string): Promise<void> {
  process.on("unhandledRejection", (reason) => fail("unhandled rejection", reason));
  await loadBackend();
  const registry = new Registry();
  const histogram = new Histogram({
    name: NATIVE_APP_METRIC,
    help: "Known values, in a native histogram",
    native: true,
    registry,
  });
  let values = readSamples(path);
  const part = process.env.THEUS_NATIVE_PART;
  if (part !== undefined && part !== "") {
    values = partOf(values, Number(part), Number(process.env.THEUS_NATIVE_PARTS));
  }
  for (const value of values) histogram.observe(value);
  await flush();
  const server = createServer(nodeListener(metricsHandler({ registry })));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`native app (${RUNTIME}) listening on 127.0.0.1:${port}\n`);
}

const path = process.env.THEUS_NATIVE_SAMPLES;
if (path !== undefined) await main(path).catch((error) => fail("cannot start", error));

// A real Prometheus (the Debian package) for end-to-end tests: it scrapes services every second,
// each through a recording proxy that shows what was asked and answered.

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Child,
  freePort,
  type RecordingProxy,
  recordingProxy,
  startProcess,
  waitUntil,
} from "./_servers.ts";

/** Where Debian installs Prometheus. */
export const PROMETHEUS = "/usr/bin/prometheus";

/** A service to scrape: its job and instance labels, and the port it listens on. */
export interface ScrapeTarget {
  readonly job: string;
  readonly instance: string;
  readonly port: number;
}

/** What the caller tracks, to stop it all for sure whatever happens. */
export interface PrometheusParts {
  /** Each proxy, pushed as it starts. */
  readonly proxies: RecordingProxy[];
  /** Called with the Prometheus process once it has started. */
  started(child: Child): void;
}

/**
 * Starts Prometheus in `dir`, scraping every target each second through a proxy of its own (in
 * the order of `targets`), and waits until it is ready and every target is up.
 *
 * @returns The base URL of its HTTP API.
 */
export async function startPrometheus(
  dir: string,
  targets: readonly ScrapeTarget[],
  parts: PrometheusParts,
  options: { args?: readonly string[]; timeoutMs?: number } = {},
): Promise<string> {
  const scrapeConfigs = [];
  for (const { job, instance, port } of targets) {
    const proxy = await recordingProxy(port);
    parts.proxies.push(proxy);
    scrapeConfigs.push({
      job_name: job,
      static_configs: [{ targets: [`127.0.0.1:${proxy.port}`], labels: { instance } }],
    });
  }
  const config = join(dir, "prometheus.yml"); // JSON is YAML
  writeFileSync(
    config,
    JSON.stringify({
      global: { scrape_interval: "1s", scrape_timeout: "1s", evaluation_interval: "1s" },
      scrape_configs: scrapeConfigs,
    }),
  );
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const child = await startProcess({
    name: "prometheus",
    command: PROMETHEUS,
    args: [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...(options.args ?? []),
    ],
    cwd: dir,
  });
  parts.started(child);
  const abort = () => child.closed() ? `prometheus exited:\n${child.output()}` : undefined;
  const timeoutMs = options.timeoutMs;
  await waitUntil("Prometheus to be ready", async () => {
    const res = await fetch(`${api}/-/ready`);
    await res.arrayBuffer();
    return res.ok || undefined;
  }, { abort, timeoutMs });
  await waitUntil("every target to be scraped and up", async () => {
    const res = await fetch(`${api}/api/v1/targets?state=active`);
    const body = await res.json() as {
      data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] };
    };
    const active = body.data.activeTargets;
    const down = active.filter((t) => t.health !== "up");
    if (active.length === targets.length && down.length === 0) return true;
    throw new Error(down.map((t) => `${t.labels.job} ${t.health} ${t.lastError}`).join("; ") || "no targets");
  }, { abort, timeoutMs });
  return api;
}

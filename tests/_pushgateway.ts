// A real Prometheus Pushgateway for tests (the Debian package prometheus-pushgateway): started on
// a free loopback port, kept in memory only, read back through its /metrics and its JSON API.
// A missing binary is an error, never a skip. Also: a loopback proxy that records the headers of
// what it forwards, and a server that accepts connections and never answers.

import { createServer as createHttpServer, request as httpRequest, type Server } from "node:http";
import { createServer, type Socket } from "node:net";
import { existsSync } from "node:fs";
import { type Child, freePort, startProcess, waitUntil } from "./_servers.ts";

/** The binary of the Debian package `prometheus-pushgateway`. */
export const PUSHGATEWAY = "/usr/bin/prometheus-pushgateway";

/** One sample of an exposition. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A running Pushgateway. */
export interface PushgatewayServer {
  readonly port: number;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The text of its /metrics. */
  text(): Promise<string>;
  /** Every sample of its /metrics. */
  samples(): Promise<Sample[]>;
  /** The `# TYPE` of every family of its /metrics. */
  types(): Promise<Map<string, string>>;
  /** The grouping key of every group it holds, from /api/v1/metrics (`job` included). */
  groups(): Promise<Record<string, string>[]>;
  /** What it printed. */
  output(): string;
  /** Stops it (SIGTERM); safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a Pushgateway on a free loopback port and waits until it is ready.
 *
 * @throws {Error} When the binary is missing or the gateway does not start.
 */
export async function startPushgateway(): Promise<PushgatewayServer> {
  if (!existsSync(PUSHGATEWAY)) {
    throw new Error(
      `${PUSHGATEWAY} is missing: install the Debian package "prometheus-pushgateway" ` +
        `(apt-get install prometheus-pushgateway; tests/run.mjs does it)`,
    );
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: Child = await startProcess({
    name: "prometheus-pushgateway",
    command: PUSHGATEWAY,
    // Debian's default persistence file is /var/lib/prometheus/pushgateway.data: an empty one
    // keeps this gateway in memory, apart from any other.
    args: [`--web.listen-address=127.0.0.1:${port}`, "--persistence.file=", "--log.level=info"],
  });
  try {
    await child.waitFor(/msg="Listening on"/, 20_000);
    await waitUntil("the Pushgateway to be ready", async () => {
      const response = await fetch(`${url}/-/ready`);
      await response.body?.cancel();
      return response.ok ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 50, abort: () => child.closed() ? child.output() : undefined });
  } catch (error) {
    await child.stop();
    throw error;
  }
  const text = async () => {
    const response = await fetch(`${url}/metrics`);
    const body = await response.text();
    if (!response.ok) throw new Error(`GET ${url}/metrics: ${response.status} ${body}`);
    return body;
  };
  return {
    port,
    url,
    text,
    samples: async () => parseSamples(await text()),
    types: async () => parseTypes(await text()),
    async groups() {
      const response = await fetch(`${url}/api/v1/metrics`);
      const body = await response.json() as { status: string; data: { labels: Record<string, string> }[] };
      if (body.status !== "success") throw new Error(`GET ${url}/api/v1/metrics: ${JSON.stringify(body)}`);
      return body.data.map((group) => group.labels);
    },
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

/** The samples of a text exposition (0.0.4), label values unescaped. */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
    if (name === undefined) throw new Error(`Not a sample line: ${line}`);
    let at = name.length;
    const labels: Record<string, string> = {};
    if (line[at] === "{") {
      at++;
      while (line[at] !== "}") {
        const label = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(at));
        if (label === null) throw new Error(`Bad label at ${at} in: ${line}`);
        at += label[0].length;
        let value = "";
        for (; line[at] !== '"'; at++) {
          if (at >= line.length) throw new Error(`Unterminated label value in: ${line}`);
          if (line[at] === "\\") {
            at++;
            value += line[at] === "n" ? "\n" : line[at];
          } else {
            value += line[at];
          }
        }
        labels[label[1]] = value;
        at++;
        if (line[at] === ",") at++;
      }
      at++;
    }
    const [value] = line.slice(at).trim().split(" ");
    samples.push({ name, labels, value: parseValue(value) });
  }
  return samples;
}

/** A sample value: Go writes `+Inf`, `-Inf` and `NaN`, which `Number()` does not read. */
export function parseValue(text: string): number {
  if (text === "+Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return NaN;
  const value = Number(text);
  if (text === "" || Number.isNaN(value)) throw new Error(`Not a sample value: ${JSON.stringify(text)}`);
  return value;
}

/** The `# TYPE` lines of a text exposition, by family name. */
export function parseTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1], match[2]);
  return types;
}

/** The samples of one group: those whose labels include every one of `group`. */
export function ofGroup(samples: readonly Sample[], group: Record<string, string>): Sample[] {
  return samples.filter((sample) =>
    Object.entries(group).every(([name, value]) => sample.labels[name] === value)
  );
}

/** A loopback proxy that forwards to one upstream and records the headers of every request. */
export interface HeaderRecorder {
  readonly url: string;
  readonly requests: readonly { method: string; path: string; headers: Record<string, string> }[];
  close(): Promise<void>;
}

/** Starts a {@linkcode HeaderRecorder} in front of `upstream` (a port on 127.0.0.1). */
export function headerRecorder(upstream: number): Promise<HeaderRecorder> {
  const requests: { method: string; path: string; headers: Record<string, string> }[] = [];
  const server: Server = createHttpServer((req, res) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(", ") : value;
    }
    requests.push({ method: req.method ?? "", path: req.url ?? "", headers });
    const forward = httpRequest(
      { host: "127.0.0.1", port: upstream, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", (error) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end(`Proxy error: ${error.message}\n`);
    });
    req.pipe(forward);
  });
  return listen(server, (port) => ({
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  }));
}

/** A server that accepts connections, reads what comes and never answers. */
export interface SilentServer {
  readonly url: string;
  /** How many connections it accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** Starts a {@linkcode SilentServer} on a free loopback port. */
export function silentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server = createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("data", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      resolve({
        url: `http://127.0.0.1:${port}`,
        connections: () => accepted,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

function listen<T>(server: Server, make: (port: number) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(make(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

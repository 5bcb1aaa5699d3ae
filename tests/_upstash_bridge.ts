// A small server that speaks the Upstash REST protocol, as @upstash/redis 1.39 uses it, over a
// real redis-server: POST / (one command), /pipeline and /multi-exec, bearer auth, base64
// replies. It counts requests and can be told to fail some: 500s, slow answers, and
// connections dropped after the command ran (the ambiguous case).

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Buffer } from "node:buffer";
import Redis from "ioredis";

/** How the next requests fail. */
export type FailureMode = "500" | "drop" | "slow";

/** A running bridge. */
export interface UpstashBridge {
  /** The REST URL, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The token clients must send. */
  readonly token: string;
  /**
   * Requests received, by path, commands executed (EVALSHA and EVAL counted by name), and the
   * largest request body in bytes.
   */
  readonly counts: {
    requests: number;
    byPath: Record<string, number>;
    commands: Record<string, number>;
    largestBody: number;
  };
  /** Resets the counts. */
  resetCounts(): void;
  /** Makes the next `count` requests fail; `slow` delays the answer by `delayMs` (default 3000). */
  fail(mode: FailureMode, count: number, delayMs?: number): void;
  /** Stops the server and closes its Redis connection. */
  close(): Promise<void>;
}

type Reply = Buffer | number | null | Reply[] | Error;

function encode(reply: Reply, base64: boolean, top: boolean): unknown {
  if (reply === null || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map((r) => encode(r, base64, false));
  if (reply instanceof Error) return { error: reply.message };
  const text = reply.toString("utf8");
  if (!base64 || (top && text === "OK")) return text;
  return reply.toString("base64");
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => resolve(body));
    req.on("error", reject);
  });
}

/** Starts a bridge in front of the redis-server on `redisPort`. */
export async function startUpstashBridge(
  options: { redisPort: number; token?: string; maxRequestBytes?: number },
): Promise<UpstashBridge> {
  const token = options.token ?? `test-token-${Math.random().toString(36).slice(2)}`;
  // deno-lint-ignore no-explicit-any
  const RedisClient = Redis as any;
  const redis = new RedisClient({ port: options.redisPort, host: "127.0.0.1", lazyConnect: false });
  redis.on("error", () => {});
  const counts = {
    requests: 0,
    byPath: {} as Record<string, number>,
    commands: {} as Record<string, number>,
    largestBody: 0,
  };
  const failures: { mode: FailureMode; delayMs: number }[] = [];

  const call = async (command: unknown[]): Promise<Reply> => {
    const [name, ...args] = command.map((part) => typeof part === "string" ? part : JSON.stringify(part));
    const upper = String(name).toUpperCase();
    counts.commands[upper] = (counts.commands[upper] ?? 0) + 1;
    try {
      return await redis.callBuffer(upper, ...args);
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    counts.requests++;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    counts.byPath[path] = (counts.byPath[path] ?? 0) + 1;
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "POST") return send(405, { error: "ERR only POST is supported" });
    if (req.headers.authorization !== `Bearer ${token}`) return send(401, { error: "Unauthorized" });
    const failure = failures.shift();
    if (failure?.mode === "500") return send(500, { error: "ERR injected failure" });
    let body: unknown;
    try {
      const text = await readBody(req);
      const bytes = new TextEncoder().encode(text).length;
      counts.largestBody = Math.max(counts.largestBody, bytes);
      // As Upstash refuses a request over its plan's limit, before running anything.
      if (bytes > (options.maxRequestBytes ?? Infinity)) {
        return send(400, { error: `ERR max request size exceeded: ${bytes} bytes` });
      }
      body = JSON.parse(text);
    } catch {
      return send(400, { error: "ERR failed to parse the request body" });
    }
    const base64 = String(req.headers["upstash-encoding"] ?? "").toLowerCase() === "base64";
    let status = 200;
    let answer: unknown;
    if (path === "/" || path === "") {
      const reply = await call(body as unknown[]);
      if (reply instanceof Error) [status, answer] = [400, { error: reply.message }];
      else answer = { result: encode(reply, base64, true) };
    } else if (path === "/pipeline") {
      const replies = [];
      for (const command of body as unknown[][]) {
        const reply = await call(command);
        replies.push(
          reply instanceof Error ? { error: reply.message } : { result: encode(reply, base64, true) },
        );
      }
      answer = replies;
    } else if (path === "/multi-exec") {
      const multi = redis.multi();
      for (const command of body as unknown[][]) {
        const [name, ...args] = command.map((part) => typeof part === "string" ? part : JSON.stringify(part));
        counts.commands[String(name).toUpperCase()] = (counts.commands[String(name).toUpperCase()] ?? 0) + 1;
        multi.callBuffer(String(name), ...args);
      }
      try {
        const results = (await multi.exec()) as [Error | null, Reply][];
        answer = results.map(([error, reply]) =>
          error ? { error: error.message } : { result: encode(reply, base64, true) }
        );
      } catch (error) {
        [status, answer] = [400, { error: error instanceof Error ? error.message : String(error) }];
      }
    } else {
      return send(404, { error: `ERR unknown path ${path}` });
    }
    // The command has run: a dropped connection now is an ambiguous failure for the client.
    if (failure?.mode === "drop") return void req.socket.destroy();
    if (failure?.mode === "slow") await new Promise((r) => setTimeout(r, failure.delayMs));
    send(status, answer);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(error) }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    token,
    counts,
    resetCounts() {
      counts.requests = 0;
      counts.byPath = {};
      counts.commands = {};
      counts.largestBody = 0;
    },
    fail(mode, count, delayMs = 3000) {
      for (let i = 0; i < count; i++) failures.push({ mode, delayMs });
    },
    async close() {
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}

// nodeListener(): fetch handlers served from node:http and Express, against real servers on
// loopback. Most requests are written by hand on a TCP socket, so that what goes over the wire
// (repeated headers, a HEAD without body, gzip bytes, a missing last chunk) is seen as it is.

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, connect, type Socket } from "node:net";
import process from "node:process";
import { gunzipSync } from "node:zlib";
import express from "express";
import { Counter, generateLatest, Histogram, metricsHandler, Registry } from "../mod.ts";
import { nodeListener } from "../adapters/node.ts";
import { test } from "./_harness.ts";
import { sleep, within } from "./_servers.ts";

const OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT = "text/plain; version=0.0.4; charset=utf-8";

// --- helpers ------------------------------------------------------------------------------

function smallRegistry(): Registry {
  const registry = new Registry();
  new Counter({ name: "requests_total", help: "Requests served", labelNames: ["code"], registry })
    .labels({ code: "200" })
    .inc(7);
  new Histogram({ name: "latency_seconds", help: "Latency", buckets: [0.1, 1], registry }).observe(0.5);
  return registry;
}

type Listener = (req: IncomingMessage, res: ServerResponse) => void;

/** Runs `fn` with a server on a free loopback port, and closes the server for sure. */
async function withServer(listener: Listener, fn: (port: number) => Promise<void>): Promise<void> {
  const server = createServer(listener);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  try {
    await fn(port);
  } finally {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.();
    await within(closed, 5_000, "the server to close");
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  settled(): boolean;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let settled = false;
  const promise = new Promise<T>((r) => (resolve = r));
  return {
    promise,
    resolve: (value) => {
      settled = true;
      resolve(value);
    },
    settled: () => settled,
  };
}

/** Collects the unhandled rejections of the process until `stop()`. */
function watchRejections(): { rejections: unknown[]; stop(): void } {
  const rejections: unknown[] = [];
  const listener = (reason: unknown): void => void rejections.push(reason);
  process.on("unhandledRejection", listener);
  return { rejections, stop: () => void process.off("unhandledRejection", listener) };
}

/** An HTTP/1.1 response as read from the socket. */
interface RawResponse {
  status: number;
  reason: string;
  /** Names lowercased, in the order received, repeated ones repeated. */
  headers: [string, string][];
  body: Buffer;
  /** Whether the body was complete: its length reached, or the last chunk seen. */
  complete: boolean;
  /** Where the response ends in what was received (the next one starts there). */
  length: number;
}

function header(response: RawResponse, name: string): string | undefined {
  return response.headers.find(([n]) => n === name)?.[1];
}

/** Parses what a server sent; `head` when it answers a HEAD request (no body expected). */
function parseResponse(data: Buffer, head = false): RawResponse {
  const end = data.indexOf("\r\n\r\n");
  assert.ok(end >= 0, `no complete head in ${JSON.stringify(data.toString("latin1"))}`);
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const match = /^HTTP\/1\.1 (\d{3}) ?(.*)$/.exec(statusLine);
  assert.ok(match, `bad status line ${JSON.stringify(statusLine)}`);
  const headers = lines.map((line): [string, string] => {
    const colon = line.indexOf(":");
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()];
  });
  const status = Number(match[1]);
  const rest = data.subarray(end + 4);
  const response: RawResponse = {
    status,
    reason: match[2],
    headers,
    body: rest,
    complete: true,
    length: data.length,
  };
  if (head || status === 204 || status === 304) {
    response.length = end + 4;
    return response;
  }
  const length = headers.find(([n]) => n === "content-length");
  if (headers.some(([n, v]) => n === "transfer-encoding" && /chunked/i.test(v))) {
    const parts: Buffer[] = [];
    let at = 0;
    response.complete = false;
    for (;;) {
      const eol = rest.indexOf("\r\n", at);
      if (eol < 0) break;
      const size = parseInt(rest.subarray(at, eol).toString("latin1"), 16);
      if (size === 0) {
        const last = rest.indexOf("\r\n", eol + 2);
        response.complete = last >= 0;
        if (response.complete) response.length = end + 4 + last + 2;
        break;
      }
      if (rest.length < eol + 2 + size) {
        parts.push(rest.subarray(eol + 2));
        break;
      }
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    response.body = Buffer.concat(parts);
  } else if (length !== undefined) {
    response.body = rest.subarray(0, Number(length[1]));
    response.complete = rest.length >= Number(length[1]);
    response.length = end + 4 + response.body.length;
  }
  return response;
}

/** A hand-written HTTP/1.1 client on a plain TCP socket. */
class RawClient {
  readonly socket: Socket;
  readonly closed: Promise<void>;
  #parts: Buffer[] = [];
  #joined: Buffer | undefined = Buffer.alloc(0);
  #changed: () => void = () => {};

  private constructor(socket: Socket) {
    this.socket = socket;
    const closed = deferred();
    this.closed = closed.promise;
    socket.on("data", (chunk: Buffer) => {
      this.#parts.push(chunk);
      this.#joined = undefined;
      this.#changed();
    });
    socket.on("error", () => {}); // A reset shows as the close that follows.
    socket.on("close", () => {
      closed.resolve();
      this.#changed();
    });
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("error", reject);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawClient(socket));
      });
    });
  }

  /** What the server has sent so far. */
  get data(): Buffer {
    this.#joined ??= Buffer.concat(this.#parts);
    return this.#joined;
  }

  write(data: string | Uint8Array): void {
    this.socket.write(data);
  }

  /** Resolves once what was received satisfies `predicate`; rejects after `ms`. */
  async waitFor(predicate: (data: Buffer) => boolean, ms: number, what: string): Promise<void> {
    let closed = false;
    void this.closed.then(() => (closed = true));
    while (!predicate(this.data)) {
      if (closed) throw new Error(`The connection closed before ${what}`);
      await within(new Promise<void>((resolve) => (this.#changed = resolve)), ms, what);
    }
  }

  /** Waits for the server to close the connection, then parses the response. */
  async response(head = false): Promise<RawResponse> {
    await within(this.closed, 10_000, "the server to close the connection");
    return parseResponse(this.data, head);
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Sends one request with `Connection: close` and returns the response. */
async function exchange(
  port: number,
  method: string,
  path: string,
  headers: [string, string][] = [],
  body?: string,
  host = `127.0.0.1:${port}`,
): Promise<RawResponse> {
  const client = await RawClient.connect(port);
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${host}`, "Connection: close"];
  for (const [name, value] of headers) lines.push(`${name}: ${value}`);
  if (body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(body)}`);
  client.write(`${lines.join("\r\n")}\r\n\r\n${body ?? ""}`);
  try {
    return await client.response(method === "HEAD");
  } finally {
    client.destroy();
  }
}

const encoder = new TextEncoder();

// --- metricsHandler() on node:http ----------------------------------------------------------

test("nodeListener() serves the exposition of metricsHandler() to GET on node:http", async () => {
  const registry = smallRegistry();
  await withServer(nodeListener(metricsHandler({ registry })), async (port) => {
    const response = await exchange(port, "GET", "/metrics");
    assert.equal(response.status, 200);
    assert.equal(header(response, "content-type"), TEXT);
    assert.equal(header(response, "content-encoding"), undefined);
    assert.equal(header(response, "vary"), "Accept, Accept-Encoding");
    assert.ok(response.complete);
    assert.equal(response.body.toString("utf8"), await generateLatest(registry));
  });
});

test("nodeListener() passes HEAD through without a body", async () => {
  const registry = smallRegistry();
  await withServer(nodeListener(metricsHandler({ registry })), async (port) => {
    const get = await exchange(port, "GET", "/metrics", [["Accept-Encoding", "gzip"]]);
    const head = await exchange(port, "HEAD", "/metrics", [["Accept-Encoding", "gzip"]]);
    assert.equal(head.status, 200);
    for (const name of ["content-type", "content-encoding", "vary"]) {
      assert.equal(header(head, name), header(get, name), name);
    }
    assert.equal(header(head, "content-encoding"), "gzip");
    // The server closed the connection after the head: nothing else may have come.
    assert.equal(head.body.length, 0);
  });
  // A handler that answers HEAD with a body anyway: the body is cancelled, never read.
  let pulls = 0;
  const cancelled = deferred();
  const careless = (): Response =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulls++;
          controller.enqueue(encoder.encode("a body\n"));
          if (pulls === 3) controller.close();
        },
        cancel: () => cancelled.resolve(),
      }, { highWaterMark: 0 }),
      { headers: { "content-type": "text/plain", "x-kind": "careless" } },
    );
  await withServer(nodeListener(careless), async (port) => {
    const head = await exchange(port, "HEAD", "/");
    assert.equal(head.status, 200);
    assert.equal(header(head, "x-kind"), "careless");
    assert.equal(head.body.length, 0);
    await within(cancelled.promise, 5_000, "the body of the HEAD response to be cancelled");
    assert.equal(pulls, 0);
  });
});

test("nodeListener() serves OpenMetrics when Accept asks for it", async () => {
  const registry = smallRegistry();
  await withServer(nodeListener(metricsHandler({ registry })), async (port) => {
    const response = await exchange(port, "GET", "/metrics", [
      ["Accept", "application/openmetrics-text;version=1.0.0"],
    ]);
    assert.equal(response.status, 200);
    assert.equal(header(response, "content-type"), OPENMETRICS);
    const body = response.body.toString("utf8");
    assert.equal(body, await generateLatest(registry, { format: "openmetrics" }));
    assert.ok(body.endsWith("# EOF\n"));
  });
});

test("nodeListener() passes a gzipped body through byte for byte", async () => {
  const registry = smallRegistry();
  const handler = metricsHandler({ registry });
  await withServer(nodeListener(handler), async (port) => {
    const response = await exchange(port, "GET", "/metrics", [["Accept-Encoding", "gzip"]]);
    assert.equal(response.status, 200);
    assert.equal(header(response, "content-encoding"), "gzip");
    assert.deepEqual([...response.body.subarray(0, 2)], [0x1f, 0x8b]);
    assert.equal(gunzipSync(response.body).toString("utf8"), await generateLatest(registry));
    // The very bytes the handler produces: neither decoded nor compressed again.
    const direct = await handler(
      new Request("http://localhost/metrics", { headers: { "accept-encoding": "gzip" } }),
    );
    assert.deepEqual(new Uint8Array(response.body), new Uint8Array(await direct.arrayBuffer()));
  });
});

test("nodeListener() passes the 405 of metricsHandler() for POST through, with Allow", async () => {
  await withServer(nodeListener(metricsHandler({ registry: smallRegistry() })), async (port) => {
    const response = await exchange(port, "POST", "/metrics", [], "ignored");
    assert.equal(response.status, 405);
    assert.equal(header(response, "allow"), "GET, HEAD");
    assert.equal(header(response, "content-type"), "text/plain; charset=utf-8");
    assert.equal(response.body.toString("utf8"), "Method POST not allowed: use GET or HEAD\n");
  });
});

// --- requests and responses -----------------------------------------------------------------

test("nodeListener() hands the handler the method, full URL, repeated headers and a streamed body", async () => {
  const firstChunk = deferred<string>();
  const handler = async (request: Request): Promise<Response> => {
    const reader = request.body!.getReader();
    const decoder = new TextDecoder();
    const chunks: string[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const text = decoder.decode(value, { stream: true });
      chunks.push(text);
      if (!firstChunk.settled()) firstChunk.resolve(text);
    }
    return Response.json({
      method: request.method,
      url: request.url,
      multi: request.headers.get("x-multi"),
      agent: request.headers.get("user-agent"),
      type: request.headers.get("content-type"),
      body: chunks.join(""),
      aborted: request.signal.aborted,
    });
  };
  await withServer(nodeListener(handler), async (port) => {
    const client = await RawClient.connect(port);
    try {
      client.write(
        [
          "POST /echo/a%20b?x=1&y=two HTTP/1.1",
          `Host: 127.0.0.1:${port}`,
          "Connection: close",
          "X-Multi: one",
          "Content-Type: text/plain",
          "X-Multi: two",
          "User-Agent: first",
          "User-Agent: second",
          "Transfer-Encoding: chunked",
          "",
          "6",
          "hello ",
          "",
        ].join("\r\n"),
      );
      // The handler reads the first chunk while the client still holds back the rest.
      assert.equal(await within(firstChunk.promise, 5_000, "the first chunk of the body"), "hello ");
      client.write("6\r\nworld!\r\n0\r\n\r\n");
      const response = await client.response();
      assert.equal(response.status, 200);
      assert.deepEqual(JSON.parse(response.body.toString("utf8")), {
        method: "POST",
        url: `http://127.0.0.1:${port}/echo/a%20b?x=1&y=two`,
        multi: "one, two",
        agent: "first, second",
        type: "text/plain",
        body: "hello world!",
        aborted: false,
      });
    } finally {
      client.destroy();
    }
  });
});

test("nodeListener() sends the status, headers and each set-cookie of the Response on its own line", async () => {
  const handler = (): Response => {
    const headers = new Headers({ "content-type": "application/json", "x-custom": "yes" });
    headers.append("set-cookie", "a=1; Path=/");
    headers.append("set-cookie", "b=2; HttpOnly");
    return new Response('{"ok":true}', { status: 201, headers });
  };
  await withServer(nodeListener(handler), async (port) => {
    const response = await exchange(port, "PUT", "/things/1", [], "{}");
    assert.equal(response.status, 201);
    assert.equal(header(response, "content-type"), "application/json");
    assert.equal(header(response, "x-custom"), "yes");
    assert.deepEqual(
      response.headers.filter(([name]) => name === "set-cookie").map(([, value]) => value),
      ["a=1; Path=/", "b=2; HttpOnly"],
    );
    assert.equal(response.body.toString("utf8"), '{"ok":true}');
  });
});

test("nodeListener() builds the URL from Host, keeps //x a path, and takes an absolute target as is", async () => {
  const handler = (request: Request): Response => new Response(request.url);
  await withServer(nodeListener(handler), async (port) => {
    const url = async (target: string, host = `127.0.0.1:${port}`): Promise<string> => {
      const client = await RawClient.connect(port);
      try {
        client.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
        const response = await client.response();
        assert.equal(response.status, 200, target);
        return response.body.toString("utf8");
      } finally {
        client.destroy();
      }
    };
    assert.equal(await url("/a/b?c=d"), `http://127.0.0.1:${port}/a/b?c=d`);
    assert.equal(await url("//other.example/x"), `http://127.0.0.1:${port}//other.example/x`);
    assert.equal(await url("/x", "metrics.example:9090"), "http://metrics.example:9090/x");
    assert.equal(await url("http://other.example/y?z"), "http://other.example/y?z");
  });
});

test("nodeListener() answers 400 to a Host that makes no URL, without calling the handler", async () => {
  let calls = 0;
  const handler = (): Response => {
    calls++;
    return new Response("called");
  };
  await withServer(nodeListener(handler), async (port) => {
    for (const host of ["user@evil.example", "a/b"]) {
      const response = await exchange(port, "GET", "/", [], undefined, host);
      assert.equal(response.status, 400, host);
      assert.equal(response.body.toString("utf8"), "Bad Request: invalid Host header\n", host);
    }
  });
  assert.equal(calls, 0);
});

test("nodeListener() takes https from a TLS socket, and works with any object of the same shape", async () => {
  // No certificate here: a request and response of the documented shape stand in for them.
  const req = Object.assign(new EventEmitter(), {
    method: "GET",
    url: "/secure?q=1",
    rawHeaders: ["Host", "example.com", "X-Two", "a", "x-two", "b"],
    socket: { encrypted: true },
    pause: () => {},
    resume: () => {},
  });
  const written: string[] = [];
  const done = deferred();
  const head: { status?: number; headers: Record<string, string | string[]> } = { headers: {} };
  const res = Object.assign(new EventEmitter(), {
    headersSent: false,
    setHeader: (name: string, value: string | string[]) => void (head.headers[name] = value),
    removeHeader: (name: string) => void delete head.headers[name],
    writeHead(status: number) {
      head.status = status;
      this.headersSent = true;
    },
    write(chunk: Uint8Array): boolean {
      written.push(new TextDecoder().decode(chunk));
      return true;
    },
    end: () => done.resolve(),
    destroy: () => {},
  });
  const handler = (request: Request): Response =>
    new Response(`${request.url} ${request.headers.get("x-two")}`, { headers: { "x-seen": "1" } });
  nodeListener(handler)(req, res);
  await within(done.promise, 5_000, "the response to end");
  assert.equal(head.status, 200);
  assert.equal(head.headers["x-seen"], "1");
  assert.equal(written.join(""), "https://example.com/secure?q=1 a, b");
});

test("nodeListener() keeps a keep-alive connection usable when the handler leaves the body unread", async () => {
  const registry = smallRegistry();
  const metrics = metricsHandler({ registry });
  const handler = async (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname !== "/partial") return metrics(request);
    // Reads one chunk, then gives up on the rest.
    const reader = request.body!.getReader();
    const { value } = await reader.read();
    await reader.cancel();
    return new Response(`read ${value?.length ?? 0} bytes\n`);
  };
  await withServer(nodeListener(handler), async (port) => {
    const client = await RawClient.connect(port);
    try {
      const big = "x".repeat(1024 * 1024);
      const requests = [
        `POST /metrics HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
        `POST /partial HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: ${big.length}\r\n\r\n${big}`,
        `GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`,
      ];
      const statuses: number[] = [];
      let at = 0;
      let last: RawResponse | undefined;
      for (const request of requests) {
        client.write(request);
        await client.waitFor(
          (data) => data.includes("\r\n\r\n", at) && parseResponse(data.subarray(at)).complete,
          5_000,
          `the response to request ${statuses.length + 1} on the same connection`,
        );
        last = parseResponse(client.data.subarray(at));
        statuses.push(last.status);
        at += last.length;
      }
      assert.deepEqual(statuses, [405, 200, 200]);
      assert.equal(last?.body.toString("utf8"), await generateLatest(registry));
    } finally {
      client.destroy();
    }
  });
});

// --- streaming, backpressure, abort ---------------------------------------------------------

test("nodeListener() streams the response body chunk by chunk", async () => {
  const firstReceived = deferred();
  let lastProduced = false;
  const handler = (): Response => {
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        step++;
        if (step === 1) return controller.enqueue(encoder.encode("first\n"));
        if (step === 2) {
          // A pause: until the client has the first chunk, or 3 s when it never comes.
          await Promise.race([firstReceived.promise, sleep(3_000)]);
          return controller.enqueue(encoder.encode("second\n"));
        }
        await sleep(20);
        lastProduced = true;
        controller.enqueue(encoder.encode("last\n"));
        controller.close();
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  };
  await withServer(nodeListener(handler), async (port) => {
    const response = await fetch(`http://127.0.0.1:${port}/stream`);
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    let lastProducedAtFirst: boolean | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
      if (lastProducedAtFirst === undefined && text.includes("first\n")) {
        lastProducedAtFirst = lastProduced;
        firstReceived.resolve();
      }
    }
    assert.equal(lastProducedAtFirst, false, "the first chunk arrived only once the last was produced");
    assert.equal(text, "first\nsecond\nlast\n");
  });
});

test("nodeListener() waits for drain when the client reads slowly", async () => {
  const CHUNK = 256 * 1024;
  const COUNT = 128; // 32 MiB: more than socket buffers hold
  const chunk = new Uint8Array(CHUNK).map((_, i) => i % 251);
  let pulled = 0;
  const handler = (): Response =>
    new Response(
      new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(chunk.slice());
          if (pulled === COUNT) controller.close();
        },
      }),
    );
  await withServer(nodeListener(handler), async (port) => {
    const client = await RawClient.connect(port);
    try {
      client.socket.pause();
      client.write(`GET /big HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
      await sleep(500);
      const whilePaused = pulled;
      assert.ok(whilePaused >= 1, "the handler's body was never read");
      assert.ok(
        whilePaused < COUNT / 2,
        `${whilePaused} of ${COUNT} chunks produced for a client that reads nothing`,
      );
      client.socket.resume();
      const response = await client.response();
      assert.equal(response.status, 200);
      assert.ok(response.complete);
      assert.equal(response.body.length, CHUNK * COUNT);
      const expected = Buffer.from(chunk);
      for (let at = 0; at < response.body.length; at += CHUNK) {
        assert.ok(response.body.subarray(at, at + CHUNK).equals(expected), `chunk at ${at}`);
      }
    } finally {
      client.destroy();
    }
  });
});

test("nodeListener() aborts request.signal and cancels the response body when the client leaves", async () => {
  const watch = watchRejections();
  const cancelled = deferred<unknown>();
  const aborted = deferred();
  const errors: unknown[] = [];
  let signal: AbortSignal | undefined;
  let pulls = 0;
  const handler = (request: Request): Response => {
    signal = request.signal;
    request.signal.addEventListener("abort", () => aborted.resolve());
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await sleep(5);
        pulls++;
        if (!cancelled.settled()) controller.enqueue(encoder.encode(`tick ${pulls}\n`));
      },
      cancel(reason) {
        cancelled.resolve(reason);
      },
    }, { highWaterMark: 0 });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  };
  try {
    await withServer(nodeListener(handler, { onError: (error) => errors.push(error) }), async (port) => {
      const client = await RawClient.connect(port);
      client.write(`GET /forever HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      await client.waitFor((data) => data.includes("tick 1\n"), 5_000, "the first chunk");
      client.destroy();
      const reason = await within(cancelled.promise, 5_000, "the response body to be cancelled");
      await within(aborted.promise, 5_000, "request.signal to abort");
      assert.equal(signal?.aborted, true);
      assert.equal((reason as Error).name, "AbortError");
      const afterCancel = pulls;
      await sleep(100);
      assert.ok(
        pulls <= afterCancel + 1,
        `the stream kept producing: ${pulls} pulls, ${afterCancel} at cancel`,
      );
    });
    await sleep(50);
    assert.deepEqual(errors, []);
    assert.deepEqual(watch.rejections, []);
  } finally {
    watch.stop();
  }
});

test("nodeListener() aborts request.signal when the client leaves before the handler answers", async () => {
  const watch = watchRejections();
  const started = deferred();
  const cancelled = deferred();
  const errors: unknown[] = [];
  let abortedInHandler: boolean | undefined;
  const handler = async (request: Request): Promise<Response> => {
    started.resolve();
    await Promise.race([
      new Promise((resolve) => request.signal.addEventListener("abort", resolve)),
      sleep(5_000),
    ]);
    abortedInHandler = request.signal.aborted;
    const body = new ReadableStream<Uint8Array>({
      pull: (controller) => controller.enqueue(encoder.encode("late\n")),
      cancel: () => cancelled.resolve(),
    });
    return new Response(body);
  };
  try {
    await withServer(nodeListener(handler, { onError: (error) => errors.push(error) }), async (port) => {
      const client = await RawClient.connect(port);
      client.write(`GET /slow HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      await within(started.promise, 5_000, "the handler to start");
      client.destroy();
      await within(cancelled.promise, 8_000, "the late response body to be cancelled");
      assert.equal(abortedInHandler, true);
    });
    await sleep(50);
    assert.deepEqual(errors, []);
    assert.deepEqual(watch.rejections, []);
  } finally {
    watch.stop();
  }
});

// --- errors ---------------------------------------------------------------------------------

test("nodeListener() answers 500 when the handler throws or rejects, and gives onError the error", async () => {
  const watch = watchRejections();
  const thrown = new Error("thrown by the handler");
  const rejected = new Error("rejected by the handler");
  const errors: unknown[] = [];
  const handler = (request: Request): Promise<Response> => {
    if (new URL(request.url).pathname === "/throw") throw thrown;
    return Promise.reject(rejected);
  };
  try {
    await withServer(nodeListener(handler, { onError: (error) => errors.push(error) }), async (port) => {
      for (const path of ["/throw", "/reject"]) {
        const response = await exchange(port, "GET", path);
        assert.equal(response.status, 500, path);
        assert.equal(header(response, "content-type"), "text/plain; charset=utf-8");
        assert.equal(response.body.toString("utf8"), "Internal Server Error\n");
      }
    });
    assert.deepEqual(errors, [thrown, rejected]);
    // Without onError, and with an onError that throws, the answer is the same.
    const quiet = nodeListener(handler);
    const faulty = nodeListener(handler, {
      onError: () => {
        throw new Error("onError fails too");
      },
    });
    await withServer((req, res) => (req.url === "/throw" ? quiet : faulty)(req, res), async (port) => {
      assert.equal((await exchange(port, "GET", "/throw")).status, 500);
      assert.equal((await exchange(port, "GET", "/reject")).status, 500);
    });
    await sleep(50);
    assert.deepEqual(watch.rejections, []);
  } finally {
    watch.stop();
  }
});

test("nodeListener() destroys the connection when the body fails after the headers were sent", async () => {
  const watch = watchRejections();
  const failure = new Error("the body failed");
  const fail = deferred();
  const errors: unknown[] = [];
  const handler = (): Response => {
    let step = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (step++ === 0) return controller.enqueue(encoder.encode("partial\n"));
        await fail.promise;
        throw failure;
      },
    });
    return new Response(body, { headers: { "content-type": "text/plain" } });
  };
  try {
    await withServer(nodeListener(handler, { onError: (error) => errors.push(error) }), async (port) => {
      const client = await RawClient.connect(port);
      try {
        client.write(`GET /fails HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
        await client.waitFor((data) => data.includes("partial\n"), 5_000, "the first chunk");
        fail.resolve();
        // Keep-alive was asked for: only a destroyed connection closes now.
        const response = await client.response();
        assert.equal(response.status, 200);
        assert.equal(response.complete, false, "the response looks complete");
        assert.equal(response.body.toString("utf8"), "partial\n");
      } finally {
        client.destroy();
      }
    });
    await sleep(50);
    assert.deepEqual(errors, [failure]);
    assert.deepEqual(watch.rejections, []);
  } finally {
    watch.stop();
  }
});

// --- Express ----------------------------------------------------------------------------------

test("nodeListener() under Express: /metrics, and the original URL and body in a mounted router", async () => {
  const registry = smallRegistry();
  const echo = async (request: Request): Promise<Response> =>
    Response.json({ method: request.method, url: request.url, body: await request.text() });
  const app = express();
  app.get("/metrics", nodeListener(metricsHandler({ registry })));
  const router = express.Router();
  router.post("/echo", nodeListener(echo));
  // A body parser has read the body already: the handler gets it empty, and does not wait.
  router.post("/parsed", express.text(), nodeListener(echo));
  app.use("/api", router);
  await withServer(app, async (port) => {
    const base = `http://127.0.0.1:${port}`;
    const metrics = await fetch(`${base}/metrics`, { headers: { "accept-encoding": "identity" } });
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers.get("content-type"), TEXT);
    assert.equal(await metrics.text(), await generateLatest(registry));

    const posted = await fetch(`${base}/api/echo?x=1`, { method: "POST", body: "the body" });
    assert.equal(posted.status, 200);
    assert.deepEqual(await posted.json(), {
      method: "POST",
      url: `${base}/api/echo?x=1`,
      body: "the body",
    });

    const parsed = await within(
      fetch(`${base}/api/parsed`, {
        method: "POST",
        body: "read",
        headers: { "content-type": "text/plain" },
      }),
      5_000,
      "a body read by a parser",
    );
    assert.deepEqual(await parsed.json(), { method: "POST", url: `${base}/api/parsed`, body: "" });
  });
});

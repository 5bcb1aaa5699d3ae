/**
 * `Pushgateway`: pushes a registry to a Prometheus Pushgateway, for batch jobs, cron jobs and
 * serverless functions that end before anything could scrape them. It speaks the Pushgateway's
 * HTTP API over `fetch` alone, so the same code runs on Deno, Bun, Node and in edge isolates.
 *
 * @module
 */

import { describe, quoteList } from "../core/_names.ts";
import { defaultRegistry, Registry } from "../metrics/registry.ts";
import { generateLatest } from "./generate.ts";
import { PROMETHEUS_CONTENT_TYPE } from "./negotiate.ts";

/** The few members of `fetch` the client uses; the global `fetch` is one. */
export type PushgatewayFetch = (url: string, init: RequestInit) => Promise<Response>;

/** Options of {@linkcode Pushgateway}. */
export interface PushgatewayOptions {
  /**
   * The gateway's base URL, `http://pushgateway:9091`, with a path when it sits under a prefix.
   * Credentials in it (`https://user:secret@host`) are sent as Basic authentication.
   */
  url: string | URL;
  /** The `job` label of every pushed series, and the first label of the group's key. */
  job: string;
  /** The other labels of the group's key, `{ instance: "db-1" }`; never `job`. Copied. */
  grouping?: Record<string, string>;
  /** The registry to push, {@linkcode defaultRegistry} by default. */
  registry?: Registry;
  /**
   * Headers sent with every request, such as `Authorization`. Copied. `Content-Type` and
   * `Content-Encoding` are the client's own, set from what it sends, and ignored here.
   */
  headers?: HeadersInit;
  /** Milliseconds before a request gives up, answer included; 10 000 by default. */
  timeoutMs?: number;
  /** Whether to gzip the pushed body (`Content-Encoding: gzip`). False by default. */
  gzip?: boolean;
  /** A `fetch` to use instead of the global one: a custom transport, or a test double. */
  fetch?: PushgatewayFetch;
}

/**
 * Thrown when the gateway answers a push or a delete with a status other than 2xx. A push
 * inconsistent with the gateway's other metrics (a name pushed with another type) gets 400.
 */
export class PushgatewayError extends Error {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The body of the answer: the gateway's explanation. */
  readonly body: string;
  /** The request's method: `PUT`, `POST` or `DELETE`. */
  readonly method: string;
  /** The group's URL the request went to. */
  readonly url: string;

  /**
   * Creates the error.
   *
   * @param method The request's method.
   * @param url The URL requested.
   * @param status The answer's status.
   * @param statusText The answer's status text, possibly empty.
   * @param body The answer's body.
   */
  constructor(method: string, url: string, status: number, statusText: string, body: string) {
    const reason = body.trim() === "" ? "" : `: ${truncate(body.trim(), 1000)}`;
    super(
      `Cannot ${method} ${url}: the Pushgateway answered ${status}${
        statusText ? ` ${statusText}` : ""
      }${reason}`,
    );
    this.name = "PushgatewayError";
    this.status = status;
    this.body = body;
    this.method = method;
    this.url = url;
  }
}

const OPTIONS: ReadonlySet<string> = new Set([
  "url",
  "job",
  "grouping",
  "registry",
  "headers",
  "timeoutMs",
  "gzip",
  "fetch",
]);

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
// The most a timer takes everywhere (a signed 32-bit number of milliseconds).
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Pushgateway is a client of one group of a Prometheus Pushgateway: the job and grouping labels
 * fixed at construction name the group, and each call sends the registry's current exposition
 * (text 0.0.4) to it. It holds no connection and no timer, so it is safe to keep for the life
 * of a process, to call from many places, and to drop at any time.
 *
 * The group's URL follows the gateway's rules: the job and each grouping value are URL-encoded,
 * and a value holding a `/`, an empty value, `.` and `..` are written in the `@base64` form
 * (`/metrics/job/cleaner/path@base64/L3Zhci90bXA`), the only form that survives as one segment.
 *
 * @example Push at the end of a batch job
 * ```ts ignore
 * import { Gauge, Pushgateway, Registry } from "@theus/theus";
 *
 * const registry = new Registry();
 * const finished = new Gauge({ name: "backup_last_success_seconds", help: "Last success", registry });
 * // ... the job's work ...
 * finished.setToCurrentTime();
 * await new Pushgateway({ url: "http://pushgateway:9091", job: "backup", registry }).push();
 * ```
 *
 * @example The requests it sends
 * ```ts
 * import assert from "node:assert/strict";
 * import { Counter, Registry } from "../mod.ts";
 * import { Pushgateway } from "./pushgateway.ts";
 *
 * const registry = new Registry();
 * new Counter({ name: "files_removed", help: "Files removed", registry }).inc(7);
 * const sent: Request[] = [];
 * const gateway = new Pushgateway({
 *   url: "http://pushgateway.example:9091",
 *   job: "cleaner",
 *   grouping: { instance: "db-1", path: "/var/tmp" },
 *   registry,
 *   headers: { authorization: "Bearer secret" },
 *   fetch: (url, init) => {
 *     sent.push(new Request(url, init));
 *     return Promise.resolve(new Response(null, { status: 200 }));
 *   },
 * });
 * assert.equal(gateway.groupUrl, "http://pushgateway.example:9091/metrics/job/cleaner/instance/db-1/path@base64/L3Zhci90bXA");
 *
 * await gateway.push();
 * assert.equal(sent[0].method, "PUT");
 * assert.equal(sent[0].headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * assert.equal(sent[0].headers.get("authorization"), "Bearer secret");
 * assert.match(await sent[0].text(), /^files_removed_total 7$/m);
 *
 * await gateway.pushAdd();
 * await gateway.delete();
 * assert.deepEqual(sent.map((request) => request.method), ["PUT", "POST", "DELETE"]);
 * ```
 */
export class Pushgateway {
  readonly #url: string;
  readonly #registry: Registry;
  readonly #headers: Headers;
  readonly #timeoutMs: number;
  readonly #gzip: boolean;
  readonly #fetch: PushgatewayFetch | undefined;

  /**
   * Checks the options and builds the group's URL; nothing is sent yet.
   *
   * @param options The gateway, the group, the registry and how to send.
   * @throws {TypeError} For an unknown option, a URL that does not parse or is not http(s), an
   * empty job, a grouping label name that is invalid or `job`, a value that is not a string, or
   * invalid headers, timeout, gzip flag or fetch.
   */
  constructor(options: PushgatewayOptions) {
    if (typeof options !== "object" || options === null || Array.isArray(options)) {
      throw new TypeError(`Invalid options of Pushgateway: expected an object, got ${describe(options)}`);
    }
    for (const key of Object.keys(options)) {
      if (!OPTIONS.has(key)) {
        throw new TypeError(
          `Unknown option "${key}" of Pushgateway: expected one of ${quoteList([...OPTIONS])}`,
        );
      }
    }
    const { job, grouping = {}, registry = defaultRegistry, timeoutMs = 10_000, gzip = false } = options;
    const base = baseUrl(options.url);
    if (typeof job !== "string" || job === "") {
      throw new TypeError(`Invalid job of Pushgateway: expected a non-empty string, got ${describe(job)}`);
    }
    if (!isPlainObject(grouping)) {
      throw new TypeError(
        `Invalid grouping of Pushgateway: expected a plain object, got ${describe(grouping)}`,
      );
    }
    let path = `/metrics/${segment("job", job)}`;
    for (const [name, value] of Object.entries(grouping)) {
      path += `/${segment(checkGroupingName(name), value)}`;
    }

    if (!(registry instanceof Registry)) {
      throw new TypeError(`Invalid registry of Pushgateway: expected a Registry, got ${describe(registry)}`);
    }
    if (typeof timeoutMs !== "number" || !(timeoutMs > 0 && timeoutMs <= MAX_TIMEOUT_MS)) {
      throw new TypeError(
        `Invalid timeoutMs of Pushgateway: expected a number of milliseconds above 0 and at most ${MAX_TIMEOUT_MS}, got ${
          describe(timeoutMs)
        }`,
      );
    }
    if (typeof gzip !== "boolean") {
      throw new TypeError(`Invalid gzip of Pushgateway: expected a boolean, got ${describe(gzip)}`);
    }
    if (options.fetch !== undefined && typeof options.fetch !== "function") {
      throw new TypeError(
        `Invalid fetch of Pushgateway: expected a function, got ${describe(options.fetch)}`,
      );
    }
    let headers: Headers;
    try {
      headers = new Headers(options.headers);
    } catch (error) {
      throw new TypeError(`Invalid headers of Pushgateway: ${messageOf(error)}`, { cause: error });
    }

    // They describe the body, which the client writes: a caller's value could only be wrong.
    headers.delete("content-type");
    headers.delete("content-encoding");
    if ((base.username !== "" || base.password !== "") && !headers.has("authorization")) {
      const credentials = `${decoded(base.username)}:${decoded(base.password)}`;
      headers.set("authorization", `Basic ${base64(credentials)}`);
    }
    base.username = "";
    base.password = "";
    // The segments are already encoded; the href is built by hand so that no parser touches them.
    this.#url = `${base.origin}${base.pathname.replace(/\/+$/, "")}${path}`;
    this.#registry = registry;
    this.#headers = headers;
    this.#timeoutMs = timeoutMs;
    this.#gzip = gzip;
    this.#fetch = options.fetch;
  }

  /** The URL of the group this client pushes to, without credentials. */
  get groupUrl(): string {
    return this.#url;
  }

  /**
   * Pushes the registry with `PUT`: every metric of the group is replaced by what the registry
   * holds now, and metrics the registry no longer has are gone from the group.
   *
   * @returns Resolves once the gateway accepted the push.
   * @throws {PushgatewayError} When the gateway answers with a status other than 2xx.
   * @throws {Error} When no answer arrives within `timeoutMs`, or the request fails.
   */
  push(): Promise<void> {
    return this.#send("PUT");
  }

  /**
   * Pushes the registry with `POST`: the group's metrics of the same names are replaced, its
   * other metrics are kept.
   *
   * @returns Resolves once the gateway accepted the push.
   * @throws {PushgatewayError} When the gateway answers with a status other than 2xx.
   * @throws {Error} When no answer arrives within `timeoutMs`, or the request fails.
   */
  pushAdd(): Promise<void> {
    return this.#send("POST");
  }

  /**
   * Deletes the group with `DELETE`: every metric pushed under exactly this job and grouping.
   * Groups whose key only starts with this one are kept. Deleting a missing group succeeds.
   *
   * @returns Resolves once the gateway accepted the deletion.
   * @throws {PushgatewayError} When the gateway answers with a status other than 2xx.
   * @throws {Error} When no answer arrives within `timeoutMs`, or the request fails.
   */
  delete(): Promise<void> {
    return this.#send("DELETE");
  }

  async #send(method: "PUT" | "POST" | "DELETE"): Promise<void> {
    const headers = new Headers(this.#headers);
    let body: string | ArrayBuffer | undefined;
    if (method !== "DELETE") {
      const text = await generateLatest(this.#registry, { format: "prometheus" });
      headers.set("content-type", PROMETHEUS_CONTENT_TYPE);
      if (this.#gzip) {
        headers.set("content-encoding", "gzip");
        body = await gzipped(text);
      } else {
        body = text;
      }
    }
    const url = this.#url;
    // Called unbound: the global fetch of Workers throws when called as a method of another object.
    const send = this.#fetch ?? fetch;
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let onAbort: (() => void) | undefined;
    // The race holds the deadline even against a fetch that ignores its signal.
    const timedOut = new Promise<never>((_, reject) => {
      onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
    });
    let response: Response;
    let answer: string;
    try {
      [response, answer] = await Promise.race([
        exchange(send, url, { method, headers, body, signal }),
        timedOut,
      ]);
    } catch (error) {
      if (signal.aborted) {
        throw new Error(`Cannot ${method} ${url}: no answer within ${this.#timeoutMs} ms (timeoutMs)`, {
          cause: error,
        });
      }
      throw new Error(`Cannot ${method} ${url}: ${messageOf(error)}`, { cause: error });
    } finally {
      signal.removeEventListener("abort", onAbort!);
    }
    if (response.status < 200 || response.status > 299) {
      throw new PushgatewayError(method, url, response.status, response.statusText, answer);
    }
  }
}

async function exchange(send: PushgatewayFetch, url: string, init: RequestInit): Promise<[Response, string]> {
  const response = await send(url, init);
  return [response, await response.text()];
}

function baseUrl(url: unknown): URL {
  if (typeof url !== "string" && !(url instanceof URL)) {
    throw new TypeError(`Invalid url of Pushgateway: expected a string or a URL, got ${describe(url)}`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    throw new TypeError(
      `Invalid url of Pushgateway: ${JSON.stringify(String(url))} is not an absolute URL`,
      { cause: error },
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(
      `Invalid url of Pushgateway ${
        JSON.stringify(redact(parsed))
      }: expected http: or https:, got ${parsed.protocol}`,
    );
  }
  if (parsed.search !== "" || parsed.hash !== "") {
    throw new TypeError(
      `Invalid url of Pushgateway ${JSON.stringify(redact(parsed))}: a query or fragment has no place in it`,
    );
  }
  return parsed;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** A percent-encoded part of a URL, decoded; as it is when it does not decode. */
function decoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function redact(url: URL): string {
  const copy = new URL(url.href);
  if (copy.password !== "") copy.password = "***";
  return copy.href;
}

function checkGroupingName(name: string): string {
  if (!LABEL_NAME.test(name)) {
    throw new TypeError(
      `Invalid grouping label name ${JSON.stringify(name)} of Pushgateway: must match [a-zA-Z_][a-zA-Z0-9_]*`,
    );
  }
  if (name.startsWith("__")) {
    throw new TypeError(
      `Invalid grouping label name ${
        JSON.stringify(name)
      } of Pushgateway: names starting with "__" are reserved`,
    );
  }
  if (name === "job") {
    throw new TypeError(
      `Invalid grouping label name "job" of Pushgateway: the job is given by the job option`,
    );
  }
  return name;
}

/** One `name/value` pair of the group's path, in the plain or the `@base64` form. */
function segment(name: string, value: unknown): string {
  if (typeof value !== "string") {
    throw new TypeError(
      `Invalid value of grouping label "${name}" of Pushgateway: expected a string, got ${describe(value)}`,
    );
  }
  if (!value.isWellFormed()) {
    throw new TypeError(
      `Invalid value of ${name === "job" ? "job" : `grouping label "${name}"`} of Pushgateway: ${
        JSON.stringify(value)
      } holds a lone surrogate`,
    );
  }
  // An empty segment and the dot segments would be removed from the path; a "/" would split it.
  if (value === "") return `${name}@base64/=`;
  if (value === "." || value === ".." || value.includes("/")) return `${name}@base64/${base64url(value)}`;
  return `${name}/${encodeURIComponent(value)}`;
}

function binary(text: string): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) out += String.fromCharCode(byte);
  return out;
}

function base64(text: string): string {
  return btoa(binary(text));
}

/** RFC 4648 §5, the URL and filename safe alphabet, without padding. */
function base64url(text: string): string {
  return base64(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function gzipped(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(
    new CompressionStream("gzip") as unknown as TransformStream<Uint8Array, Uint8Array>,
  );
  return await new Response(stream).arrayBuffer();
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}

// The request side of nodeListener(): a Node request as a fetch Request, its body a web stream
// read only when the handler reads it.

/**
 * The members of Node's `IncomingMessage` (or Express's `Request`) that
 * {@linkcode nodeListener} uses.
 */
export interface NodeRequest {
  /** The method, `GET` when absent. */
  readonly method?: string;
  /** The request target, relative to the mount path under Express. */
  readonly url?: string;
  /** The request target as received, set by Express. */
  readonly originalUrl?: string;
  /** Header names and values, alternating, as received. */
  readonly rawHeaders: readonly string[];
  /** The connection; its `encrypted` flag tells TLS. */
  readonly socket?: object | null;
  /** Whether the body has been read to its end already (by a body parser, say). */
  readonly readableEnded?: boolean;
  /** Whether the request has been destroyed (the client went away). */
  readonly destroyed?: boolean;
  /** Adds a listener for a chunk of the body. */
  on(event: "data", listener: (chunk: Uint8Array | string) => void): unknown;
  /** Adds a listener for the end of the body, or for the request closing. */
  on(event: "end" | "close", listener: () => void): unknown;
  /** Adds a listener for an error. */
  on(event: "error", listener: (error: Error) => void): unknown;
  /** Removes a listener for a chunk of the body. */
  off(event: "data", listener: (chunk: Uint8Array | string) => void): unknown;
  /** Removes a listener for the end of the body, or for the request closing. */
  off(event: "end" | "close", listener: () => void): unknown;
  /** Removes a listener for an error. */
  off(event: "error", listener: (error: Error) => void): unknown;
  /** Stops the flow of `data` events. */
  pause(): unknown;
  /** Starts the flow of `data` events again. */
  resume(): unknown;
}

/** Raised before the handler runs when the request cannot become a `Request`. */
export class Refusal extends Error {
  readonly status: number;
  constructor(status: number, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
  }
}

/** The body of a request as a web stream, read only when the handler reads it. */
export class RequestBody {
  readonly stream: ReadableStream<Uint8Array>;
  readonly #req: NodeRequest;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #reading = false;
  #done = false;

  constructor(req: NodeRequest) {
    this.#req = req;
    // A high-water mark of 0: nothing is read from the socket before the handler asks.
    this.stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
        if (req.readableEnded) return this.#finish(() => controller.close());
        if (req.destroyed) return this.#finish(() => controller.error(clientGone()));
        req.on("end", this.#onEnd);
        req.on("error", this.#onError);
        req.on("close", this.#onClose);
      },
      pull: () => {
        if (this.#done) return;
        if (!this.#reading) {
          this.#reading = true;
          req.on("data", this.#onData);
        }
        req.resume();
      },
      cancel: () => this.#discard(),
    }, { highWaterMark: 0 });
  }

  /** The response is complete: stop listening, and let the rest of the body drain away. */
  release(): void {
    if (this.#done) return;
    this.#finish(() =>
      this.#controller?.error(new DOMException("The response was sent already", "AbortError"))
    );
    this.#req.resume();
  }

  #onData = (chunk: Uint8Array | string): void => {
    const controller = this.#controller;
    if (this.#done || controller === undefined) return;
    controller.enqueue(bytes(chunk));
    if ((controller.desiredSize ?? 0) <= 0) this.#req.pause();
  };

  #onEnd = (): void => this.#finish(() => this.#controller?.close());

  #onError = (error: Error): void => this.#finish(() => this.#controller?.error(error));

  #onClose = (): void => {
    if (this.#req.readableEnded) this.#onEnd();
    else this.#finish(() => this.#controller?.error(clientGone()));
  };

  #discard(): void {
    if (this.#done) return;
    this.#finish(() => {});
    this.#req.resume();
  }

  #finish(settle: () => void): void {
    if (this.#done) return;
    this.#done = true;
    const req = this.#req;
    req.off("data", this.#onData);
    req.off("end", this.#onEnd);
    req.off("error", this.#onError);
    req.off("close", this.#onClose);
    settle();
  }
}

/** The full URL of a request, or a Refusal. */
export function requestUrl(req: NodeRequest, host: string | undefined): string {
  const secure = (req.socket as { encrypted?: unknown } | null | undefined)?.encrypted === true;
  const target = req.originalUrl ?? req.url ?? "/";
  let origin: string;
  try {
    const base = new URL(`${secure ? "https" : "http"}://${host ?? "localhost"}`);
    if (
      base.pathname !== "/" || base.search !== "" || base.hash !== "" || base.username !== "" ||
      base.password !== ""
    ) {
      throw new TypeError(`Invalid Host header: ${JSON.stringify(host)}`);
    }
    origin = base.origin;
  } catch (error) {
    throw new Refusal(400, "Bad Request: invalid Host header", { cause: error });
  }
  // Concatenated, not resolved: a target such as `//other/x` is a path on this host.
  if (target.startsWith("/")) return origin + target;
  // The absolute form, `GET http://host/path`: the target names the URL itself.
  try {
    const absolute = new URL(target);
    if (absolute.protocol === "http:" || absolute.protocol === "https:") return absolute.href;
  } catch {
    // Neither a path nor a URL (`*` of `OPTIONS *`): the origin itself.
  }
  return `${origin}/`;
}

/** The bytes of a chunk, as a plain Uint8Array. */
export function bytes(chunk: unknown): Uint8Array {
  // A plain Uint8Array over the same memory: a Node Buffer is one, with other methods.
  if (chunk instanceof Uint8Array) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === "string") return new TextEncoder().encode(chunk);
  if (chunk instanceof ArrayBuffer) return new Uint8Array(chunk);
  if (ArrayBuffer.isView(chunk)) return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new TypeError(`A response body chunk must be a Uint8Array, not ${describe(chunk)}`);
}

function clientGone(): DOMException {
  return new DOMException(
    "The client closed the connection before the request body was complete",
    "AbortError",
  );
}

/** A short description of a value for error messages: its class name or type. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "object") return (value as object).constructor?.name ?? "an object";
  return typeof value;
}

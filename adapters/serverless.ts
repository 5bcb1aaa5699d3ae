/**
 * `withFlush()`: flush once per serverless invocation.
 *
 * @module
 */

import { flush } from "../setup/load.ts";

/** What a platform passes to handlers to keep work going after the response (Workers, Vercel). */
export interface WaitUntilContext {
  /** Keeps the invocation alive until the promise settles. */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * Wraps a fetch-style handler so that every invocation ends with a flush of the remote
 * backends: handed to `ctx.waitUntil` where the platform passes a context with it (Cloudflare
 * Workers, Vercel Edge), awaited before the response is returned where it does not (Deno
 * Deploy, Lambda through a fetch adapter). The flush runs whether the handler returns or
 * throws, and never rejects. On the memory backend it costs nothing.
 *
 * @param handler The handler; its extra arguments (`env`, `ctx`) are passed through.
 * @returns The wrapped handler.
 *
 * @example
 * ```ts
 * import { Counter, Registry, withFlush } from "../mod.ts";
 *
 * const hits = new Counter({ name: "hits_total", help: "Hits", registry: new Registry() });
 * const handler = withFlush((_req: Request) => {
 *   hits.inc();
 *   return new Response("ok");
 * });
 * const response = await handler(new Request("http://localhost/"));
 * ```
 */
export function withFlush<A extends unknown[], R extends Response | Promise<Response>>(
  handler: (request: Request, ...rest: A) => R,
): (request: Request, ...rest: A) => Promise<Response> {
  return async (request: Request, ...rest: A): Promise<Response> => {
    const ctx = rest.find((arg): arg is WaitUntilContext =>
      typeof (arg as Partial<WaitUntilContext> | null)?.waitUntil === "function"
    );
    try {
      return await handler(request, ...rest);
    } finally {
      const done = flush().catch(() => {});
      if (ctx !== undefined) ctx.waitUntil(done);
      else await done;
    }
  };
}

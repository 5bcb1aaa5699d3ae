// The example service on Bun:
//   bun examples/bun.ts
// PORT (default 8080, 0 picks a free one) and HOST (default 127.0.0.1) set the address;
// THEUS_BACKEND and THEUS_BACKEND_CONFIG choose where the values live (memory by default).

import { flush } from "../mod.ts";
import { app, listening } from "./app.ts";

// The members of Bun used here, so that the file type-checks without @types/bun.
declare const Bun: {
  env: Record<string, string | undefined>;
  serve(options: { hostname: string; port: number; fetch: typeof app }): {
    port: number;
    stop(): Promise<void>;
  };
};

const hostname = Bun.env.HOST ?? "127.0.0.1";
const port = Number(Bun.env.PORT ?? 8080);

const server = Bun.serve({ hostname, port, fetch: app });
console.log(listening("bun", hostname, server.port));

// On shutdown, push whatever a remote backend still buffers.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, async () => {
    await server.stop();
    await flush();
    process.exit(0);
  });
}

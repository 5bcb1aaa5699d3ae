// The example service on Deno:
//   deno run --allow-net --allow-env examples/deno.ts
// PORT (default 8080, 0 picks a free one) and HOST (default 127.0.0.1) set the address;
// THEUS_BACKEND and THEUS_BACKEND_CONFIG choose where the values live (memory by default).

import { flush } from "../mod.ts";
import { app, listening } from "./app.ts";

const hostname = Deno.env.get("HOST") ?? "127.0.0.1";
const port = Number(Deno.env.get("PORT") ?? 8080);

const server = Deno.serve({
  hostname,
  port,
  onListen: (addr) => console.log(listening("deno", hostname, addr.port)),
}, app);

// On shutdown, push whatever a remote backend still buffers.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, async () => {
    await server.shutdown();
    await flush();
    Deno.exit(0);
  });
}

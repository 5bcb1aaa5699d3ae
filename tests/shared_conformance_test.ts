// The conformance suite on the shared memory backend, in one thread: a fresh arena per test.

import { loadBackend, Registry, shareMemory } from "../mod.ts";
import { conformance } from "./conformance.ts";

conformance("shared memory", async () => {
  const handle = await shareMemory();
  if (handle.memory === undefined) throw new Error("this runtime should share memory");
  return { registry: new Registry(), cleanup: () => loadBackend({ backend: "memory" }) };
});

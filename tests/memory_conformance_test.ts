// The conformance suite on the memory backend: the default (by name), the MemoryBackend class
// selected explicitly, and MemoryBackend's instances used one per value, as a backend without
// the series-level `values` hook is.

import { loadBackend, Registry } from "../mod.ts";
import { MemoryBackend } from "../backends/memory.ts";
import { conformance } from "./conformance.ts";

conformance("memory", async () => {
  await loadBackend({ backend: "memory" });
  return { registry: new Registry() };
});

conformance("memory (MemoryBackend class)", async () => {
  await loadBackend({ backend: MemoryBackend, config: {} });
  return { registry: new Registry() };
});

// The protocol's reference path: one MemoryBackend instance per value, the class-level hook
// hidden.
class OneInstancePerValue extends MemoryBackend {}
Object.defineProperty(OneInstancePerValue, "values", { value: undefined });

conformance("memory (one MemoryBackend instance per value)", async () => {
  await loadBackend({ backend: OneInstancePerValue, config: {} });
  return {
    registry: new Registry(),
    cleanup: () => loadBackend({ backend: "memory" }),
  };
});

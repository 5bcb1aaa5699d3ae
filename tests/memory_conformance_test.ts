import { loadBackend, Registry } from "../mod.ts";
import { conformance } from "./conformance.ts";

conformance("memory", async () => {
  await loadBackend({ backend: "memory" });
  return { registry: new Registry() };
});

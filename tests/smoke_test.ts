import assert from "node:assert/strict";
import { Counter, generateLatest, Registry } from "../mod.ts";
import { runtime, test } from "./_harness.ts";

test(`a counter is exposed on ${runtime}`, async () => {
  const registry = new Registry();
  new Counter({ name: "smoke", help: "Smoke", registry }).inc(2);
  assert.equal(
    await generateLatest(registry),
    "# HELP smoke_total Smoke\n# TYPE smoke_total counter\nsmoke_total 2\n",
  );
});

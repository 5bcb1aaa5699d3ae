// The esbuild options a Worker is bundled with, as Wrangler resolves it: ESM for the browser
// platform (which fails on any node: import it would have to resolve), with workerd's conditions.

/** Options for `esbuild.build`, to spread before the entry (`stdin` or `entryPoints`). */
export const WORKER_BUILD: {
  bundle: true;
  write: false;
  format: "esm";
  platform: "browser";
  conditions: string[];
  target: string;
  logLevel: "silent";
} = {
  bundle: true,
  write: false,
  format: "esm",
  platform: "browser",
  conditions: ["workerd", "worker", "browser"],
  target: "es2022",
  logLevel: "silent",
};

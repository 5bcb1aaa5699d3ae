// `npm start [-- node|deno|bun]`: runs an example service, from a fresh clone with only Node
// and npm. Runs `npm ci` when node_modules does not match package-lock.json, builds dist/
// when it is missing or older than the sources, then runs the example in the foreground,
// forwarding SIGINT and SIGTERM to it.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const at = (...parts) => join(root, ...parts);
const bin = (name) => at("node_modules", ".bin", name);
const shell = process.platform === "win32"; // npm and the .bin shims are .cmd files there

const examples = {
  node: [process.execPath, [at("examples", "node.mjs")]],
  deno: [bin("deno"), ["run", "--allow-net", "--allow-env", at("examples", "deno.ts")]],
  bun: [bin("bun"), [at("examples", "bun.ts")]],
};

const runtime = process.argv[2] ?? "node";
if (!Object.hasOwn(examples, runtime)) {
  console.error(`Unknown runtime "${runtime}": use one of ${Object.keys(examples).join(", ")}`);
  process.exit(2);
}

/** The latest modification time under the given paths, 0 if none exists. */
function newest(...paths) {
  let latest = 0;
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) latest = Math.max(latest, newest(join(path, entry)));
    } else if (!path.endsWith("_test.ts")) {
      latest = Math.max(latest, stat.mtimeMs);
    }
  }
  return latest;
}

/** Whether some package of the lockfile is missing from node_modules or has another version. */
function installStale() {
  const lock = JSON.parse(readFileSync(at("package-lock.json"), "utf8"));
  return Object.entries(lock.packages).some(([path, { version, optional, devOptional }]) => {
    if (!path.startsWith("node_modules/") || optional || devOptional) return false;
    const manifest = at(path, "package.json");
    return !existsSync(manifest) || JSON.parse(readFileSync(manifest, "utf8")).version !== version;
  });
}

/** Runs a command in the foreground; returns whether it succeeded. */
function run(command, args) {
  console.error(`> ${[command, ...args].join(" ")}`);
  const { status, error } = spawnSync(command, args, { cwd: root, stdio: "inherit", shell });
  if (error !== undefined) console.error(`Cannot run ${command}: ${error.message}`);
  return status === 0;
}

function fail(what) {
  console.error(`npm start: ${what} failed, see above`);
  process.exit(1);
}

// `npm ci` refuses a lockfile that lacks some platform's optional packages; `npm install
// --no-save` still installs the locked versions, without rewriting the lockfile.
if (installStale() && !run("npm", ["ci"])) {
  console.error("npm start: npm ci failed, trying npm install --no-save");
  if (!run("npm", ["install", "--no-save"])) fail("npm install");
}
const sources = ["mod.ts", "core", "backends", "metrics", "exposition", "setup", "adapters", "tsconfig.json"]
  .map((p) => at(p));
// The example imports the root and the Node adapter: both must be built, and newer than the sources.
if (Math.min(newest(at("dist", "mod.js")), newest(at("dist", "adapters", "node.js"))) < newest(...sources)) {
  if (!run(process.execPath, [at("node_modules", "typescript", "bin", "tsc"), "-p", at("tsconfig.json")])) {
    fail("the build (tsc)");
  }
}

const [command, args] = examples[runtime];
const child = spawn(command, args, { cwd: root, stdio: "inherit", shell });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
// npm runs this file through `sh -c`, which dies without passing on the signal when npm is
// killed: stop the service then too, rather than leave it orphaned.
if (process.env.npm_lifecycle_event !== undefined) {
  const parent = process.ppid;
  setInterval(() => process.ppid !== parent && child.kill("SIGTERM"), 500).unref();
}
child.on("error", (error) => {
  console.error(`Cannot run the ${runtime} example: ${error.message}`);
  process.exit(1);
});
child.on("exit", (code, signal) => process.exit(code ?? 128 + constants.signals[signal]));

// The one place theus imports a module it knows only at run time: a backend named in
// THEUS_BACKEND, or by name in loadBackend(). The call is built at run time, so that no tool
// follows it:
// - bundlers (webpack, esbuild, Vite) would warn about an expression they cannot resolve, or
//   pull both Redis clients into every bundle;
// - Miniflare and Wrangler refuse a Worker script with a non-literal import();
// - Deno downloads the npm packages behind any import() it can read, so a Deno app on the
//   memory backend would download ioredis and @upstash/redis; and `deno publish` warns about
//   one it cannot.
// Where code generation is not allowed (Workers, strict CSP), selecting a backend by name is
// not possible: import the class and pass it to loadBackend, which is what an edge bundle does
// anyway.

import { errorMessage } from "../core/_runtime.ts";

type Importer = (specifier: string) => Promise<Record<string, unknown>>;

let importer: Importer | undefined;

/** Imports a module named at run time. */
export function importAtRunTime(specifier: string): Promise<Record<string, unknown>> {
  try {
    importer ??= new Function("specifier", "return import(specifier)") as Importer;
  } catch (error) {
    return Promise.reject(
      new Error(
        `this runtime cannot import a module named at run time (${errorMessage(error)}); ` +
          "import the backend class and pass it to loadBackend({ backend })",
      ),
    );
  }
  return importer(specifier);
}

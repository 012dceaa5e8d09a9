// Builds api.js into a wasi:http/proxy component (StarlingMonkey's fetch event).
// Usage: node build.mjs [output.wasm]   (default: ../../build/js-http-api.wasm)
//
// The StarlingMonkey engine of componentize-js 0.23.0 implements WASI 0.2.10, so the
// component must export wasi:http/incoming-handler@0.2.10. The WIT is derived from
// samples/wit-http (0.2.12, as Wasmtime 48 links it): the two differ only in
// wasi:cli/exit's `exit-with-code`, unstable before 0.2.12 (and not used here).
// Wasmtime serves 0.2.10 imports and exports with its 0.2.12 implementation.
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const WASI_VERSION = "0.2.10";
const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? resolve(here, "../../build/js-http-api.wasm"));

/** Copies the 0.2.12 WIT of samples/wit-http into `dir` as WASI 0.2.10. */
async function deriveWit(dir) {
  const src = resolve(here, "../../wit-http");
  for (const sub of ["", "deps"]) {
    await mkdir(join(dir, sub), { recursive: true });
    for (const entry of await readdir(join(src, sub), { withFileTypes: true })) {
      if (!entry.isFile() || !entry.name.endsWith(".wit")) continue;
      const text = (await readFile(join(src, sub, entry.name), "utf8"))
        .replaceAll("@since(version = 0.2.12)", "@unstable(feature = cli-exit-with-code)")
        .replaceAll("@0.2.12", `@${WASI_VERSION}`);
      await writeFile(join(dir, sub, entry.name), text);
    }
  }
}

const wit = await mkdtemp(join(tmpdir(), "faas-js-http-wit-"));
try {
  await deriveWit(wit);
  const { component } = await componentize({
    sourcePath: resolve(here, "api.js"),
    witPath: wit,
    worldName: `wasi:http/proxy@${WASI_VERSION}`,
  });
  await mkdir(dirname(out), { recursive: true });
  await writeFile(out, component);
  console.log(`wrote ${out} (${component.length} bytes)`);
} finally {
  await rm(wit, { recursive: true, force: true });
}

// Builds hello.js into a component of the faas:function world.
// Usage: node build.mjs [output.wasm]   (default: ../../build/js-hello.wasm)
import { componentize } from "@bytecodealliance/componentize-js";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] ?? resolve(here, "../../build/js-hello.wasm"));

const { component } = await componentize({
  sourcePath: resolve(here, "hello.js"),
  witPath: resolve(here, "../../../wit"),
  worldName: "function",
  // The platform's host links WASI preview 2 but not wasi-http.
  disableFeatures: ["http", "fetch-event"],
});
await mkdir(dirname(out), { recursive: true });
await writeFile(out, component);
console.log(`wrote ${out} (${component.length} bytes)`);

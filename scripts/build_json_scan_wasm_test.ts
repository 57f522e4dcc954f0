import assert from "node:assert/strict";
import { clangVersion, compile, MODULE, render } from "./build_json_scan_wasm.ts";
import { JSON_SCAN_WASM_COMPILER } from "../lib/proxy/json_scan_wasm.ts";

// Another clang builds other bytes from the same source: only the compiler that built the committed module can
// tell whether it is the build of the source. CI installs Debian's (.ci/run).
const compiler = await clangVersion();

Deno.test({
  name: "the committed WebAssembly scan is the build of json_scan.c",
  ignore: compiler !== JSON_SCAN_WASM_COMPILER,
  async fn() {
    const built = render(await compile(), compiler!);
    assert.ok(
      (await Deno.readTextFile(MODULE)) === built,
      "lib/proxy/json_scan_wasm.ts is not the build of lib/proxy/json_scan.c: " +
        "run deno run -A scripts/build_json_scan_wasm.ts",
    );
  },
});

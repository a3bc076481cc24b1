// Validate GLB files with the Khronos glTF-Validator (npm gltf-validator).
// Usage: node tests/tools/validate_gltf.mjs FILE...
// Prints one JSON line per file: {"file", "errors", "warnings", "messages"} (errors first).
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const validator = require("gltf-validator");

for (const file of process.argv.slice(2)) {
  const bytes = new Uint8Array(await readFile(file));
  let line;
  try {
    const report = await validator.validateBytes(bytes, { uri: file, maxIssues: 50 });
    const messages = report.issues.messages
      .filter((m) => m.severity <= 1)
      .map((m) => ({ code: m.code, severity: m.severity, message: m.message, pointer: m.pointer }));
    line = {
      file,
      errors: report.issues.numErrors,
      warnings: report.issues.numWarnings,
      messages,
    };
  } catch (error) {
    line = { file, errors: 1, warnings: 0, messages: [{ code: "UNREADABLE", message: String(error) }] };
  }
  process.stdout.write(JSON.stringify(line) + "\n");
}

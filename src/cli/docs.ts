#!/usr/bin/env node
/**
 * `npm run docs`: rewrite the generated sections of README.md (the method table and the `bayesdl fit`
 * flag table) from the method specs. test/structure.test.ts fails when README.md differs from what
 * this would write.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { writeFileAtomic } from "../io/atomic.js";
import { regenerateReadme } from "./reference.js";

const readme = resolve(dirname(fileURLToPath(import.meta.url)), "../../README.md");
const before = readFileSync(readme, "utf8");
const after = regenerateReadme(before);
if (after === before) console.log("README.md is up to date");
else {
  await writeFileAtomic(readme, after);
  console.log("README.md: generated sections rewritten");
}

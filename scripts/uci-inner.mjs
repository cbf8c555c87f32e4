#!/usr/bin/env node
/**
 * Inner validation folders for choosing defaults on UCI without reading a test part: for splits 0-2 of
 * each data set, 20% of the split's training indices (a seeded Fisher-Yates shuffle: the linear
 * congruential step s <- (1103515245 s + 12345) mod 2^31 from s = 12345 + k, in doubles, whose rounding
 * is part of what reproduces the folders) become the "test" part and the rest the training part. The data
 * files are symbolic links to the originals, so nothing is copied. The inner-validation tables of
 * docs/laplace.md (MAP epochs, prior structure) came from folders made this way:
 *
 *   node scripts/uci-inner.mjs OUT [--from ../shared/data/uci] [--sets bostonHousing,concrete,...]
 *   node dist/cli/main.js bench uci --data-dir OUT --dataset yacht --method laplace --splits 0-2
 */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { from: { type: "string", default: "../shared/data/uci" }, sets: { type: "string", default: "bostonHousing,concrete,energy,kin8nm,wine-quality-red,yacht" } },
});
if (positionals.length !== 1) {
  console.error("usage: node scripts/uci-inner.mjs OUT [--from DIR] [--sets a,b,...]");
  process.exit(2);
}
const src = resolve(values.from);
const dst = resolve(positionals[0]);
for (const d of values.sets.split(",")) {
  const from = `${src}/${d}/data`;
  if (!existsSync(from)) throw new Error(`${from}: no such UCI data set folder (expected ${src}/<set>/data)`);
  const out = `${dst}/${d}/data`;
  mkdirSync(out, { recursive: true });
  for (const f of ["data.txt", "index_features.txt", "index_target.txt"]) if (!existsSync(`${out}/${f}`)) symlinkSync(`${from}/${f}`, `${out}/${f}`);
  writeFileSync(`${out}/n_splits.txt`, "3\n");
  for (let k = 0; k < 3; k++) {
    const train = readFileSync(`${from}/index_train_${k}.txt`, "utf8").trim().split(/\s+/);
    let s = 12345 + k;
    const next = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = train.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [train[i], train[j]] = [train[j], train[i]];
    }
    const held = Math.round(0.2 * train.length);
    writeFileSync(`${out}/index_test_${k}.txt`, train.slice(0, held).join("\n") + "\n");
    writeFileSync(`${out}/index_train_${k}.txt`, train.slice(held).join("\n") + "\n");
  }
}
console.log(`wrote inner validation folders for ${values.sets} under ${dst}`);

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { progressReporter } from "../src/cli/progress.js";
import type { Progress } from "../src/run/loop.js";

const here = dirname(fileURLToPath(import.meta.url));
const progressJs = pathToFileURL(resolve(here, "../src/cli/progress.js")).href;

// What cli-progress 3.12 writes (lib/terminal.js): hide/show the cursor, line wrap off/on.
const HIDE_CURSOR = "\x1b[?25l";
const SHOW_CURSOR = "\x1b[?25h";
const WRAP_OFF = "\x1b[?7l";
const WRAP_ON = "\x1b[?7h";

/** A stand-in for a terminal stream: what cli-progress touches (isTTY, columns, write), writes collected. */
function fakeTty() {
  const chunks: string[] = [];
  const stream = {
    isTTY: true,
    columns: 100,
    write(s: string, cb?: () => void) {
      chunks.push(String(s));
      cb?.();
      return true;
    },
  };
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => chunks.join("") };
}

const at = (step: number): Progress => ({ epoch: 1, epochs: 2, step, totalSteps: 10, loss: 0.5, elapsedSeconds: step / 10 });

/** What was written after the bar last hid the cursor. */
function afterLastHide(out: string): string {
  const i = out.lastIndexOf(HIDE_CURSOR);
  assert.ok(i >= 0, `the bar never hid the cursor; output ${JSON.stringify(out)}`);
  return out.slice(i + HIDE_CURSOR.length);
}

/**
 * Run `body` in a child node whose reporter `r` writes to a fake TTY that mirrors every byte to the
 * child's stdout (synchronously, so nothing is lost when the process ends).
 */
function child(body: string) {
  const script = `
    import { writeSync } from "node:fs";
    import { progressReporter } from ${JSON.stringify(progressJs)};
    const stream = { isTTY: true, columns: 100, write(s, cb) { writeSync(1, String(s)); cb?.(); return true; } };
    const at = (step) => ({ epoch: 1, epochs: 2, step, totalSteps: 10, loss: 0.5, elapsedSeconds: step / 10 });
    const r = progressReporter("fit test", false, stream);
    setTimeout(() => { writeSync(2, "child still alive after 10 s"); process.exit(99); }, 10000);
    ${body}
  `;
  return spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 30000 });
}

for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
  test(`${signal} while the bar is shown restores the cursor and line wrap, then exits with ${code}`, { skip: process.platform === "win32" }, () => {
    const r = child(`r.update(at(1)); r.update(at(3)); process.kill(process.pid, ${JSON.stringify(signal)});`);
    assert.equal(r.signal, null, `the child died of ${r.signal}, not by exiting; stderr ${r.stderr}`);
    assert.equal(r.status, code, `stderr ${r.stderr}`);
    assert.ok(r.stdout.includes(WRAP_OFF), "the bar turned line wrap off");
    const tail = afterLastHide(r.stdout);
    assert.ok(tail.includes(SHOW_CURSOR), `no show-cursor after the last hide-cursor: ${JSON.stringify(tail)}`);
    assert.ok(tail.includes(WRAP_ON), `no line-wrap-on after the last hide-cursor: ${JSON.stringify(tail)}`);
  });
}

test("an uncaught error while the bar is shown still restores the cursor and line wrap", () => {
  const r = child(`r.update(at(1)); setTimeout(() => { throw new Error("boom"); }, 20);`);
  assert.equal(r.status, 1, `stderr ${r.stderr}`);
  assert.match(r.stderr, /boom/);
  const tail = afterLastHide(r.stdout);
  assert.ok(tail.includes(SHOW_CURSOR) && tail.includes(WRAP_ON), JSON.stringify(tail));
});

test("stop() restores the terminal and removes the signal and exit handlers; a second stop() is harmless", () => {
  const before = { int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM"), exit: process.listenerCount("exit") };
  const tty = fakeTty();
  const r = progressReporter("fit test", false, tty.stream);
  try {
    r.update(at(1));
    assert.equal(process.listenerCount("SIGINT"), before.int + 1);
    assert.equal(process.listenerCount("SIGTERM"), before.term + 1);
    assert.equal(process.listenerCount("exit"), before.exit + 1);
    r.update(at(10));
  } finally {
    r.stop(); // a bar left running keeps this test process alive
  }
  r.stop();
  assert.deepEqual({ int: process.listenerCount("SIGINT"), term: process.listenerCount("SIGTERM"), exit: process.listenerCount("exit") }, before);
  const tail = afterLastHide(tty.text());
  assert.ok(tail.includes(SHOW_CURSOR) && tail.includes(WRAP_ON), JSON.stringify(tail));
  assert.equal(tty.text().split(SHOW_CURSOR).length - 1, 1, "restored once");
});

test("no handlers without a shown bar: quiet, not a TTY, or stopped before the first update", () => {
  const before = process.listenerCount("SIGINT");
  const plain = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;
  for (const r of [progressReporter("q", true, fakeTty().stream), progressReporter("p", false, plain)]) {
    r.update(at(1));
    assert.equal(process.listenerCount("SIGINT"), before);
    r.stop();
  }
  progressReporter("s", false, fakeTty().stream).stop();
  assert.equal(process.listenerCount("SIGINT"), before);
});

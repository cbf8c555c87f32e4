/**
 * Training progress for the terminal: a cli-progress bar (epoch, objective, ETA) when stderr is a TTY,
 * otherwise a plain line at every tenth of the run and at least every 30 s.
 *
 * While shown, the bar hides the cursor and turns line wrap off. It gives both back when stopped, and
 * also when the process ends without a stop: on SIGINT or SIGTERM (then the process exits with
 * 128 + the signal's number, 130 or 143, as a shell reports a death by that signal) and on exit (an
 * uncaught error, a `process.exit` elsewhere). The handlers exist only while the bar is shown.
 */
import { constants } from "node:os";
import cliProgress from "cli-progress";
import type { Progress } from "../run/loop.js";

/** Show the cursor and turn line wrap back on: what cli-progress 3.12's `stop()` writes for `hideCursor` and `linewrap: false`. */
const RESTORE_TERMINAL = "\x1b[?25h\x1b[?7h";

/** A progress sink with an explicit end. */
export interface ProgressReporter {
  update(p: Progress): void;
  stop(): void;
}

function fmtLoss(v: number): string {
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(3) : v.toFixed(4);
}

/** Make a reporter for `stream` (defaults to stderr). `quiet` reports nothing. */
export function progressReporter(label: string, quiet = false, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  if (quiet) return { update() {}, stop() {} };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `${label} [{bar}] {percentage}% | epoch {epoch}/{epochs} | objective {loss} | ETA {eta_formatted}`,
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    let shown = false;
    // Stop the bar: its final render, then cursor and wrap back and a newline. Raw (at exit, where an
    // error message may just have been printed, or if stopping throws): only the restore sequences.
    const restore = (raw: boolean) => {
      if (!shown) return;
      shown = false;
      process.off("SIGINT", onSignal).off("SIGTERM", onSignal).off("exit", onExit);
      if (!raw) {
        try {
          bar.stop();
          return;
        } catch {
          // the raw restore below
        }
      }
      try {
        stream.write(RESTORE_TERMINAL);
      } catch {
        // the stream is gone: nothing left to restore
      }
    };
    function onSignal(signal: NodeJS.Signals) {
      restore(false);
      process.exit(128 + constants.signals[signal]);
    }
    function onExit() {
      restore(true);
    }
    return {
      update(p) {
        if (!started) {
          started = true;
          shown = true;
          process.on("SIGINT", onSignal).on("SIGTERM", onSignal).on("exit", onExit);
          bar.start(p.totalSteps, 0, { epoch: p.epoch, epochs: p.epochs, loss: fmtLoss(p.loss) });
        }
        bar.update(p.step, { epoch: p.epoch, epochs: p.epochs, loss: fmtLoss(p.loss) });
      },
      stop: () => restore(false),
    };
  }
  let nextFraction = 0.1;
  let lastPrint = 0;
  return {
    update(p) {
      const frac = p.step / p.totalSteps;
      if (frac >= nextFraction || p.elapsedSeconds - lastPrint >= 30 || p.step === p.totalSteps) {
        while (nextFraction <= frac) nextFraction += 0.1;
        lastPrint = p.elapsedSeconds;
        const eta = p.step > 0 ? (p.elapsedSeconds / p.step) * (p.totalSteps - p.step) : 0;
        stream.write(
          `${label}: step ${p.step}/${p.totalSteps} epoch ${p.epoch}/${p.epochs} objective ${fmtLoss(p.loss)} elapsed ${p.elapsedSeconds.toFixed(1)}s eta ${eta.toFixed(0)}s\n`,
        );
      }
    },
    stop() {},
  };
}

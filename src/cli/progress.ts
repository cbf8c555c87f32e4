/**
 * Training progress for the terminal: a cli-progress bar (epoch, objective, ETA) when stderr is a TTY,
 * otherwise a plain line at every tenth of the run and at least every 30 s.
 */
import cliProgress from "cli-progress";
import type { Progress } from "../run/loop.js";

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
    return {
      update(p) {
        if (!started) {
          bar.start(p.totalSteps, 0, { epoch: p.epoch, epochs: p.epochs, loss: fmtLoss(p.loss) });
          started = true;
        }
        bar.update(p.step, { epoch: p.epoch, epochs: p.epochs, loss: fmtLoss(p.loss) });
      },
      stop() {
        if (started) bar.stop();
      },
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

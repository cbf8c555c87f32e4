/**
 * `bayesdl bench vi-mnist`: variational methods on the embedded MNIST digits (8,000 train / 2,000
 * held out at the seed's split), `mlp:400,400`, with learning curves: every `every` steps, `evalSamples`
 * draws from the current q are evaluated on the held-out digits (test error, NLL, ECE), against steps
 * and against training wall time (evaluation time excluded).
 */
import { loadData } from "../data/index.js";
import { classificationMetrics } from "../eval/metrics.js";
import { predict } from "../eval/predict.js";
import type { OptionValue } from "../core/options.js";
import { runFit } from "../jobs/fit.js";
import { mkdirp, writeFileAtomic } from "../io/atomic.js";
import { categorical } from "../models/likelihood.js";
import { makeModel } from "../models/model.js";
import { networkFromSpec } from "../models/spec.js";
import { lineChartSvg } from "../plot/svg.js";
import { join } from "node:path";

/** One learning-curve point. */
export interface CurvePoint {
  readonly method: string;
  readonly step: number;
  readonly seconds: number;
  readonly error: number;
  readonly nll: number;
  readonly ece: number;
}

/** Options of {@link viMnistBench}. */
export interface ViMnistOptions {
  readonly methods: readonly string[];
  readonly epochs: number;
  readonly seed: number;
  readonly every: number;
  readonly evalSamples: number;
  readonly model?: string;
  /** Per-method options (learning rate, temperature, ...). */
  readonly overrides?: Readonly<Record<string, Readonly<Record<string, OptionValue>>>>;
  readonly onPoint?: (p: CurvePoint) => void;
}

/** Fit every method with learning curves; write `vi-mnist.md`, `.json`, `.svg` into `outDir`. */
export async function viMnistBench(outDir: string, o: ViMnistOptions): Promise<{ table: string; files: string[] }> {
  const spec = o.model ?? "mlp:400,400";
  const data = loadData("mnist", { seed: o.seed, role: "fit" });
  const model = makeModel(networkFromSpec(spec, data.train.xShape, 10), categorical(), { kind: "gaussian", scale: 1 });
  const curves: CurvePoint[] = [];
  const finals: { method: string; metrics: Record<string, number>; wall: number; options: Record<string, unknown> }[] = [];
  for (const method of o.methods) {
    let evalSeconds = 0;
    const t0 = performance.now();
    const r = await runFit({
      data: "mnist",
      model: spec,
      method,
      seed: o.seed,
      options: { epochs: o.epochs, ...(o.overrides?.[method] ?? {}) },
      monitor: {
        every: o.every,
        samples: o.evalSamples,
        async fn(step, draws) {
          const e0 = performance.now();
          const pred = await predict(model, draws, data.test);
          if (pred.kind !== "categorical") throw new Error("vi-mnist: expected a categorical predictive");
          const m = classificationMetrics(pred.probs, data.test.y as Int32Array, 10);
          const p: CurvePoint = { method, step, seconds: (e0 - t0) / 1000 - evalSeconds, error: 1 - m.accuracy, nll: m.nll, ece: m.ece };
          evalSeconds += (performance.now() - e0) / 1000;
          curves.push(p);
          o.onPoint?.(p);
        },
      },
    });
    finals.push({ method, metrics: r.metrics, wall: r.wallTimeSeconds - evalSeconds, options: r.meta.methodOptions });
  }
  const lines = [
    `| method | test error | NLL | ECE | Brier | train wall s (curve evaluations excluded) | options |`,
    `|---|---|---|---|---|---|---|`,
    ...finals.map((f) => `| ${f.method} | ${(100 * (1 - f.metrics.accuracy)).toFixed(2)}% | ${f.metrics.nll.toFixed(4)} | ${f.metrics.ece.toFixed(4)} | ${f.metrics.brier.toFixed(4)} | ${f.wall.toFixed(1)} | ${JSON.stringify(f.options).replace(/\|/g, "/")} |`),
  ];
  const table = lines.join("\n");
  const pts = curves.flatMap((c) => [
    { series: c.method, panel: "test error vs steps", x: c.step, y: c.error },
    { series: c.method, panel: "NLL vs steps", x: c.step, y: c.nll },
    { series: c.method, panel: "NLL vs wall s", x: Math.max(c.seconds, 1e-3), y: c.nll },
  ]);
  const svg = await lineChartSvg(pts, { title: `Embedded MNIST, ${spec}: held-out metrics of q during training (${o.evalSamples} draws)`, xTitle: "steps / seconds", yTitle: "held-out metric", logY: true });
  await mkdirp(outDir);
  const files = [join(outDir, "vi-mnist.md"), join(outDir, "vi-mnist.json"), join(outDir, "vi-mnist.svg")];
  await writeFileAtomic(files[0], `# Embedded MNIST, ${spec}: variational methods\n\n${table}\n\nLearning curves: vi-mnist.svg.\n`);
  await writeFileAtomic(files[1], JSON.stringify({ seed: o.seed, epochs: o.epochs, every: o.every, evalSamples: o.evalSamples, finals, curves }, null, 2) + "\n");
  await writeFileAtomic(files[2], svg);
  return { table, files };
}

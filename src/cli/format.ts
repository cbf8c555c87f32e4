/** Plain-text tables for metrics. */

/** Names and formats of the metrics in the order they are printed. */
const ORDER: [string, string, (v: number) => string][] = [
  ["accuracy", "accuracy", (v) => v.toFixed(4)],
  ["error", "error", (v) => `${(100 * v).toFixed(2)}%`],
  ["nll", "NLL", (v) => v.toFixed(4)],
  ["ece", "ECE", (v) => v.toFixed(4)],
  ["brier", "Brier", (v) => v.toFixed(4)],
  ["oodAuroc", "OOD AUROC", (v) => v.toFixed(4)],
  ["rmse", "RMSE", (v) => v.toFixed(4)],
  ["ll", "test LL", (v) => v.toFixed(4)],
];

/** A two-column table of metrics, known ones first in a fixed order, then any others. */
export function metricsTable(metrics: Record<string, number>, extra: [string, string][] = []): string {
  const rows: [string, string][] = [];
  for (const [key, label, fmt] of ORDER) if (key in metrics) rows.push([label, fmt(metrics[key])]);
  for (const [key, v] of Object.entries(metrics)) {
    if (ORDER.some(([k]) => k === key)) continue;
    const text = key.startsWith("rhat") ? v.toFixed(3) : key.startsWith("ess") ? v.toFixed(0) : Number.isInteger(v) ? String(v) : v.toPrecision(4);
    rows.push([key, text]);
  }
  rows.push(...extra);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join("\n");
}

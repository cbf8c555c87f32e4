/**
 * SVG plots for benches and reports: a Vega-Lite spec compiled by `vega-lite` and rendered headless
 * by `vega`'s SVG renderer (no canvas, no browser), so every bench can write its figure beside its
 * table on any machine.
 */
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

/** One point of a line chart. */
export interface SeriesPoint {
  readonly series: string;
  readonly x: number;
  readonly y: number;
  /** Optional facet (one small chart per value). */
  readonly panel?: string;
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  readonly title: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly logX?: boolean;
  readonly logY?: boolean;
  /** Columns of facets when points carry a `panel` (default 3). */
  readonly columns?: number;
  readonly width?: number;
  readonly height?: number;
}

/**
 * A line chart (one line per `series`, optionally one panel per `panel`) as an SVG document.
 * Non-finite and, on log axes, non-positive values are dropped (log scales cannot show them).
 */
export async function lineChartSvg(points: readonly SeriesPoint[], o: LineChartOptions): Promise<string> {
  const keep = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.logX || p.x > 0) && (!o.logY || p.y > 0));
  const faceted = keep.some((p) => p.panel !== undefined);
  const encoding = {
    x: { field: "x", type: "quantitative", title: o.xTitle, scale: o.logX ? { type: "log" } : { zero: false } },
    y: { field: "y", type: "quantitative", title: o.yTitle, scale: o.logY ? { type: "log" } : { zero: false } },
    color: { field: "series", type: "nominal", title: null },
  };
  const unit = { mark: { type: "line", point: { size: 18 }, strokeWidth: 1.5 }, encoding, width: o.width ?? 260, height: o.height ?? 190 };
  const spec = (
    faceted
      ? {
          $schema: "https://vega.github.io/schema/vega-lite/v6.json",
          title: o.title,
          data: { values: keep },
          facet: { field: "panel", type: "nominal", title: null },
          columns: o.columns ?? 3,
          spec: unit,
          resolve: { scale: { y: "independent" } },
        }
      : { $schema: "https://vega.github.io/schema/vega-lite/v6.json", title: o.title, data: { values: keep }, ...unit }
  ) as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

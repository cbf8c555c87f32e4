/**
 * Published UCI regression results (test RMSE and test log-likelihood per point, original units;
 * one hidden layer of 50 units, 100 for protein), as collected in ../shared/BENCHMARKS.md:
 * PBP (Hernandez-Lobato & Adams 2015), MC dropout (Gal & Ghahramani 2016), deep ensembles
 * (Lakshminarayanan et al. 2017; their "±" is a standard deviation, the others' a standard error).
 */

/** mean and spread (undefined where the source gives none). */
export type Figure = readonly [number, number | undefined];

export interface PublishedRow {
  readonly rmse: { pbp: Figure; dropout: Figure; ensembles: Figure };
  readonly ll: { pbp: Figure; dropout: Figure; ensembles: Figure };
}

/** Keyed by the folder names of ../shared/data/uci. */
export const UCI_PUBLISHED: Record<string, { label: string } & PublishedRow> = {
  bostonHousing: { label: "boston", rmse: { pbp: [3.01, 0.18], dropout: [2.97, 0.19], ensembles: [3.28, 1.0] }, ll: { pbp: [-2.57, 0.09], dropout: [-2.46, 0.06], ensembles: [-2.41, undefined] } },
  concrete: { label: "concrete", rmse: { pbp: [5.67, 0.09], dropout: [5.23, 0.12], ensembles: [6.03, 0.58] }, ll: { pbp: [-3.16, 0.02], dropout: [-3.04, 0.02], ensembles: [-3.06, undefined] } },
  energy: { label: "energy", rmse: { pbp: [1.8, 0.05], dropout: [1.66, 0.04], ensembles: [2.09, 0.29] }, ll: { pbp: [-2.04, 0.02], dropout: [-1.99, 0.02], ensembles: [-1.38, undefined] } },
  kin8nm: { label: "kin8nm", rmse: { pbp: [0.1, undefined], dropout: [0.1, undefined], ensembles: [0.09, undefined] }, ll: { pbp: [0.9, 0.01], dropout: [0.95, 0.01], ensembles: [1.2, undefined] } },
  "naval-propulsion-plant": { label: "naval", rmse: { pbp: [0.01, undefined], dropout: [0.01, undefined], ensembles: [0.0, undefined] }, ll: { pbp: [3.73, 0.01], dropout: [3.8, 0.01], ensembles: [5.63, undefined] } },
  "power-plant": { label: "power", rmse: { pbp: [4.12, 0.03], dropout: [4.02, 0.04], ensembles: [4.11, 0.17] }, ll: { pbp: [-2.84, 0.01], dropout: [-2.8, 0.01], ensembles: [-2.79, undefined] } },
  "protein-tertiary-structure": { label: "protein", rmse: { pbp: [4.73, 0.01], dropout: [4.36, 0.01], ensembles: [4.71, 0.06] }, ll: { pbp: [-2.97, 0.0], dropout: [-2.89, 0.0], ensembles: [-2.83, undefined] } },
  "wine-quality-red": { label: "wine", rmse: { pbp: [0.64, 0.01], dropout: [0.62, 0.01], ensembles: [0.64, 0.04] }, ll: { pbp: [-0.97, 0.01], dropout: [-0.93, 0.01], ensembles: [-0.94, undefined] } },
  yacht: { label: "yacht", rmse: { pbp: [1.02, 0.05], dropout: [1.11, 0.09], ensembles: [1.58, 0.48] }, ll: { pbp: [-1.63, 0.02], dropout: [-1.55, 0.03], ensembles: [-1.18, undefined] } },
};

/** Hidden units of the standard protocol: 100 for protein, 50 otherwise. */
export function uciHidden(dataset: string): number {
  return dataset.startsWith("protein") ? 100 : 50;
}

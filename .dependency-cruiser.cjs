/**
 * Import rules of bayesdl's layers (see the README's Layout): checked by `npx depcruise src` and by
 * test/structure.test.ts.
 */
const FAMILIES = "^src/(baselines|sgmcmc|vi|scorevi|laplace|gp|gen)/";
module.exports = {
  forbidden: [
    { name: "no-circular", severity: "error", comment: "no file imports itself through others", from: {}, to: { circular: true } },
    {
      name: "families-see-core-and-models",
      severity: "error",
      comment: "method families import only core/, optim/ and models/ (and their own family); data, files, diagnostics, the driver and the faces sit above them",
      from: { path: FAMILIES },
      to: { path: "^src/(io|data|diagnostics|train|jobs|bench|cli|node|run|web|eval|plot|methods)" },
    },
    {
      name: "core-imports-nothing-of-ours",
      severity: "error",
      comment: "core/ is the floor: it imports only core/",
      from: { path: "^src/core/" },
      to: { path: "^src/", pathNot: "^src/core/" },
    },
    {
      name: "models-see-core",
      severity: "error",
      comment: "models/ imports only core/ and models/",
      from: { path: "^src/models/" },
      to: { path: "^src/", pathNot: "^src/(core|models)/" },
    },
    {
      name: "browser-entry-stays-browser-safe",
      severity: "error",
      comment: "nothing the browser entry reaches may import a Node built-in (the esbuild test checks the bundle too)",
      from: { path: "^src/(core|models|optim|baselines|sgmcmc|vi|scorevi|laplace|gp|eval|diagnostics|run|methods\\.ts|index\\.ts)" },
      to: { dependencyTypes: ["core"] },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    exclude: { path: "^(dist|\\.test-build)/" },
  },
};

/**
 * Model spec strings: the saved, human-readable name of a network architecture.
 *
 * Grammar:
 * - `mlp:<w1>,<w2>,...[:<activation>]`, e.g. `mlp:400,400`, `mlp:50`, `mlp:50,50:tanh`
 * - `cnn:<c1>,<c2>,...[:<h1>,...][:<activation>]`, e.g. `cnn:32,64` (the canonical MNIST CNN),
 *   `cnn:32,64:128` (one dense hidden layer of 128 after flattening)
 * Activations: relu (default), tanh, gelu.
 */
import { cnn } from "./cnn.js";
import { mlp } from "./mlp.js";
import type { Activation, Network } from "./network.js";

const ACTIVATIONS: readonly Activation[] = ["relu", "tanh", "gelu"];

function widths(text: string, what: string, spec: string): number[] {
  if (text === "") return [];
  return text.split(",").map((t) => {
    const v = Number(t);
    if (!/^\s*\d+\s*$/.test(t) || v <= 0) {
      throw new SyntaxError(`model spec '${spec}': ${what} must be positive integers separated by commas, got '${t}'`);
    }
    return v;
  });
}

/**
 * Build a network from a spec string for the given input shape and number of outputs.
 * @throws SyntaxError naming the spec and the part that is wrong.
 */
export function networkFromSpec(spec: string, inputShape: readonly number[], outputDim: number): Network {
  const parts = spec.trim().split(":");
  const kind = parts[0];
  let act: Activation = "relu";
  if (parts.length > 1 && (ACTIVATIONS as string[]).includes(parts[parts.length - 1])) {
    act = parts.pop() as Activation;
  }
  if (kind === "mlp") {
    if (parts.length !== 2) throw new SyntaxError(`model spec '${spec}': expected mlp:<widths>[:activation], e.g. mlp:400,400`);
    return mlp({ inputShape, hidden: widths(parts[1], "hidden widths", spec), outputDim, activation: act, spec });
  }
  if (kind === "cnn") {
    if (parts.length < 2 || parts.length > 3) {
      throw new SyntaxError(`model spec '${spec}': expected cnn:<channels>[:<dense widths>][:activation], e.g. cnn:32,64`);
    }
    const channels = widths(parts[1], "conv channels", spec);
    if (channels.length === 0) throw new SyntaxError(`model spec '${spec}': a cnn needs at least one conv block`);
    const shape = inputShape.length === 3 ? inputShape : inputShape.length === 2 ? [1, ...inputShape] : null;
    if (!shape) {
      throw new RangeError(`model spec '${spec}': a cnn needs image inputs [channels, height, width], but the data have shape [${inputShape.join(", ")}]`);
    }
    return cnn({ inputShape: shape, channels, hidden: widths(parts[2] ?? "", "dense widths", spec), outputDim, activation: act, spec });
  }
  throw new SyntaxError(`model spec '${spec}': unknown model '${kind}'; expected mlp:<widths> or cnn:<channels>`);
}

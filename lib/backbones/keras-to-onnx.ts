/**
 * Converts a Keras functional model, as a tfjs-layers `model.json` holds it (topology JSON with Keras's
 * snake_case config keys, and the weights tfjs decodes), into an ONNX graph (opset 13, NCHW) that
 * onnxruntime runs: the fast engine of the built-in backbones (builtin.ts). Pure: topology and weights in,
 * `.onnx` bytes out (encoded with protobufjs, onnx-graph/proto.ts).
 *
 * Only the layers the requested outputs depend on are converted (the classifier head is dropped), so the
 * graph takes any input size the convolutions allow: input `images` `[batch, 3, H, W]`, one output per tapped
 * layer `[batch, C, h, w]`, named after the layer. Supported layers: InputLayer, Conv2D, DepthwiseConv2D,
 * BatchNormalization, ReLU (with `max_value`, i.e. ReLU6), Activation (relu, linear), ZeroPadding2D, Add,
 * Concatenate, MaxPooling2D, AveragePooling2D (TF's 'same' padding: the padded cells are left out of the mean).
 * Keras layout to ONNX: Conv2D kernels `[kh, kw, in, out]` -> `[out, in, kh, kw]`; depthwise kernels
 * `[kh, kw, C, m]` -> `[C m, 1, kh, kw]` with `group = C`; 'same' padding puts the odd cell at the end
 * (TF's rule), written as explicit pads since the input size is fixed at conversion.
 */
import { BackboneError } from './contract.js';
import { encodeModel, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from './onnx-graph/proto.js';

/** One layer of a Keras functional model as `model.json` stores it. */
export interface KerasLayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  /** `[[[inboundLayer, nodeIndex, tensorIndex, kwargs], ...]]`: one call of the layer. */
  inbound_nodes: unknown[][];
}

/** A decoded weight: row-major float32 values and the Keras shape. */
export interface KerasWeight {
  data: Float32Array;
  shape: number[];
}

/** Options of {@link kerasToOnnx}. */
export interface KerasToOnnxOptions {
  /** Layer names whose outputs the graph returns (feature maps). */
  outputs: string[];
  /** Input height and width. */
  inputSize: [number, number];
  /** Model name for messages and the ONNX doc string. */
  name: string;
}

/** The converted graph: `.onnx` bytes and each output's shape `[C, h, w]` (batch excluded). */
export interface KerasToOnnxResult {
  bytes: Uint8Array;
  outputs: { name: string; shape: [number, number, number] }[];
}

const ATTR = { FLOAT: 1, INT: 2, INTS: 7 } as const;
const FLOAT = 1;
const INT64 = 7;

/** The layer list of a tfjs-layers topology (`{ model_config: { config: { layers } } }` or `{ config: { layers } }`). */
export function kerasLayers(topology: unknown, name: string): KerasLayerJson[] {
  const t = topology as { model_config?: { config?: { layers?: unknown } }; config?: { layers?: unknown } };
  const layers = (t?.model_config ?? t)?.config?.layers;
  if (!Array.isArray(layers)) throw new BackboneError(`${name}: the model topology has no layer list (model_config.config.layers); is it a Keras functional model.json?`);
  return layers as KerasLayerJson[];
}

function inboundOf(l: KerasLayerJson, model: string): string[] {
  if (!l.inbound_nodes?.length) return [];
  if (l.inbound_nodes.length > 1) throw new BackboneError(`${model}: layer ${l.name} is called ${l.inbound_nodes.length} times (a shared layer); the ONNX conversion supports one call per layer.`);
  return (l.inbound_nodes[0] as unknown[][]).map((x) => String(x[0]));
}

const pair = (v: unknown, what: string): [number, number] => {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'number')) return [v[0] as number, v[1] as number];
  throw new BackboneError(`keras-to-onnx: ${what} must be a number or a pair, found ${JSON.stringify(v)}`);
};

/** TF padding of one spatial axis: output size and pads [begin, end] ('same': ceil(in/s), odd cell at the end). */
function padAxis(size: number, k: number, s: number, d: number, padding: string): { out: number; pads: [number, number] } {
  const ke = (k - 1) * d + 1;
  if (padding === 'valid') return { out: Math.floor((size - ke) / s) + 1, pads: [0, 0] };
  if (padding === 'same') {
    const out = Math.ceil(size / s);
    const total = Math.max(0, (out - 1) * s + ke - size);
    return { out, pads: [Math.floor(total / 2), total - Math.floor(total / 2)] };
  }
  throw new BackboneError(`keras-to-onnx: padding '${padding}' is not supported (use 'valid' or 'same')`);
}

/** The layers that `outputs` depend on, in the file's (topological) order; an unknown output is an error listing the layers. */
export function kerasSubgraph(layers: readonly KerasLayerJson[], outputs: readonly string[], model: string): KerasLayerJson[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const o of outputs) {
    if (!byName.has(o)) {
      const some = layers.map((l) => l.name);
      throw new BackboneError(`backbone ${model}: no layer '${o}' in the model. Layers include: ${some.slice(0, 12).join(', ')}, ... ${some.slice(-6).join(', ')} (${some.length} in all).`);
    }
  }
  const needed = new Set<string>();
  const stack = [...outputs];
  while (stack.length) {
    const n = stack.pop()!;
    if (needed.has(n)) continue;
    needed.add(n);
    const l = byName.get(n);
    if (!l) throw new BackboneError(`${model}: a layer's input '${n}' is not a layer of the model; the topology is damaged.`);
    stack.push(...inboundOf(l, model));
  }
  return layers.filter((l) => needed.has(l.name));
}

/**
 * A copy of a tfjs-layers topology cut down to the layers `outputs` need, with those layers as the model's
 * outputs and the input resized to `inputSize` (tfjs-layers then builds it at that size; its weights load
 * with `strict: false`). The tfjs engine of the built-in backbones uses it for other input sizes.
 */
export function prunedKerasTopology(topology: unknown, outputs: readonly string[], inputSize: [number, number], model: string): object {
  const t = structuredClone(topology) as { model_config?: { config: Record<string, unknown> }; config?: Record<string, unknown> };
  const cfg = (t.model_config ?? t).config!;
  const layers = kerasSubgraph(kerasLayers(topology, model), outputs, model).map((l) => structuredClone(l));
  for (const l of layers) {
    if (l.class_name !== 'InputLayer') continue;
    const bis = l.config['batch_input_shape'] as (number | null)[];
    l.config['batch_input_shape'] = [bis[0] ?? null, inputSize[0], inputSize[1], bis[3] ?? 3];
  }
  cfg['layers'] = layers;
  cfg['output_layers'] = outputs.map((o) => [o, 0, 0]);
  return t;
}

/**
 * Converts the part of a Keras functional model that `outputs` need into ONNX bytes (NCHW, opset 13);
 * images `[batch, 3, H, W]` -> each output `[batch, C, h, w]`. `weights` maps `layer/weight` names (as in
 * the tfjs manifest, e.g. `Conv1/kernel`) to decoded float32 values.
 */
export function kerasToOnnx(layers: readonly KerasLayerJson[], weights: ReadonlyMap<string, KerasWeight>, opts: KerasToOnnxOptions): KerasToOnnxResult {
  const model = opts.name;
  const order = kerasSubgraph(layers, opts.outputs, model);

  const [H, W] = opts.inputSize;
  const nodes: NodeProto[] = [];
  const inits: TensorProto[] = [];
  const shapes = new Map<string, [number, number, number]>(); // [C, h, w]
  let inputName = '';
  const weight = (layer: string, w: string): KerasWeight => {
    const v = weights.get(`${layer}/${w}`);
    if (!v) throw new BackboneError(`${model}: layer ${layer} needs the weight '${layer}/${w}', which the weight manifest lacks.`);
    return v;
  };
  const floatInit = (name: string, data: Float32Array, dims: number[]): string => {
    inits.push({ name, dataType: FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  };
  const intInit = (name: string, vals: number[]): string => {
    const b = new BigInt64Array(vals.map((v) => BigInt(v)));
    inits.push({ name, dataType: INT64, dims: [vals.length], rawData: new Uint8Array(b.buffer) });
    return name;
  };
  const ints = (name: string, v: number[]): AttributeProto => ({ name, type: ATTR.INTS, ints: v });
  const int = (name: string, v: number): AttributeProto => ({ name, type: ATTR.INT, i: v });
  const flt = (name: string, v: number): AttributeProto => ({ name, type: ATTR.FLOAT, f: v });
  const node = (opType: string, name: string, input: string[], output: string, attribute: AttributeProto[] = []) => {
    nodes.push({ opType, name, input, output: [output], attribute });
  };
  const tooSmall = (l: KerasLayerJson, h: number, w: number): never => {
    throw new BackboneError(`backbone ${model}: input ${H}x${W} is too small: layer ${l.name} (${l.class_name}) would output ${h}x${w}. Use a larger inputSize.`);
  };
  // Keras activations inside Conv2D/DepthwiseConv2D and the Activation layer
  const activation = (l: KerasLayerJson, act: unknown, x: string, out: string): void => {
    if (act === 'linear' || act == null) node('Identity', `${l.name}/linear`, [x], out);
    else if (act === 'relu') node('Relu', `${l.name}/relu`, [x], out);
    else throw new BackboneError(`${model}: layer ${l.name} uses activation '${String(act)}', which the ONNX conversion does not support (relu, linear). Load it with engine: 'tfjs'.`);
  };

  for (const l of order) {
    const c = l.config;
    const ins = inboundOf(l, model);
    const inShape = ins.map((n) => shapes.get(n)!);
    const x = ins[0]!;
    const s0 = inShape[0]!;
    const cls = l.class_name;
    if (cls === 'InputLayer') {
      const bis = c['batch_input_shape'] as (number | null)[] | undefined;
      if (bis && bis.length === 4 && bis[3] !== 3) throw new BackboneError(`${model}: input ${l.name} has ${bis[3]} channels; the backbones take RGB (3).`);
      inputName = l.name;
      shapes.set(l.name, [3, H, W]);
    } else if (cls === 'Conv2D' || cls === 'DepthwiseConv2D') {
      const [kh, kw] = pair(c['kernel_size'], `${l.name} kernel_size`);
      const [sh, sw] = pair(c['strides'] ?? 1, `${l.name} strides`);
      const [dh, dw] = pair(c['dilation_rate'] ?? 1, `${l.name} dilation_rate`);
      if (c['data_format'] && c['data_format'] !== 'channels_last') throw new BackboneError(`${model}: layer ${l.name} is ${String(c['data_format'])}; the conversion reads channels_last Keras models.`);
      const ph = padAxis(s0[1], kh, sh, dh, String(c['padding']));
      const pw = padAxis(s0[2], kw, sw, dw, String(c['padding']));
      if (ph.out < 1 || pw.out < 1) tooSmall(l, ph.out, pw.out);
      const cin = s0[0];
      let wOnnx: Float32Array;
      let cout: number;
      let group = 1;
      if (cls === 'Conv2D') {
        const k = weight(l.name, 'kernel');
        if (k.shape.join() !== [kh, kw, cin, k.shape[3]].join()) throw new BackboneError(`${model}: ${l.name}/kernel has shape [${k.shape.join(', ')}], expected [${kh}, ${kw}, ${cin}, filters].`);
        cout = k.shape[3]!;
        wOnnx = new Float32Array(k.data.length);
        for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let a = 0; a < cin; a++) for (let o = 0; o < cout; o++) {
          wOnnx[((o * cin + a) * kh + i) * kw + j] = k.data[((i * kw + j) * cin + a) * cout + o]!;
        }
      } else {
        const k = weight(l.name, 'depthwise_kernel');
        const m = (c['depth_multiplier'] as number | undefined) ?? 1;
        if (k.shape.join() !== [kh, kw, cin, m].join()) throw new BackboneError(`${model}: ${l.name}/depthwise_kernel has shape [${k.shape.join(', ')}], expected [${kh}, ${kw}, ${cin}, ${m}].`);
        cout = cin * m;
        group = cin;
        wOnnx = new Float32Array(k.data.length);
        for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) for (let a = 0; a < cin; a++) for (let q = 0; q < m; q++) {
          wOnnx[((a * m + q) * kh + i) * kw + j] = k.data[((i * kw + j) * cin + a) * m + q]!;
        }
      }
      const inputs = [x, floatInit(`${l.name}/W`, wOnnx, [cout, cin / group, kh, kw])];
      if (c['use_bias']) {
        const b = weight(l.name, 'bias');
        if (b.data.length !== cout) throw new BackboneError(`${model}: ${l.name}/bias has ${b.data.length} values for ${cout} filters.`);
        inputs.push(floatInit(`${l.name}/B`, b.data, [cout]));
      }
      const act = c['activation'];
      const convOut = act === 'linear' || act == null ? l.name : `${l.name}/conv`;
      node('Conv', l.name, inputs, convOut, [
        ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('dilations', [dh, dw]), int('group', group),
        ints('pads', [ph.pads[0], pw.pads[0], ph.pads[1], pw.pads[1]]),
      ]);
      if (convOut !== l.name) activation(l, act, convOut, l.name);
      shapes.set(l.name, [cout, ph.out, pw.out]);
    } else if (cls === 'BatchNormalization') {
      const axis = c['axis'];
      if (axis !== -1 && axis !== 3 && !(Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3))) {
        throw new BackboneError(`${model}: layer ${l.name} normalises axis ${JSON.stringify(axis)}; only the channel axis (-1 or 3) is supported.`);
      }
      const C = s0[0];
      const ones = new Float32Array(C).fill(1);
      const gamma = c['scale'] === false ? ones : weight(l.name, 'gamma').data;
      const beta = c['center'] === false ? new Float32Array(C) : weight(l.name, 'beta').data;
      const mean = weight(l.name, 'moving_mean').data;
      const variance = weight(l.name, 'moving_variance').data;
      for (const [nm, v] of [['gamma', gamma], ['beta', beta], ['moving_mean', mean], ['moving_variance', variance]] as const) {
        if (v.length !== C) throw new BackboneError(`${model}: ${l.name}/${nm} has ${v.length} values for ${C} channels.`);
      }
      node('BatchNormalization', l.name, [
        x, floatInit(`${l.name}/scale`, gamma, [C]), floatInit(`${l.name}/bias`, beta, [C]),
        floatInit(`${l.name}/mean`, mean, [C]), floatInit(`${l.name}/var`, variance, [C]),
      ], l.name, [flt('epsilon', (c['epsilon'] as number | undefined) ?? 1e-3)]);
      shapes.set(l.name, s0);
    } else if (cls === 'ReLU') {
      const slope = (c['negative_slope'] as number | undefined) ?? 0;
      const threshold = (c['threshold'] as number | undefined) ?? 0;
      if (slope !== 0 || threshold !== 0) throw new BackboneError(`${model}: layer ${l.name} is a ReLU with negative_slope ${slope} and threshold ${threshold}; only 0 and 0 are supported.`);
      const mx = c['max_value'] as number | null | undefined;
      if (mx != null) node('Clip', l.name, [x, floatInit(`${l.name}/min`, new Float32Array([0]), []), floatInit(`${l.name}/max`, new Float32Array([mx]), [])], l.name);
      else node('Relu', l.name, [x], l.name);
      shapes.set(l.name, s0);
    } else if (cls === 'Activation') {
      activation(l, c['activation'], x, l.name);
      shapes.set(l.name, s0);
    } else if (cls === 'ZeroPadding2D') {
      const p = c['padding'];
      let t: number, b: number, lf: number, r: number;
      if (typeof p === 'number') [t, b, lf, r] = [p, p, p, p];
      else if (Array.isArray(p) && typeof p[0] === 'number') [t, b, lf, r] = [p[0] as number, p[0] as number, p[1] as number, p[1] as number];
      else [[t, b], [lf, r]] = p as [[number, number], [number, number]];
      node('Pad', l.name, [x, intInit(`${l.name}/pads`, [0, 0, t, lf, 0, 0, b, r])], l.name, []);
      shapes.set(l.name, [s0[0], s0[1] + t + b, s0[2] + lf + r]);
    } else if (cls === 'Add') {
      if (inShape.some((s) => s.join() !== s0.join())) throw new BackboneError(`${model}: layer ${l.name} adds maps of shapes ${inShape.map((s) => `[${s.join(', ')}]`).join(' and ')}.`);
      node(ins.length === 2 ? 'Add' : 'Sum', l.name, ins, l.name);
      shapes.set(l.name, s0);
    } else if (cls === 'Concatenate') {
      const axis = c['axis'] as number;
      if (axis !== -1 && axis !== 3) throw new BackboneError(`${model}: layer ${l.name} concatenates axis ${axis}; only the channel axis (-1 or 3) is supported.`);
      if (inShape.some((s) => s[1] !== s0[1] || s[2] !== s0[2])) throw new BackboneError(`${model}: layer ${l.name} concatenates maps of different sizes at input ${H}x${W}.`);
      node('Concat', l.name, ins, l.name, [int('axis', 1)]);
      shapes.set(l.name, [inShape.reduce((a, s) => a + s[0], 0), s0[1], s0[2]]);
    } else if (cls === 'MaxPooling2D' || cls === 'AveragePooling2D') {
      const [kh, kw] = pair(c['pool_size'], `${l.name} pool_size`);
      const [sh, sw] = pair(c['strides'] ?? [kh, kw], `${l.name} strides`);
      const ph = padAxis(s0[1], kh, sh, 1, String(c['padding']));
      const pw = padAxis(s0[2], kw, sw, 1, String(c['padding']));
      if (ph.out < 1 || pw.out < 1) tooSmall(l, ph.out, pw.out);
      const attrs = [ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('pads', [ph.pads[0], pw.pads[0], ph.pads[1], pw.pads[1]])];
      if (cls === 'AveragePooling2D') attrs.push(int('count_include_pad', 0));
      node(cls === 'MaxPooling2D' ? 'MaxPool' : 'AveragePool', l.name, [x], l.name, attrs);
      shapes.set(l.name, [s0[0], ph.out, pw.out]);
    } else {
      throw new BackboneError(`${model}: layer ${l.name} is a ${cls}, which the ONNX conversion does not support; tap an earlier layer or load it with engine: 'tfjs'.`);
    }
  }
  if (!inputName) throw new BackboneError(`${model}: the tapped layers do not depend on an InputLayer.`);
  const outputs = opts.outputs.map((name) => {
    const s = shapes.get(name)!;
    return { name, shape: s };
  });
  const tensorInfo = (name: string, dims: (number | string)[]): ValueInfoProto => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  });
  // the input layer's tensor is the graph input
  const graph = {
    name: model,
    node: nodes,
    initializer: inits,
    input: [tensorInfo(inputName, ['batch', 3, H, W])],
    output: outputs.map((o) => tensorInfo(o.name, ['batch', ...o.shape])),
  };
  const bytes = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    producerName: 'brainnet keras-to-onnx',
    docString: `${model}: layers ${opts.outputs.join(', ')} of a Keras model, input ${H}x${W}`,
    graph,
  });
  return { bytes, outputs };
}

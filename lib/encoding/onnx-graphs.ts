/**
 * The ONNX graphs of the encoder's host training step (onnx-step.ts): pure functions from the model's
 * sizes to `.onnx` bytes, run by onnxruntime's CPU provider (native SIMD, every core). Three graphs,
 * with the paper's symbols (model.ts) and the weights as inputs, so one session serves every step:
 *
 * - `selectorsForward`: the three selector MLPs on the constant position encoding pe [N, 192]; the
 *   first layers are one matmul pe @ [W1_space | W1_layer | W1_scale] [192, 3H]. Outputs the logits
 *   and the pre-activations z1 [N, 3H], z2 (3 x [N, H]) that the backward pass needs.
 * - `forward`: the bottlenecks (local tokens x_l [B, C_l, P] -> T_l [B, P, D], global g_l [B, C_l] ->
 *   G_l [B, D]) and the read-out's cell matmuls: head.ts groups the vertices by the bilinear cell
 *   their (x, y) falls in; the vertices of cell c read the same 4 corner tokens and the global token of
 *   every image and layer (K = B * 5 * L rows of the token table, gathered by index), so
 *   Y_c = W_c M_c is one plain matmul per cell. A cell with no vertex runs on 0 rows.
 * - `backward`: everything after the read-out's mixing (which runs in JavaScript): the cells'
 *   gradients, the bottlenecks' and the selector MLPs' weight gradients (GELU' = Phi(z) + z phi(z),
 *   recomputed from z). Sums are matmuls with ones or fixed slices (no scatter, no atomics): a run is
 *   deterministic for a given thread count. Across thread counts the last bits can move (MLAS blocks a
 *   matmul's inner dimension by the output width each thread gets).
 */
import { encodeModel, type AttributeProto, type NodeProto, type TensorProto, type ValueInfoProto } from '../backbones/onnx-graph/proto.js';

const FLOAT = 1;
const INT64 = 7;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;
/** Attributes that ONNX declares as floats (every other number is an int). */
const FLOAT_ATTRS = new Set(['alpha', 'beta']);

/** A small ONNX graph builder: inputs, nodes with generated output names, int64/float constants, outputs. */
class Graph {
  private readonly nodes: NodeProto[] = [];
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly inits: TensorProto[] = [];
  private count = 0;
  /** Values renamed by `output` (old name -> graph output name). */
  private readonly alias = new Map<string, string>();

  constructor(private readonly name: string) {}

  input(name: string, dims: (number | string)[], elemType = FLOAT): string {
    this.inputs.push(valueInfo(name, dims, elemType));
    return name;
  }

  /** Adds a node; returns its output's name (`out` when given). */
  op(opType: string, input: string[], attrs: Record<string, number | number[]> = {}): string {
    return this.opN(opType, input, 1, attrs)[0]!;
  }

  /** Adds a node with `n` outputs; returns their names. */
  opN(opType: string, input: string[], n: number, attrs: Record<string, number | number[]> = {}): string[] {
    const outs = Array.from({ length: n }, () => `v${this.count++}`);
    const attribute: AttributeProto[] = Object.entries(attrs).map(([name, v]) =>
      Array.isArray(v) ? { name, type: ATTR_INTS, ints: v } : FLOAT_ATTRS.has(name) ? { name, type: ATTR_FLOAT, f: v } : { name, type: ATTR_INT, i: v });
    this.nodes.push({ opType, input: input.map((i) => this.alias.get(i) ?? i), output: outs, name: `${opType}_${this.nodes.length}`, attribute });
    return outs;
  }

  ints(values: number[]): string {
    const name = `c${this.count++}`;
    const b = new BigInt64Array(values.map((v) => BigInt(v)));
    this.inits.push({ name, dataType: INT64, dims: [values.length], rawData: new Uint8Array(b.buffer) });
    return name;
  }

  zeros(dims: number[]): string {
    const name = `c${this.count++}`;
    const n = dims.reduce((a, b) => a * b, 1);
    this.inits.push({ name, dataType: FLOAT, dims, rawData: new Uint8Array(new Float32Array(n).buffer) });
    return name;
  }

  scalar(value: number): string {
    const name = `c${this.count++}`;
    this.inits.push({ name, dataType: FLOAT, dims: [], rawData: new Uint8Array(Float32Array.of(value).buffer) });
    return name;
  }

  /** Marks `value` as a graph output named `name`: the node that makes it is renamed (no copy). */
  output(name: string, value: string, dims: (number | string)[]): void {
    if (value !== name) {
      const maker = this.nodes.find((n) => n.output?.includes(value));
      if (!maker || this.inputs.some((i) => i.name === value)) throw new Error(`onnx graph ${this.name}: output ${name} must be made by a node`);
      maker.output = maker.output!.map((o) => (o === value ? name : o));
      for (const n of this.nodes) n.input = n.input?.map((i) => (i === value ? name : i));
      this.alias.set(value, name);
    }
    this.outputs.push(valueInfo(name, dims));
  }

  encode(): Uint8Array {
    return encodeModel({
      irVersion: 9,
      opsetImport: [{ domain: '', version: 20 }],
      producerName: 'brainnet',
      docString: `brainnet encoder host step: ${this.name}`,
      graph: { name: this.name, node: this.nodes, input: this.inputs, output: this.outputs, initializer: this.inits },
    });
  }
}

function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): ValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } };
}

/** Sizes the graphs are built for. */
export interface GraphDims {
  /** Position-encoding width (192). */
  peDim: number;
  /** Hidden width H of the selector MLPs. */
  hidden: number;
  /** Layers L (the layer selector's outputs). */
  layers: number;
  /** Token widths C_l. */
  widths: number[];
  /** Bottleneck width D. */
  dim: number;
  /** Grid cells of the read-out, (g + 1)^2. */
  cells: number;
  /** Vertices of each row chunk of the selector graphs (see {@link selectorChunks}). */
  chunks: number[];
}

/** The three selector MLPs. */
export const SELECTORS = ['space', 'layer', 'scale'] as const;

/** Output widths of the selector MLPs: space 2, layer L, scale 1. */
export function selectorOutputs(layers: number): [number, number, number] {
  return [2, layers, 1];
}

/**
 * Row chunks of the selector graphs: N vertices in pieces of about `rows` (4096). The MLPs are per
 * vertex, so each chunk runs its whole chain of element-wise ops while its [rows, H] activations are
 * in cache (one pass over [N, H] per op otherwise: memory-bound at the paper's size); the weight
 * gradients are summed over chunks in a fixed order.
 */
export function selectorChunks(n: number, rows = 4096): number[] {
  const k = Math.max(1, Math.round(n / rows));
  return Array.from({ length: k }, (_, i) => Math.floor(((i + 1) * n) / k) - Math.floor((i * n) / k));
}

/**
 * Selector MLPs k (space, layer, scale), per row chunk c: pe_c [n_c, 192], w1_k [192, H], b1_k [H],
 * w2_k [H, H], b2_k [H], w3_k [H, o_k] -> z1_k_c = pe_c w1_k + b1_k, z2_k_c = GELU(z1_k_c) w2_k + b2_k
 * [n_c, H] and o_k_c = GELU(z2_k_c) w3_k [n_c, o_k] (the logits).
 */
export function selectorsForwardGraph(d: GraphDims): Uint8Array {
  const g = new Graph('selectors_forward');
  const H = d.hidden;
  const w = selectorOutputs(d.layers).map((o, k) => {
    const s = SELECTORS[k]!;
    return {
      w1: g.input(`w1_${s}`, [d.peDim, H]), b1: g.input(`b1_${s}`, [H]), w2: g.input(`w2_${s}`, [H, H]), b2: g.input(`b2_${s}`, [H]), w3: g.input(`w3_${s}`, [H, o]),
    };
  });
  d.chunks.forEach((n, c) => {
    const pe = g.input(`pe_${c}`, [n, d.peDim]);
    selectorOutputs(d.layers).forEach((o, k) => {
      const s = SELECTORS[k]!;
      const z1 = g.op('Gemm', [pe, w[k]!.w1, w[k]!.b1]);
      g.output(`z1_${s}_${c}`, z1, [n, H]);
      const z2 = g.op('Gemm', [g.op('Gelu', [z1]), w[k]!.w2, w[k]!.b2]);
      g.output(`z2_${s}_${c}`, z2, [n, H]);
      g.output(`o_${s}_${c}`, g.op('MatMul', [g.op('Gelu', [z2]), w[k]!.w3]), [n, o]);
    });
  });
  return g.encode();
}

/** The bottlenecks: x_l [B, C_l, P] -> T_l = x_l^T wl_l [B, P, D]; g_l [B, C_l] -> G_l = g_l wg_l [B, D]; as the row table TG. */
function bottlenecks(g: Graph, d: GraphDims): string {
  const t: string[] = [];
  const gt: string[] = [];
  d.widths.forEach((c, l) => {
    t.push(g.op('MatMul', [g.op('Transpose', [g.input(`x${l}`, ['b', c, 'p'])], { perm: [0, 2, 1] }), g.input(`wl${l}`, [c, d.dim])]));
    gt.push(g.op('MatMul', [g.input(`g${l}`, ['b', c]), g.input(`wg${l}`, [c, d.dim])]));
  });
  const rows = g.op('Reshape', [g.op('Concat', t, { axis: 0 }), g.ints([-1, d.dim])]); // [L B P, D], row (l B + b) P + pos
  return g.op('Concat', [rows, g.op('Concat', gt, { axis: 0 }), g.zeros([1, d.dim])], { axis: 0 }); // + [L B, D] rows, + a zero row
}

/**
 * One cell's inputs: vertex weights w_c [r_c, D], the token rows idx_c [K] its columns (b, j, l) read,
 * the read-out weights a_c [5 L, r_c] (A[n, (j, l)] = corner-or-scale weight j times p[n, l], over D;
 * vertices innermost) and the shapes [B, 5 L, r_c] and [K, r_c].
 */
function cellInputs(g: Graph, d: GraphDims, c: number): { w: string; idx: string; a: string; shape3: string; shape2: string } {
  return {
    w: g.input(`w${c}`, [`r${c}`, d.dim]),
    idx: g.input(`idx${c}`, ['k'], INT64),
    a: g.input(`a${c}`, [5 * d.layers, `r${c}`]),
    shape3: g.input(`shape3_${c}`, [3], INT64),
    shape2: g.input(`shape2_${c}`, [2], INT64),
  };
}

/** Y_c^T = TG[idx_c] w_c^T [K, r_c], as [B, 5 L, r_c], and the gathered token rows M_c^T = TG[idx_c] [K, D]. */
function cellProducts(g: Graph, tg: string, x: ReturnType<typeof cellInputs>): { y: string; m: string } {
  const m = g.op('Gather', [tg, x.idx], { axis: 0 });
  return { m, y: g.op('Reshape', [g.op('Gemm', [m, x.w], { transB: 1 }), x.shape3], { allowzero: 1 }) };
}

/**
 * Forward of the bottlenecks and the read-out: x_l, g_l, wl_l, wg_l; per cell c (r_c vertices) the
 * inputs of {@link cellInputs} -> TG [L B (P + 1) + 1, D] (T rows (l B + b) P + pos, then G rows, then a
 * zero row) and pred_c [B, r_c] = sum_(j, l) A_c[(j, l), :] Y_c^T[b, (j, l), :] (no bias). The vertices
 * are innermost so that the per-vertex weighting is a broadcast over long rows.
 */
export function forwardGraph(d: GraphDims): Uint8Array {
  const g = new Graph('forward');
  const tg = bottlenecks(g, d);
  g.output('tg', tg, ['rows', d.dim]);
  const one = g.ints([1]);
  for (let c = 0; c < d.cells; c++) {
    const x = cellInputs(g, d, c);
    const { y } = cellProducts(g, tg, x);
    g.output(`pred${c}`, g.op('ReduceSum', [g.op('Mul', [y, x.a]), one], { keepdims: 0 }), ['b', `r${c}`]);
  }
  return g.encode();
}

/**
 * The read-out's and the bottlenecks' gradients: TG, x_l, g_l, per cell the inputs of
 * {@link cellInputs} and dy_c [B, 1, r_c] (the prediction's gradient) -> per cell dA_c [5 L, r_c]
 * (`da_c`, the gradient of the read-out weights) and dW_c = dY_c^T M_c^T [r_c, D] (`dwc_c`), and dwl_l,
 * dwg_l. dM_c^T = dY_c^T w_c [K, D] is summed into dT [L, B, P, D] and dG [L, B, D] without a scatter:
 * cells form a (g+1) x (g+1) grid, corner j of cell (cy, cx) is grid position (cy - 1 + dy_j,
 * cx - 1 + dx_j), so each corner's gradients are one g x g window of the cell grid, and the global
 * token's are the sum over all cells (a matmul with ones).
 */
export function headBackwardGraph(d: GraphDims): Uint8Array {
  const g = new Graph('head_backward');
  const side = Math.round(Math.sqrt(d.cells));
  const gs = side - 1;
  const L = d.layers;
  const tg = g.input('tg', ['rows', d.dim]);
  const zero = g.ints([0]);
  const dm: string[] = [];
  for (let c = 0; c < d.cells; c++) {
    const x = cellInputs(g, d, c);
    const { y, m } = cellProducts(g, tg, x);
    const dy = g.input(`dy${c}`, ['b', 1, `r${c}`]);
    g.output(`da${c}`, g.op('ReduceSum', [g.op('Mul', [y, dy]), zero], { keepdims: 0 }), [5 * L, `r${c}`]);
    const dyt = g.op('Reshape', [g.op('Mul', [dy, x.a]), x.shape2], { allowzero: 1 }); // dY_c^T [K, r]
    g.output(`dwc${c}`, g.op('Gemm', [dyt, m], { transA: 1 }), [`r${c}`, d.dim]);
    dm.push(g.op('MatMul', [dyt, x.w]));
  }
  const grid = g.op('Reshape', [g.op('Concat', dm, { axis: 0 }), g.ints([side, side, -1, 5, L, d.dim])]); // [cy, cx, b, j, l, D]
  const corners = [[0, 0], [0, 1], [1, 0], [1, 1]].map(([dy, dx], j) =>
    g.op('Slice', [grid, g.ints([1 - dy!, 1 - dx!, j]), g.ints([1 - dy! + gs, 1 - dx! + gs, j + 1]), g.ints([0, 1, 3])]));
  const sum = g.op('Add', [g.op('Add', [corners[0]!, corners[1]!]), g.op('Add', [corners[2]!, corners[3]!])]); // [y, x, b, 1, l, D]
  const dTall = g.op('Reshape', [g.op('Transpose', [sum], { perm: [4, 2, 0, 1, 3, 5] }), g.ints([L, -1, d.dim])]); // [l, b y x, D]
  const glob = g.op('Reshape', [g.op('Slice', [grid, g.ints([4]), g.ints([5]), g.ints([3])]), g.ints([d.cells, -1])]); // [cells, b l D]
  const dGall = g.op('Reshape', [g.op('MatMul', [g.input('ones_cells', [1, d.cells]), glob]), g.ints([-1, L, d.dim])]); // [b, l, D]
  const dT = g.opN('Split', [dTall, g.ints(Array(L).fill(1))], L, { axis: 0 }).map((t) => g.op('Reshape', [t, g.ints([-1, d.dim])])); // [B P, D]
  const dG = g.opN('Split', [dGall, g.ints(Array(L).fill(1))], L, { axis: 1 }).map((t) => g.op('Reshape', [t, g.ints([-1, d.dim])])); // [B, D]
  d.widths.forEach((c, l) => {
    const xt = g.op('Reshape', [g.op('Transpose', [g.input(`x${l}`, ['b', c, 'p'])], { perm: [1, 0, 2] }), g.ints([c, -1])]); // [C, B P]
    g.output(`dwl${l}`, g.op('MatMul', [xt, dT[l]!]), [c, d.dim]);
    g.output(`dwg${l}`, g.op('Gemm', [g.input(`g${l}`, ['b', c]), dG[l]!], { transA: 1 }), [c, d.dim]);
  });
  return g.encode();
}

/** 2 GELU'(z) = 1 + erf(z / sqrt 2) + sqrt(2 / pi) z exp(-z^2 / 2) (GELU'(z) = Phi(z) + z phi(z)), in 7 element-wise ops. */
function geluGrad2(g: Graph, z: string): string {
  const zs = g.op('Mul', [z, g.scalar(Math.SQRT1_2)]);
  const ex = g.op('Exp', [g.op('Sub', [g.scalar(Math.log(2 / Math.sqrt(Math.PI))), g.op('Mul', [zs, zs])])]); // (2 / sqrt pi) exp(-zs^2)
  return g.op('Sum', [g.op('Erf', [zs]), g.op('Mul', [zs, ex]), g.scalar(1)]);
}

/**
 * The selector MLPs' weight gradients, per row chunk c: pe_c, ones_c [1, n_c], z1_k_c, z2_k_c, do_k_c
 * [n_c, o_k] (the logits' gradients), w2_k, w3_k -> dw1_k, db1_k [1, H], dw2_k, db2_k [1, H], dw3_k,
 * summed over the chunks in order. dz = dh * 2 GELU'(z), so the products with dz carry alpha 0.5.
 */
export function selectorsBackwardGraph(d: GraphDims): Uint8Array {
  const g = new Graph('selectors_backward');
  const H = d.hidden;
  const partial = new Map<string, string[]>();
  const add = (name: string, v: string) => partial.set(name, [...(partial.get(name) ?? []), v]);
  const w = selectorOutputs(d.layers).map((o, k) => ({ w2: g.input(`w2_${SELECTORS[k]}`, [H, H]), w3: g.input(`w3_${SELECTORS[k]}`, [H, o]) }));
  d.chunks.forEach((n, c) => {
    const pe = g.input(`pe_${c}`, [n, d.peDim]);
    const ones = g.input(`ones_${c}`, [1, n]);
    selectorOutputs(d.layers).forEach((o, k) => {
      const s = SELECTORS[k]!;
      const z1 = g.input(`z1_${s}_${c}`, [n, H]);
      const z2 = g.input(`z2_${s}_${c}`, [n, H]);
      const dout = g.input(`do_${s}_${c}`, [n, o]);
      add(`dw3_${s}`, g.op('Gemm', [g.op('Gelu', [z2]), dout], { transA: 1 }));
      const dz2 = g.op('Mul', [g.op('Gemm', [dout, w[k]!.w3], { transB: 1 }), geluGrad2(g, z2)]);
      add(`dw2_${s}`, g.op('Gemm', [g.op('Gelu', [z1]), dz2], { transA: 1, alpha: 0.5 }));
      add(`db2_${s}`, g.op('Gemm', [ones, dz2], { alpha: 0.5 }));
      const dz1 = g.op('Mul', [g.op('Gemm', [dz2, w[k]!.w2], { transB: 1, alpha: 0.5 }), geluGrad2(g, z1)]);
      add(`dw1_${s}`, g.op('Gemm', [pe, dz1], { transA: 1, alpha: 0.5 }));
      add(`db1_${s}`, g.op('Gemm', [ones, dz1], { alpha: 0.5 }));
    });
  });
  selectorOutputs(d.layers).forEach((o, k) => {
    const s = SELECTORS[k]!;
    const dims: Record<string, number[]> = { dw1: [d.peDim, H], db1: [1, H], dw2: [H, H], db2: [1, H], dw3: [H, o] };
    for (const [name, shape] of Object.entries(dims)) {
      const parts = partial.get(`${name}_${s}`)!;
      g.output(`${name}_${s}`, parts.length === 1 ? parts[0]! : parts.reduce((acc, p) => g.op('Add', [acc, p])), shape);
    }
  });
  return g.encode();
}

/** A plain matmul a [m, k] @ b [k, n] -> c (the benchmark's onnxruntime peak). */
export function matmulGraph(): Uint8Array {
  const g = new Graph('matmul');
  g.output('c', g.op('MatMul', [g.input('a', ['m', 'k']), g.input('b', ['k', 'n'])]), ['m', 'n']);
  return g.encode();
}

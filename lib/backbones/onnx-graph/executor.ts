/**
 * Differentiable execution of an ONNX graph as tfjs ops.
 *
 * At load time the graph is folded once: every node whose inputs are all constants (or that
 * reads only the static shape of a tensor: Shape, Size) becomes a constant, given the declared
 * static input shapes. To learn the shapes of dynamic tensors, load runs the graph once on zeros.
 * What remains runs in `run()` as tfjs ops inside tf.tidy, so tf.grad / tf.grads / tf.valueAndGrads
 * work through it; intermediates are disposed as soon as their last consumer has run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FileFormatError } from '../../io/errors.js';
import { decodeModel, int64, ModelProto, NodeProto, ONNX_DTYPE, ValueInfoProto } from './proto.js';
import { HostTensor, hostDtypeOf, tensorFromProto, fromTf, sizeOf } from './host.js';
import { OPS } from './ops/index.js';
import { Attrs, OpContext, OpFn } from './ops/types.js';

/** Oldest and newest default-domain opsets the executor accepts. */
export const MIN_OPSET = 13;
export const MAX_OPSET = 18;

/** A graph input or output: name, static shape and ONNX element type name. */
export interface OnnxValueInfo { name: string; shape: number[]; dtype: string }

export interface LoadOnnxGraphOptions {
  /** Static shapes for inputs whose declared shapes have symbolic dims (e.g. batch). */
  inputShapes?: Record<string, number[]>;
  /** For an input with symbolic dims that inputShapes does not name: its static shape from its declared one (-1 = symbolic), or undefined for the usual error. */
  fallbackShape?: (input: string, declared: number[]) => number[] | undefined;
}

interface PlanNode { node: NodeProto; where: string; attrs: Attrs; inputs: string[]; outputs: string[]; cache: Map<string, tf.Tensor>; fn?: OpFn }

/** A loaded, folded ONNX graph that runs as differentiable tfjs ops. */
export class OnnxGraph {
  private disposed = false;
  private constructor(
    /** Graph inputs (non-initializer), with the static shapes the graph was folded for. */
    readonly inputs: OnnxValueInfo[],
    /** Graph outputs with the shapes found at load time. */
    readonly outputs: OnnxValueInfo[],
    /** Nodes left after folding, in topological order. */
    private readonly plan: PlanNode[],
    /** Load-time constants (initializers and folded values), as host arrays. */
    private readonly consts: Map<string, HostTensor>,
    /** tf.Tensor copies of the constants that dynamic nodes consume (kept until dispose). */
    private readonly constTensors: Map<string, tf.Tensor>,
    /** The model's default-domain opset. */
    readonly opset: number,
    /** How many nodes the file had, and how many folding removed. */
    readonly stats: { nodes: number; folded: number; remaining: number; opTypes: Record<string, number> },
  ) {}

  /** Loads and folds a decoded model; see `loadOnnxGraph`. */
  static fromModel(model: ModelProto, file: string, opts: LoadOnnxGraphOptions = {}): OnnxGraph {
    const g = model.graph;
    if (!g) throw new FileFormatError(file, 'an ONNX ModelProto with a graph', 'no graph', 'export the model again with torch.onnx.export');
    // 1. opset
    const imp = (model.opsetImport ?? []).find((o) => !o.domain || o.domain === 'ai.onnx');
    const opset = imp ? int64(imp.version) : 0;
    if (opset < MIN_OPSET || opset > MAX_OPSET) {
      throw new FileFormatError(file, `an ONNX model with default-domain opset ${MIN_OPSET}-${MAX_OPSET}`, `opset ${opset}`,
        opset < MIN_OPSET ? `re-export with torch.onnx.export(..., opset_version=17), or convert with onnx.version_converter.convert_version(model, 17)`
          : `convert with onnx.version_converter.convert_version(model, ${MAX_OPSET})`);
    }
    // 2. every op must be known, before anything runs
    const nodes = g.node ?? [];
    nodes.forEach((n, i) => {
      const dom = n.domain ?? '';
      if ((dom && dom !== 'ai.onnx') || !OPS[n.opType]) {
        throw new FileFormatError(file, 'only supported ONNX ops', `unsupported op ${dom ? dom + '.' : ''}${n.opType} at node '${n.name || '#' + i}'`, 'export without that op, or add it to lib/backbones/onnx-graph/ops');
      }
    });
    // 3. constants
    const dir = path.dirname(path.resolve(file));
    const consts = new Map<string, HostTensor>();
    for (const t of g.initializer ?? []) consts.set(t.name ?? '', tensorFromProto(t, dir, file));
    // 4. inputs and their static shapes
    const inputs: OnnxValueInfo[] = [];
    for (const vi of g.input ?? []) {
      if (consts.has(vi.name)) continue;
      let declared = dimsOf(vi);
      const given = opts.inputShapes?.[vi.name];
      let shape: number[];
      if (given) {
        if (given.length !== declared.length || given.some((d, i) => declared[i]! > 0 && declared[i] !== d)) {
          throw new FileFormatError(file, `input '${vi.name}' of shape [${declared.map((d) => (d > 0 ? d : '?'))}]`, `inputShapes['${vi.name}'] = [${given}]`, 'give a shape that matches the declared one');
        }
        shape = given;
      } else {
        const fb = declared.some((d) => d <= 0) ? opts.fallbackShape?.(vi.name, declared.map((d) => (d > 0 ? d : -1))) : undefined;
        if (fb && (fb.length !== declared.length || fb.some((d, i) => declared[i]! > 0 && declared[i] !== d))) {
          throw new FileFormatError(file, `input '${vi.name}' of shape [${declared.map((d) => (d > 0 ? d : '?'))}]`, `the fallback shape [${fb}]`, 'pass inputShapes for this input');
        }
        if (fb) declared = fb;
        if (declared.some((d) => d <= 0)) {
          throw new FileFormatError(file, `static shapes for all inputs`, `input '${vi.name}' has shape [${declared.map((d) => (d > 0 ? d : '?'))}]`, `pass loadOnnxGraph(path, { inputShapes: { '${vi.name}': [...] } })`);
        }
        shape = declared;
      }
      inputs.push({ name: vi.name, shape, dtype: ONNX_DTYPE[vi.type?.tensorType?.elemType ?? 1] ?? 'float32' });
    }
    const known = new Set(inputs.map((i) => i.name));
    for (const i of inputs) known.add(i.name);
    for (const name of consts.keys()) known.add(name);
    // 5. fold: a trial run on zeros, node by node
    const plan: PlanNode[] = [];
    const opTypes: Record<string, number> = {};
    const trial = new Map<string, tf.Tensor>();
    const shapes = new Map<string, number[]>();
    const constTf = new Map<string, tf.Tensor>();
    const lastUse = new Map<string, number>();
    nodes.forEach((n, i) => (n.input ?? []).forEach((x) => x && lastUse.set(x, i)));
    const tfConst = (name: string) => {
      let t = constTf.get(name);
      if (!t) { const h = consts.get(name)!; t = tf.keep(tf.tensor(h.data, h.shape, h.dtype)); constTf.set(name, t); }
      return t;
    };
    try {
      for (const i of inputs) {
        shapes.set(i.name, i.shape);
        const dt = hostDtypeOf(ONNX_TYPE_CODE[i.dtype] ?? 1);
        trial.set(i.name, tf.keep(tf.zeros(i.shape, dt)));
      }
      nodes.forEach((n, idx) => {
        const where = `${n.opType} '${n.name || '#' + idx}'`;
        const ins = n.input ?? [];
        const outs = n.output ?? [];
        for (const x of ins) if (x && !known.has(x)) throw new FileFormatError(file, 'a topologically sorted graph', `${where} reads '${x}' before it is produced`);
        const pn: PlanNode = { node: n, where, attrs: new Attrs(n.attribute, where), inputs: ins, outputs: outs, cache: new Map() };
        const allConst = ins.every((x) => !x || consts.has(x));
        const shapeOnly = n.opType === 'Shape' || n.opType === 'Size';
        const vals = ins.map((x) => (!x ? null : consts.has(x) ? tfConst(x) : trial.get(x)!));
        const res = tf.tidy(() => runNode(pn, vals, consts, opset));
        outs.forEach((o, k) => {
          known.add(o);
          const t = res[k];
          if (!t || !o) { t?.dispose(); return; }
          shapes.set(o, t.shape.slice());
          if (allConst || shapeOnly) { consts.set(o, fromTf(t)); t.dispose(); }
          else trial.set(o, t);
        });
        for (let k = outs.length; k < res.length; k++) res[k]!.dispose();
        if (!(allConst || shapeOnly)) {
          plan.push(pn);
          opTypes[n.opType] = (opTypes[n.opType] ?? 0) + 1;
        } else {
          // folded: a per-node cache made while folding is not needed any more
          for (const t of pn.cache.values()) t.dispose();
          pn.cache.clear();
        }
        for (const x of ins) if (x && lastUse.get(x) === idx && trial.has(x)) { trial.get(x)!.dispose(); trial.delete(x); }
      });
      const foldedCount = nodes.length - plan.length;
      const graphOutputs = new Set((g.output ?? []).map((o) => o.name));
      fuseGroupNorm(plan, consts, shapes, graphOutputs, opTypes);
      const outputs: OnnxValueInfo[] = (g.output ?? []).map((vi) => ({ name: vi.name, shape: shapes.get(vi.name) ?? consts.get(vi.name)?.shape ?? trial.get(vi.name)?.shape ?? dimsOf(vi), dtype: ONNX_DTYPE[vi.type?.tensorType?.elemType ?? 1] ?? 'float32' }));
      // keep only the constant tensors that dynamic nodes read
      const needed = new Set<string>();
      for (const p of plan) for (const x of p.inputs) if (x && consts.has(x)) needed.add(x);
      for (const [k, t] of constTf) if (!needed.has(k)) { t.dispose(); constTf.delete(k); }
      for (const k of needed) tfConst(k);
      // large constants (weights) live once, as tf tensors: drop their host copies
      for (const k of needed) {
        const h = consts.get(k)!;
        if (h.data.length > HOST_COPY_LIMIT) consts.set(k, { dtype: h.dtype, shape: h.shape, data: EMPTY[h.dtype], onDevice: true } as HostTensor);
      }
      return new OnnxGraph(inputs, outputs, plan, consts, constTf, opset, { nodes: nodes.length, folded: foldedCount, remaining: plan.length, opTypes });
    } catch (e) {
      for (const t of constTf.values()) t.dispose();
      for (const p of plan) for (const t of p.cache.values()) t.dispose();
      throw e;
    } finally {
      for (const t of trial.values()) t.dispose();
    }
  }

  /**
   * Runs the graph on `feeds` (name -> tensor of the declared static shape) and returns the
   * requested outputs (all by default). Differentiable: call it inside tf.grad / tf.grads.
   */
  run(feeds: Record<string, tf.Tensor>, outputNames?: string[]): Record<string, tf.Tensor> {
    if (this.disposed) throw new Error('OnnxGraph.run: the graph was disposed');
    for (const i of this.inputs) {
      const t = feeds[i.name];
      if (!t) throw new Error(`OnnxGraph.run: missing feed '${i.name}' (inputs: ${this.inputs.map((x) => x.name).join(', ')})`);
      if (t.rank !== i.shape.length || t.shape.some((d, k) => d !== i.shape[k])) {
        throw new Error(`OnnxGraph.run: feed '${i.name}' has shape [${t.shape}], but the graph was folded for [${i.shape}]; load it again with inputShapes: { '${i.name}': [${t.shape}] }`);
      }
    }
    const wanted = outputNames ?? this.outputs.map((o) => o.name);
    const producedBy = new Map<string, number>();
    this.plan.forEach((p, i) => p.outputs.forEach((o) => o && producedBy.set(o, i)));
    for (const w of wanted) if (!producedBy.has(w) && !this.consts.has(w) && !(w in feeds)) throw new Error(`OnnxGraph.run: unknown output '${w}'`);
    // nodes needed for the wanted outputs, and each value's last consumer among them
    const need = new Array<boolean>(this.plan.length).fill(false);
    const stack = wanted.filter((w) => producedBy.has(w)).map((w) => producedBy.get(w)!);
    while (stack.length) {
      const i = stack.pop()!;
      if (need[i]) continue;
      need[i] = true;
      for (const x of this.plan[i]!.inputs) if (x && producedBy.has(x)) stack.push(producedBy.get(x)!);
    }
    const lastUse = new Map<string, number>();
    this.plan.forEach((p, i) => need[i] && p.inputs.forEach((x) => x && lastUse.set(x, i)));
    const keep = new Set(wanted);
    return tf.tidy(() => {
      const env = new Map<string, tf.Tensor>();
      const get = (x: string): tf.Tensor => env.get(x) ?? feeds[x] ?? this.constTensors.get(x)!;
      this.plan.forEach((p, i) => {
        if (!need[i]) return;
        const vals = p.inputs.map((x) => (x ? get(x) : null));
        const res = runNode(p, vals, this.consts, this.opset);
        p.outputs.forEach((o, k) => { if (o) env.set(o, res[k]!); });
        for (const x of p.inputs) if (x && lastUse.get(x) === i && env.has(x) && !keep.has(x)) { env.get(x)!.dispose(); env.delete(x); }
      });
      const out: Record<string, tf.Tensor> = {};
      for (const w of wanted) {
        const c = this.constantValue(w);
        out[w] = env.get(w) ?? (feeds[w] ? tf.clone(feeds[w]!) : tf.tensor(c!.data, c!.shape, c!.dtype));
      }
      return out;
    });
  }

  /** Runs the graph once, forcing each node to finish, and returns seconds spent per op type (for profiling). */
  profile(feeds: Record<string, tf.Tensor>): Record<string, number> {
    const secs: Record<string, number> = {};
    tf.tidy(() => {
      const env = new Map<string, tf.Tensor>(Object.entries(feeds));
      for (const p of this.plan) {
        const t0 = performance.now();
        const res = runNode(p, p.inputs.map((x) => (x ? env.get(x) ?? this.constTensors.get(x)! : null)), this.consts, this.opset);
        for (const r of res) r.dataSync();
        const key = process.env["BRAINNET_PROFILE_SHAPES"] ? `${p.node.opType} ${res[0]?.shape}` : p.node.opType;
        secs[key] = (secs[key] ?? 0) + (performance.now() - t0) / 1000;
        p.outputs.forEach((o, k) => o && env.set(o, res[k]!));
      }
    });
    return secs;
  }

  /** The constant value of a tensor after folding (initializer or folded), or undefined. */
  constantValue(name: string): HostTensor | undefined {
    const c = this.consts.get(name);
    if (c && (c as { onDevice?: boolean }).onDevice) return fromTf(this.constTensors.get(name)!);
    return c;
  }

  /** Frees the tensors the graph holds. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const t of this.constTensors.values()) t.dispose();
    for (const p of this.plan) for (const t of p.cache.values()) t.dispose();
    this.constTensors.clear();
    this.consts.clear();
  }
}

/** Constants with more elements than this keep no host copy once their tf tensor exists. */
const HOST_COPY_LIMIT = 4096;
const EMPTY = { float32: new Float32Array(0), int32: new Int32Array(0), bool: new Uint8Array(0) };

const ONNX_TYPE_CODE: Record<string, number> = Object.fromEntries(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, Number(k)]));

function dimsOf(vi: ValueInfoProto): number[] {
  return (vi.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null ? int64(d.dimValue) : -1));
}

function runNode(p: PlanNode, vals: (tf.Tensor | null)[], consts: Map<string, HostTensor>, opset: number): tf.Tensor[] {
  const ctx: OpContext = {
    where: p.where,
    attrs: p.attrs,
    opset,
    inputs: vals,
    numOutputs: p.outputs.length,
    isConstant: (i) => !!p.inputs[i] && consts.has(p.inputs[i]!),
    constant: (i) => {
      const x = p.inputs[i];
      if (!x) return null;
      const c = consts.get(x);
      if (c && (c as { onDevice?: boolean }).onDevice) return fromTf(vals[i]!);
      if (!c) throw new Error(`${p.where}: input ${i} ('${x}') must be a load-time constant (it depends on the graph inputs' values); this executor needs static shapes`);
      return c;
    },
    cached: (key, make) => {
      let t = p.cache.get(key);
      if (!t) { t = tf.keep(make()); p.cache.set(key, t); }
      return t;
    },
  };
  try {
    return (p.fn ?? OPS[p.node.opType]!)(ctx);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(msg.startsWith(p.where) ? msg : `${p.where}: ${msg}`);
  }
}

/**
 * torch exports GroupNorm(G, C) as Reshape [N,G,-1] -> InstanceNormalization(ones, zeros) ->
 * Reshape [N,C,H,W] -> Mul gamma -> Add beta. Replace each such chain by one node that takes
 * moments over [N,G,L] and applies a per-(N,C) scale and shift: two passes over the activation
 * instead of five.
 */
function fuseGroupNorm(plan: PlanNode[], consts: Map<string, HostTensor>, shapes: Map<string, number[]>, graphOutputs: Set<string>, opTypes: Record<string, number>): void {
  const consumers = new Map<string, number[]>();
  plan.forEach((p, i) => p.inputs.forEach((x) => x && consumers.set(x, [...(consumers.get(x) ?? []), i])));
  const only = (name: string, op: string): number => {
    const c = consumers.get(name) ?? [];
    return c.length === 1 && plan[c[0]!]!.node.opType === op && !graphOutputs.has(name) ? c[0]! : -1;
  };
  const producer = new Map<string, number>();
  plan.forEach((p, i) => p.outputs.forEach((o) => producer.set(o, i)));
  const isFill = (name: string | undefined, v: number) => !!name && consts.has(name) && consts.get(name)!.data.length > 0 && consts.get(name)!.data.every((d) => d === v);
  const drop = new Set<number>();
  plan.forEach((inorm, i) => {
    if (inorm.node.opType !== 'InstanceNormalization' || !isFill(inorm.inputs[1], 1) || !isFill(inorm.inputs[2], 0)) return;
    const r1 = producer.get(inorm.inputs[0]!);
    if (r1 === undefined || plan[r1]!.node.opType !== 'Reshape' || only(inorm.inputs[0]!, 'InstanceNormalization') < 0) return;
    const x = plan[r1]!.inputs[0]!;
    const xs = shapes.get(x), gs = shapes.get(inorm.inputs[0]!);
    if (!xs || !gs || gs.length !== 3 || xs.length < 3 || xs[0] !== gs[0] || xs[1]! % gs[1]! !== 0) return;
    const r2 = only(inorm.outputs[0]!, 'Reshape');
    if (r2 < 0 || JSON.stringify(shapes.get(plan[r2]!.outputs[0]!)) !== JSON.stringify(xs)) return;
    const mul = only(plan[r2]!.outputs[0]!, 'Mul');
    if (mul < 0) return;
    const gamma = plan[mul]!.inputs.find((n) => n !== plan[r2]!.outputs[0]);
    const add = only(plan[mul]!.outputs[0]!, 'Add');
    if (add < 0 || !gamma || !consts.has(gamma)) return;
    const beta = plan[add]!.inputs.find((n) => n !== plan[mul]!.outputs[0]);
    const C = xs[1]!, G = gs[1]!, spatial = xs.slice(2).map(() => 1);
    const per = (n: string) => { const sh = consts.get(n)!.shape; return sizeOf(sh) === C && (sh.length === 0 || sh[sh.length - 1 - spatial.length] === C || sh.length === 1 + spatial.length); };
    if (!beta || !consts.has(beta) || !per(gamma) || !per(beta)) return;
    const eps = inorm.attrs.float('epsilon', 1e-5);
    const reshaped = (n: string) => {
      const name = `${n}::groupnorm[1,${C}]`;
      if (!consts.has(name)) consts.set(name, { ...consts.get(n)!, shape: [1, C, ...spatial] });
      return name;
    };
    const fused = plan[add]!;
    plan[add] = {
      ...fused, node: { ...fused.node, opType: 'GroupNorm(fused)' }, where: `GroupNorm(fused) '${inorm.node.name ?? ''}'`,
      inputs: [x, reshaped(gamma), reshaped(beta)], cache: new Map(),
      fn: (ctx) => {
        const xt = ctx.inputs[0]!;
        const N = xt.shape[0]!;
        const { mean, variance } = tf.moments(tf.reshape(xt, [N, G, -1]), 2, true); // [N,G,1]
        const rstd = tf.rsqrt(tf.add(variance, eps));
        const toC = (t: tf.Tensor) => tf.reshape(tf.tile(t, [1, 1, C / G]), [N, C, ...spatial]); // [N,G,C/G] -> [N,C,1,..]
        const g = ctx.inputs[1]!, b = ctx.inputs[2]!; // [1,C,1,..]
        const scale = tf.mul(toC(rstd), g);
        const shift = tf.sub(b, tf.mul(toC(mean), scale));
        return [tf.add(tf.mul(xt, scale), shift)];
      },
    };
    for (const k of [r1, i, r2, mul]) drop.add(k);
  });
  if (!drop.size) return;
  const kept = plan.filter((_, i) => !drop.has(i));
  plan.length = 0;
  plan.push(...kept);
  for (const k of Object.keys(opTypes)) delete opTypes[k];
  for (const p of plan) opTypes[p.node.opType] = (opTypes[p.node.opType] ?? 0) + 1;
}

/** Loads an ONNX model file (with external data side files) and folds it for static input shapes. */
export async function loadOnnxGraph(file: string, opts: LoadOnnxGraphOptions = {}): Promise<OnnxGraph> {
  if (!fs.existsSync(file)) throw new FileFormatError(file, 'an ONNX model file', 'no such file', 'check the path');
  const bytes = await fs.promises.readFile(file);
  let model: ModelProto;
  try {
    model = decodeModel(bytes);
  } catch (e) {
    throw new FileFormatError(file, 'an ONNX protobuf (ModelProto)', `undecodable bytes (${e instanceof Error ? e.message : e})`, 'is this really a .onnx file?');
  }
  return OnnxGraph.fromModel(model, file, opts);
}

export { sizeOf };

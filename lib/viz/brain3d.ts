/**
 * The cortex in 3-D: builds the payload that `display.brain3d` draws (both hemispheres, NiiVue, WebGL2) from surfaces
 * (the subject's sphere, or white, pial or inflated surfaces, FreeSurfer or GIFTI) and overlays (a flatmap figure, any
 * per-vertex array, or an ROI region), in the flatmaps' colours. Pure apart from reading surface files.
 *
 * Meshes. Data vertices are usually a subset of a surface's vertices (`vertices`: each data vertex's surface index, as
 * the Algonauts fsaverage indices). A surface of an icosahedral mesh (10·4^k + 2 vertices, nested as FreeSurfer's and
 * fsaverage's are: the vertices of order k are the first ones of order k + 1) is coarsened to the smallest order that
 * still holds every data vertex (`coarsenIcosahedral`), and to at most `maxVertices` per hemisphere; below the data's
 * order each mesh vertex shows its nearest data vertex within one coarse spacing. Any other mesh is used as it is.
 * Hemispheres whose boxes overlap (two spheres, inflated surfaces) are moved apart along x, lh to the left.
 *
 * Views are NiiVue's azimuth and elevation (degrees): azimuth 0 looks at the back of the head (posterior), 90 at the
 * left side, 180 at the front, 270 at the right side; elevation 90 looks down from above, −90 up from below.
 */
import { createHash } from 'node:crypto';
import type { Surface } from '../io/freesurfer.js';
import { encodeBrain3dBlob, type Brain3dBlob, type Brain3dDtype, type Brain3dKey, type Brain3dOverlay, type Brain3dPayload, type Brain3dView } from '../notebook/brain3d.js';
import { colormap, cssRgb, isQualitative, type ColormapName, type Rgb } from './colormaps.js';
import { type ColorKey, type Flatmap, FlatmapError, colorVertexValues, isNoRoi, resolveVertexValues, type VertexValues } from './flatmap/index.js';
import type { HemiName, LayoutSubject } from './layout.js';

/** Named surfaces of both hemispheres (same mesh per hemisphere across names), and where the data vertices sit on them. */
export interface BrainSurfaces {
  /** Surfaces by name, in menu order, e.g. `{ sphere: { lh, rh }, inflated: { lh, rh } }`. */
  surfaces: Record<string, { lh: Surface; rh: Surface }>;
  /** Surface vertex index of each data vertex per hemisphere (e.g. fsaverage indices); absent: every surface vertex is a data vertex. */
  vertices?: { lh: ArrayLike<number>; rh: ArrayLike<number> };
  /** File names per surface and hemisphere, for error messages. */
  files?: Record<string, { lh: string; rh: string }>;
}

/** An overlay given as values: scalar `[N]` through a colormap (or integer labels on tab20), or RGB `[N, 3]`; N = lh + rh, or one hemisphere's count. */
export interface Brain3dValuesOverlay {
  name: string;
  values: VertexValues;
  cmap?: ColormapName;
  vmin?: number;
  vmax?: number;
  /** Colour-bar label (default: the name). */
  label?: string;
  /** Names of integer labels on tab20, for the legend. */
  categories?: string[];
  /** Which hemisphere a one-hemisphere array covers when both have the same count. */
  hemi?: HemiName;
  /** Initial threshold of a scalar overlay (default: none, i.e. its minimum; |value| for a map centred on 0), or false for no slider. */
  threshold?: number | false;
}

/** An overlay that marks the vertices of some ROIs (e.g. a BrainDiVE region, FFA = FFA-1 + FFA-2) in one colour. */
export interface Brain3dRegionOverlay {
  name: string;
  /** ROI names whose vertices are coloured (needs the figure's `rois`). */
  region: string[];
  /** Colour (default: tab20's red). */
  color?: Rgb;
}

/** What `brain3dFigure` accepts as an overlay: a flatmap (its colours, key and hover values), values, or a region. */
export type Brain3dOverlayInput = Flatmap | Brain3dValuesOverlay | Brain3dRegionOverlay;

/** Options of {@link brain3dFigure}. */
export interface Brain3dOptions {
  /** ROI name of every data vertex `[N]` (null, '' or 'Unknown' = none), for the readout and region overlays. */
  rois?: ArrayLike<string | null | undefined>;
  /** A scalar `[N]` (e.g. R²) whose slider masks the overlays that have no scalar of their own (RGB selectors, clusters). */
  thresholdBy?: { name: string; values: ArrayLike<number>; value?: number };
  /** At most this many mesh vertices per hemisphere when a mesh is coarsened (default 40,962: icosahedral order 6). */
  maxVertices?: number;
  /** The view shown first (default 'posterior', where visual cortex is), the overlay (index or name) and surface. */
  view?: string;
  overlay?: number | string;
  surface?: string;
  title?: string;
  /** Height in CSS pixels (default 480). */
  height?: number;
  /** Colour where an overlay has no value (default the flatmaps' light grey). */
  underlay?: Rgb;
}

/** Vertex count of the order-k icosahedron: 10·4^k + 2. */
function icoCount(k: number): number {
  return 10 * 4 ** k + 2;
}

/** The icosahedral order of a mesh with `n` vertices, or -1. */
export function icosahedralOrder(n: number): number {
  for (let k = 0; k <= 9; k++) if (icoCount(k) === n) return k;
  return -1;
}

/**
 * Faces of a nested icosahedral mesh at a lower order: one step takes each corner triangle (a, m1, m2) of the finer
 * mesh, where a is an old vertex and m1, m2 are midpoints of its edges to b and c, to the coarse triangle (a, b, c),
 * with the same orientation. Throws when the mesh is not a regular subdivision (then it is shown uncoarsened).
 */
export function coarsenIcosahedral(faces: ArrayLike<number>, nVertices: number, order: number): Int32Array {
  let k = icosahedralOrder(nVertices);
  if (k < 0) throw new FlatmapError(`coarsenIcosahedral: ${nVertices} vertices is not an icosahedral count (10·4^k + 2)`);
  if (order > k || order < 0) throw new FlatmapError(`coarsenIcosahedral: order ${order} is not in 0..${k}`);
  let F = Int32Array.from(faces);
  while (k > order) {
    const nOld = icoCount(k - 1), nNew = icoCount(k);
    // the old endpoints of each midpoint, from the fine edges
    const ends = new Int32Array(2 * (nNew - nOld)).fill(-1);
    const addEnd = (m: number, a: number) => {
      const o = 2 * (m - nOld);
      if (ends[o] === a || ends[o + 1] === a) return;
      if (ends[o] === -1) ends[o] = a; else if (ends[o + 1] === -1) ends[o + 1] = a;
      else throw new FlatmapError(`coarsenIcosahedral: vertex ${m} of order ${k} has more than two order-${k - 1} neighbours; the mesh is not a regular subdivision`);
    };
    for (let t = 0; t < F.length; t += 3) {
      for (let e = 0; e < 3; e++) {
        const p = F[t + e]!, q = F[t + ((e + 1) % 3)]!;
        if (p < nOld && q >= nOld) addEnd(q, p);
        else if (q < nOld && p >= nOld) addEnd(p, q);
      }
    }
    const other = (m: number, a: number) => { const o = 2 * (m - nOld); return ends[o] === a ? ends[o + 1]! : ends[o]!; };
    const out: number[] = [];
    for (let t = 0; t < F.length; t += 3) {
      for (let e = 0; e < 3; e++) {
        const a = F[t + e]!, m1 = F[t + ((e + 1) % 3)]!, m2 = F[t + ((e + 2) % 3)]!;
        if (a >= nOld || m1 < nOld || m2 < nOld) continue;
        const b = other(m1, a), c = other(m2, a);
        // each coarse triangle has three corners: keep it once, from its smallest vertex
        if (b < 0 || c < 0 || a > b || a > c) continue;
        out.push(a, b, c);
      }
    }
    if (out.length / 3 !== 2 * nOld - 4) throw new FlatmapError(`coarsenIcosahedral: order ${k - 1} should have ${2 * nOld - 4} triangles, found ${out.length / 3}; the mesh is not a regular subdivision`);
    F = Int32Array.from(out);
    k--;
  }
  return F;
}

/** For each of the first `nMesh` vertices, the nearest seed (by edges of the full mesh) within `maxHops`, or -1: multi-source BFS. */
function nearestSeed(faces: Int32Array, nVertices: number, seeds: Int32Array, nMesh: number, maxHops: number): Int32Array {
  // neighbours in CSR form
  const deg = new Int32Array(nVertices + 1);
  for (let t = 0; t < faces.length; t++) deg[faces[t]! + 1]! += 2;
  for (let i = 0; i < nVertices; i++) deg[i + 1]! += deg[i]!;
  const nb = new Int32Array(deg[nVertices]!), fill = deg.slice(0, nVertices);
  for (let t = 0; t < faces.length; t += 3) {
    for (let e = 0; e < 3; e++) {
      const p = faces[t + e]!, q = faces[t + ((e + 1) % 3)]!;
      nb[fill[p]!++] = q; nb[fill[q]!++] = p;
    }
  }
  const owner = new Int32Array(nVertices).fill(-1), hops = new Int32Array(nVertices);
  let frontier: number[] = [];
  for (let s = 0; s < seeds.length; s++) if (seeds[s]! >= 0 && owner[seeds[s]!] === -1) { owner[seeds[s]!] = s; frontier.push(seeds[s]!); }
  for (let h = 1; h <= maxHops && frontier.length; h++) {
    const next: number[] = [];
    for (const v of frontier) for (let j = deg[v]!; j < deg[v + 1]!; j++) { const u = nb[j]!; if (owner[u] === -1) { owner[u] = owner[v]!; hops[u] = h; next.push(u); } }
    frontier = next;
  }
  return owner.slice(0, nMesh);
}

/** One hemisphere's display mesh: which surface vertices it keeps (a prefix for icosahedral meshes), its faces, and the data vertex of each. */
interface HemiMesh {
  nMesh: number;
  faces: Int32Array;
  /** Local data vertex (0..nData-1) of each mesh vertex, -1 for none. */
  data: Int32Array;
}

/** Chooses one hemisphere's display mesh (see the header) from its surface topology and data vertices. */
function hemiMesh(surface: Surface, dataVertices: ArrayLike<number> | undefined, nData: number, maxVertices: number, what: string): HemiMesh {
  const nV = surface.vertices.length / 3;
  const idx = dataVertices ?? Int32Array.from({ length: nV }, (_, i) => i);
  if (idx.length !== nData) throw new FlatmapError(`brain3d: ${what} has ${idx.length} data-vertex indices, the data have ${nData} vertices in this hemisphere`);
  let maxIdx = -1;
  for (let k = 0; k < idx.length; k++) {
    const v = idx[k]!;
    if (!Number.isInteger(v) || v < 0 || v >= nV) {
      throw new FlatmapError(`brain3d: ${what}: data vertex ${k} sits at surface vertex ${v}, but the surface has ${nV} vertices; use the surface the data were sampled on (e.g. fsaverage for Algonauts)`);
    }
    maxIdx = Math.max(maxIdx, v);
  }
  const K = icosahedralOrder(nV);
  let order = K;
  if (K >= 0) {
    let needed = 0;
    while (icoCount(needed) <= maxIdx) needed++;
    let budget = 0;
    while (budget < K && icoCount(budget + 1) <= maxVertices) budget++;
    order = Math.min(K, Math.max(needed <= budget ? needed : budget, Math.min(4, budget)));
  }
  let faces: Int32Array = Int32Array.from(surface.faces);
  let nMesh = nV;
  if (K >= 0 && order < K) {
    try {
      faces = coarsenIcosahedral(surface.faces, nV, order);
      nMesh = icoCount(order);
    } catch {
      order = K; // not a regular subdivision: shown as it is
    }
  }
  const local = new Int32Array(nV).fill(-1);
  for (let k = 0; k < idx.length; k++) if (local[idx[k]!] === -1) local[idx[k]!] = k;
  let data: Int32Array;
  if (nMesh < nV && icoCount(order) <= maxIdx) {
    // coarser than the data: each mesh vertex shows the nearest data vertex within one coarse spacing
    const owner = nearestSeed(Int32Array.from(surface.faces), nV, Int32Array.from(idx), nMesh, 2 ** (K - order));
    data = owner;
  } else data = local.slice(0, nMesh);
  return { nMesh, faces, data };
}

/** Offsets along x that keep two hemispheres apart (lh left of rh), or zeros when their boxes do not overlap. */
function separation(lh: Float32Array, rh: Float32Array): [number, number] {
  const box = (p: Float32Array) => { let lo = Infinity, hi = -Infinity; for (let i = 0; i < p.length; i += 3) { lo = Math.min(lo, p[i]!); hi = Math.max(hi, p[i]!); } return [lo, hi] as const; };
  const [l0, l1] = box(lh), [r0, r1] = box(rh);
  const gap = 0.06 * Math.max(l1 - l0, r1 - r0);
  if (l1 + gap / 2 <= r0) return [0, 0];
  const mid = (l1 + r0) / 2;
  return [mid - gap / 2 - l1, mid + gap / 2 - r0];
}

/** Typed arrays for the payload, each stored once (identical content shares one entry). */
class Blobs {
  readonly list: Brain3dBlob[] = [];
  private readonly seen = new Map<string, number>();
  add(values: ArrayLike<number>, dtype: Brain3dDtype): number {
    const b = encodeBrain3dBlob(values, dtype);
    const key = createHash('sha1').update(`${dtype}:${b.length}:`).update(b.b64).digest('hex');
    const hit = this.seen.get(key);
    if (hit !== undefined) return hit;
    this.list.push(b);
    this.seen.set(key, this.list.length - 1);
    return this.list.length - 1;
  }
}

const STANDARD_VIEWS: Record<string, Brain3dView> = {
  posterior: { azimuth: 0, elevation: 0, hemis: ['lh', 'rh'] },
  ventral: { azimuth: 180, elevation: -90, hemis: ['lh', 'rh'] },
  'lateral lh': { azimuth: 90, elevation: 0, hemis: ['lh', 'rh'] },
  'medial lh': { azimuth: 270, elevation: 0, hemis: ['lh'] },
  'lateral rh': { azimuth: 270, elevation: 0, hemis: ['lh', 'rh'] },
  'medial rh': { azimuth: 90, elevation: 0, hemis: ['rh'] },
  dorsal: { azimuth: 0, elevation: 90, hemis: ['lh', 'rh'] },
  anterior: { azimuth: 180, elevation: 0, hemis: ['lh', 'rh'] },
};

/** The standard views' names, in the viewer's order. */
export const BRAIN3D_VIEWS = Object.keys(STANDARD_VIEWS);

/** A colour key as the payload carries it. */
function keyPayload(key: ColorKey | undefined, blobs: Blobs): Brain3dKey | undefined {
  if (!key) return undefined;
  if (key.kind === 'bar') {
    const colors = Array.from({ length: 64 }, (_, i) => cssRgb(colormap(key.cmap, (i + 0.5) / 64)));
    return { kind: 'bar', colors, vmin: key.vmin, vmax: key.vmax, label: key.label, tickLabels: key.tickLabels };
  }
  if (key.kind === 'legend') return { kind: 'legend', entries: key.entries.map((e) => ({ label: e.label, color: cssRgb(e.color) })), title: key.title };
  const S = 24, rgb = new Uint8Array(S * S * 3);
  for (let j = 0; j < S; j++) for (let i = 0; i < S; i++) {
    const c = key.color((i + 0.5) / S, 1 - (j + 0.5) / S);
    for (let k = 0; k < 3; k++) rgb[3 * (j * S + i) + k] = Math.round(255 * Math.min(1, Math.max(0, c[k]!)));
  }
  return { kind: 'square', size: S, rgb: blobs.add(rgb, 'u8'), title: key.title, xlabel: key.xlabel, ylabel: key.ylabel, xticks: key.xticks, yticks: key.yticks };
}

const isFlatmap = (o: Brain3dOverlayInput): o is Flatmap => 'colors' in o && 'shown' in o && 'layout' in o;
const isRegion = (o: Brain3dOverlayInput): o is Brain3dRegionOverlay => 'region' in o;

/** Colours `[N, 4]` u8 (alpha 0 where not shown) from colours `[N, 3]` in [0, 1] and a shown mask. */
function rgba8(colors: Float32Array, shown: Uint8Array): Uint8Array {
  const out = new Uint8Array(shown.length * 4);
  for (let i = 0; i < shown.length; i++) {
    for (let k = 0; k < 3; k++) out[4 * i + k] = Math.round(255 * Math.min(1, Math.max(0, colors[3 * i + k]!)));
    out[4 * i + 3] = shown[i] ? 255 : 0;
  }
  return out;
}

/** Finite minimum and maximum (or [0, 1]). */
function range(a: ArrayLike<number>, abs = false): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < a.length; i++) { const v = abs ? Math.abs(a[i]!) : a[i]!; if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

/** One overlay of the payload from a flatmap, values or a region. */
function overlayPayload(o: Brain3dOverlayInput, counts: { nLh: number; nRh: number }, blobs: Blobs, ctx: { rois?: (string | null)[]; thresholdBy?: Brain3dOptions['thresholdBy']; underlay: Rgb }): Brain3dOverlay {
  const N = counts.nLh + counts.nRh;
  const readout: Brain3dOverlay['readout'] = [];
  let name: string, colors: Uint8Array, key: ColorKey | undefined, scalar: { values: Float32Array; label: string; diverging: boolean; initial?: number | false } | undefined;
  if (isFlatmap(o)) {
    name = o.title ?? 'overlay';
    const n = o.layout.nLh + o.layout.nRh;
    if (o.layout.nLh !== counts.nLh || o.layout.nRh !== counts.nRh) {
      throw new FlatmapError(`brain3d: overlay '${name}' is a flatmap of lh ${o.layout.nLh} + rh ${o.layout.nRh} = ${n} vertices, the surfaces carry lh ${counts.nLh} + rh ${counts.nRh} = ${N}; draw both from the same subject`);
    }
    colors = rgba8(o.colors, o.shown);
    key = o.key;
    if (o.channels === 1) {
      const label = o.key?.kind === 'bar' ? o.key.label ?? name : name;
      scalar = { values: o.values, label, diverging: o.key?.kind === 'bar' && o.key.vmin < 0 && o.key.vmax > 0 };
      if (o.key?.kind === 'legend') scalar = undefined; // categories: no slider on labels
      readout.push({ name: label, k: 1, values: blobs.add(o.values, 'f32') });
    }
    for (const [sn, a] of Object.entries(o.selectors ?? {})) {
      const k = a.length / N;
      if (!Number.isInteger(k) || k < 1) throw new FlatmapError(`brain3d: selector '${sn}' of '${name}' has ${a.length} values, not [${N}] or [${N}, k]`);
      readout.push({ name: sn, k, values: blobs.add(a, 'f32') });
    }
  } else if (isRegion(o)) {
    name = o.name;
    if (!ctx.rois) throw new FlatmapError(`brain3d: region overlay '${name}' needs the ROI name of every vertex; pass rois`);
    const want = new Set(o.region);
    const present = new Set(ctx.rois.filter((r): r is string => !!r));
    const missing = o.region.filter((r) => !present.has(r));
    if (missing.length === o.region.length) throw new FlatmapError(`brain3d: region overlay '${name}': none of ${o.region.join(', ')} is an ROI of these vertices (ROIs: ${[...present].join(', ') || 'none'})`);
    const c = o.color ?? colormap('tab20', 6);
    const f = new Float32Array(3 * N), shown = new Uint8Array(N);
    for (let i = 0; i < N; i++) if (ctx.rois[i] && want.has(ctx.rois[i]!)) { f.set(c, 3 * i); shown[i] = 1; }
    colors = rgba8(f, shown);
    key = { kind: 'legend', entries: [{ label: o.region.filter((r) => present.has(r)).join(' + '), color: c }], title: name };
  } else {
    name = o.name;
    const cmap = o.cmap ?? 'viridis';
    const vc = colorVertexValues(o.values, counts, { cmap, vmin: o.vmin, vmax: o.vmax, label: o.label ?? name, categories: o.categories, hemi: o.hemi, underlay: ctx.underlay, what: `brain3d: overlay '${name}'` });
    colors = rgba8(vc.colors, vc.shown);
    key = vc.key;
    if (vc.channels === 1) {
      readout.push({ name: o.label ?? name, k: 1, values: blobs.add(vc.values, 'f32') });
      if (!isQualitative(cmap)) scalar = { values: vc.values, label: o.label ?? name, diverging: vc.key?.kind === 'bar' && vc.key.vmin < 0 && vc.key.vmax > 0, initial: o.threshold };
    } else readout.push({ name, k: vc.channels, values: blobs.add(vc.values, 'f32') });
  }
  // the threshold: the overlay's own scalar, else the figure's thresholdBy
  let threshold: Brain3dOverlay['threshold'];
  if (scalar && scalar.initial !== false) {
    const mode = scalar.diverging ? 'abs' : 'above';
    const [lo, hi] = range(scalar.values, mode === 'abs');
    threshold = { name: scalar.label, values: blobs.add(scalar.values, 'f32'), min: mode === 'abs' ? 0 : lo, max: hi, value: typeof scalar.initial === 'number' ? scalar.initial : mode === 'abs' ? 0 : lo, mode };
  } else if (!scalar && ctx.thresholdBy) {
    const t = ctx.thresholdBy;
    const v = resolveVertexValues(t.values, counts, { channels: 1, what: `brain3d: thresholdBy '${t.name}'` }).data;
    const [lo, hi] = range(v);
    threshold = { name: t.name, values: blobs.add(v, 'f32'), min: lo, max: hi, value: t.value ?? lo, mode: 'above' };
    readout.push({ name: t.name, k: 1, values: blobs.add(v, 'f32') });
  }
  return { name, colors: blobs.add(colors, 'u8'), key: keyPayload(key, blobs), readout, threshold };
}

/** Data-vertex counts per hemisphere implied by the surfaces. */
function dataCounts(s: BrainSurfaces): { nLh: number; nRh: number } {
  const first = Object.values(s.surfaces)[0]!;
  return { nLh: s.vertices ? s.vertices.lh.length : first.lh.vertices.length / 3, nRh: s.vertices ? s.vertices.rh.length : first.rh.vertices.length / 3 };
}

/**
 * The payload of a 3-D view of both hemispheres (for `display.brain3d`): meshes of every named surface, one overlay per
 * input (a flatmap keeps its colours, key and hover values, so the 3-D view matches the flatmap), ROI names for the
 * readout, a threshold per overlay, and the standard views. N = data vertices, lh then rh.
 */
export function brain3dFigure(surfaces: BrainSurfaces, overlays: Brain3dOverlayInput[], opts: Brain3dOptions = {}): Brain3dPayload {
  // 1. check inputs
  const names = Object.keys(surfaces.surfaces);
  if (!names.length) throw new FlatmapError('brain3d: no surfaces; pass { surfaces: { sphere: { lh, rh } } } (e.g. from subjectSurfaces)');
  if (!overlays.length) throw new FlatmapError('brain3d: no overlays; pass at least one flatmap, values or region');
  const counts = dataCounts(surfaces);
  const N = counts.nLh + counts.nRh;
  const file = (n: string, h: HemiName) => surfaces.files?.[n]?.[h] ?? `${h} ${n}`;
  const first = surfaces.surfaces[names[0]!]!;
  for (const n of names.slice(1)) {
    for (const h of ['lh', 'rh'] as const) {
      const a = first[h], b = surfaces.surfaces[n]![h];
      if (a.vertices.length !== b.vertices.length || a.faces.length !== b.faces.length) {
        throw new FlatmapError(`brain3d: ${file(n, h)} has ${b.vertices.length / 3} vertices and ${b.faces.length / 3} faces, ${file(names[0]!, h)} has ${a.vertices.length / 3} and ${a.faces.length / 3}; all surfaces of a hemisphere must share one mesh (sphere, white, pial and inflated of the same subject do)`);
      }
    }
  }
  let rois: (string | null)[] | undefined;
  if (opts.rois) {
    if (opts.rois.length !== N) throw new FlatmapError(`brain3d: rois has ${opts.rois.length} names, the surfaces carry lh ${counts.nLh} + rh ${counts.nRh} = ${N} data vertices`);
    rois = Array.from(opts.rois, (r) => (isNoRoi(r) ? null : (r as string)));
  }
  const blobs = new Blobs();
  const underlay = opts.underlay ?? [0.78, 0.78, 0.78];
  // 2. the overlays (first, so that a bad one fails before the meshes are built)
  const ov = overlays.map((o) => overlayPayload(o, counts, blobs, { rois, thresholdBy: opts.thresholdBy, underlay }));
  // 3. the meshes: topology from the first surface, positions of every surface, hemispheres kept apart
  const maxV = opts.maxVertices ?? icoCount(6);
  const meshes = (['lh', 'rh'] as const).map((h) => hemiMesh(first[h], surfaces.vertices?.[h], h === 'lh' ? counts.nLh : counts.nRh, maxV, file(names[0]!, h)));
  const positions = names.map((n) => {
    const pts = (['lh', 'rh'] as const).map((h, j) => surfaces.surfaces[n]![h].vertices.subarray(0, 3 * meshes[j]!.nMesh));
    const [dl, dr] = separation(pts[0]!, pts[1]!);
    return pts.map((p, j) => quantise(p, j === 0 ? dl : dr, blobs));
  });
  const hemis = (['lh', 'rh'] as const).map((h, j) => {
    const m = meshes[j]!;
    const data = j === 0 ? m.data : m.data.map((d) => (d < 0 ? -1 : d + counts.nLh));
    return {
      name: h, nVertices: m.nMesh, faces: blobs.add(m.faces, m.nMesh < 65536 ? 'u16' : 'u32'), dataIndex: blobs.add(data, 'i32'),
      positions: Object.fromEntries(names.map((n, s) => [n, positions[s]![j]!])),
    };
  });
  // 4. ROI names, views, what is shown first
  let roiPayload: Brain3dPayload['rois'];
  if (rois) {
    const list = [...new Set(rois.filter((r): r is string => !!r))];
    const at = new Map(list.map((r, k) => [r, k + 1]));
    roiPayload = { names: list, index: blobs.add(rois.map((r) => (r ? at.get(r)! : 0)), 'u16') };
  }
  const view = opts.view ?? 'posterior';
  if (!STANDARD_VIEWS[view]) throw new FlatmapError(`brain3d: no view '${view}'; views: ${BRAIN3D_VIEWS.join(', ')}`);
  const overlay = typeof opts.overlay === 'string' ? ov.findIndex((o) => o.name === opts.overlay) : opts.overlay ?? 0;
  if (!(overlay >= 0 && overlay < ov.length)) throw new FlatmapError(`brain3d: no overlay ${JSON.stringify(opts.overlay)}; overlays: ${ov.map((o) => o.name).join(', ')}`);
  const surface = opts.surface ?? names[0]!;
  if (!names.includes(surface)) throw new FlatmapError(`brain3d: no surface '${surface}'; surfaces: ${names.join(', ')}`);
  return {
    format: 'brainnet-brain3d-1', title: opts.title, nLh: counts.nLh, nRh: counts.nRh, hemis, surfaces: names, rois: roiPayload, overlays: ov,
    views: STANDARD_VIEWS, initial: { overlay, surface, view }, underlay: underlay.map((c) => Math.round(255 * c)) as [number, number, number],
    blobs: blobs.list, height: opts.height,
  };
}

/** Positions `[n, 3]` shifted by `dx` along x, as int16 steps over their box. */
function quantise(p: Float32Array, dx: number, blobs: Blobs): { data: number; origin: [number, number, number]; step: [number, number, number] } {
  const lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (let i = 0; i < p.length; i += 3) for (let k = 0; k < 3; k++) { const v = p[i + k]! + (k === 0 ? dx : 0); lo[k] = Math.min(lo[k]!, v); hi[k] = Math.max(hi[k]!, v); }
  const step = lo.map((l, k) => Math.max((hi[k]! - l) / 65534, 1e-9)) as [number, number, number];
  const q = new Int16Array(p.length);
  for (let i = 0; i < p.length; i += 3) for (let k = 0; k < 3; k++) q[i + k] = Math.round((p[i + k]! + (k === 0 ? dx : 0) - lo[k]!) / step[k]) - 32767;
  return { data: blobs.add(q, 'i16'), origin: lo as [number, number, number], step };
}

/** Reads a surface by extension: GIFTI (`.gii`) or FreeSurfer binary. */
async function readSurface(file: string): Promise<Surface> {
  const io = await import('../io/index.js');
  return file.toLowerCase().endsWith('.gii') ? io.readGiftiSurface(file) : io.readFreesurferSurface(file);
}

/** Reads named surface pairs (FreeSurfer binary or GIFTI, by extension), e.g. `{ inflated: { lh: 'lh.inflated', rh: 'rh.inflated' } }`. */
export async function readBrainSurfaces(files: Record<string, { lh: string; rh: string }>, vertices?: { lh: ArrayLike<number>; rh: ArrayLike<number> }): Promise<BrainSurfaces> {
  const surfaces: BrainSurfaces['surfaces'] = {};
  for (const [n, f] of Object.entries(files)) surfaces[n] = { lh: await readSurface(f.lh), rh: await readSurface(f.rh) };
  return { surfaces, vertices, files };
}

/**
 * A subject's surfaces for 3-D views: `files` when given, else whichever of DIR/surfaces/{lh,rh}.{sphere,inflated,white,pial}
 * (FreeSurfer binary, or the same name with `.gii`) exist, with the subject's fsaverage index of each data vertex.
 */
export async function subjectSurfaces(subject: LayoutSubject, opts: { names?: string[]; files?: Record<string, { lh: string; rh: string }> } = {}): Promise<BrainSurfaces> {
  const fs = await import('node:fs');
  const path = await import('node:path');
  let files = opts.files;
  if (!files) {
    files = {};
    const names = opts.names ?? ['sphere', 'inflated', 'white', 'pial'];
    for (const n of names) {
      const pick = (h: HemiName) => [`${h}.${n}`, `${h}.${n}.gii`].map((f) => path.join(subject.dir, 'surfaces', f)).find((f) => fs.existsSync(f));
      const lh = pick('lh'), rh = pick('rh');
      if (lh && rh) files[n] = { lh, rh };
    }
    if (!Object.keys(files).length) {
      throw new FlatmapError(`subjectSurfaces: found none of ${names.map((n) => `{lh,rh}.${n}[.gii]`).join(', ')} in ${path.join(subject.dir, 'surfaces')}; pass files: { name: { lh, rh } }`);
    }
  }
  const s = await readBrainSurfaces(files);
  // a surface over every fsaverage vertex is indexed by fsIndex; one with exactly the data vertices needs no index
  const first = Object.values(s.surfaces)[0]!;
  const nData = { lh: subject.fsIndex.lh.length, rh: subject.fsIndex.rh.length };
  const own = first.lh.vertices.length / 3 === nData.lh && first.rh.vertices.length / 3 === nData.rh;
  return { ...s, vertices: own ? undefined : { lh: subject.fsIndex.lh, rh: subject.fsIndex.rh } };
}

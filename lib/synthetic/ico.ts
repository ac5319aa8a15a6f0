/**
 * Icosahedral spheres. `ico(k)` subdivides an icosahedron k times: 10·4^k + 2 vertices
 * (ico4 2562, ico5 10242, ico7 163842, the fsaverage count). New vertices are appended after
 * the old ones, so the vertices of ico(k) are the first 10·4^k + 2 vertices of ico(k+1), as in
 * FreeSurfer's icosahedra. The coordinates are not the real fsaverage sphere's.
 */

/** An icosahedral sphere: `vertices` [N, 3] (radius `radius`), `faces` [F, 3] (counter-clockwise seen from outside). */
export interface IcoSphere {
  order: number;
  vertices: Float32Array;
  faces: Int32Array;
}

/** Number of vertices of the order-k icosahedron: 10·4^k + 2. */
export function icoVertexCount(order: number): number {
  return 10 * 4 ** order + 2;
}

/** The order-k icosahedral sphere of the given radius (100, as fsaverage's sphere, by default). */
export function ico(order: number, radius = 100): IcoSphere {
  if (!Number.isInteger(order) || order < 0 || order > 8) throw new RangeError(`ico: order must be an integer 0..8, got ${order}`);
  const t = (1 + Math.sqrt(5)) / 2;
  const nv = icoVertexCount(order);
  const pos = new Float64Array(nv * 3);
  const base = [
    [-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
    [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
    [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1],
  ];
  let count = 0;
  const push = (x: number, y: number, z: number): number => {
    const n = Math.hypot(x, y, z);
    pos[count * 3] = x / n;
    pos[count * 3 + 1] = y / n;
    pos[count * 3 + 2] = z / n;
    return count++;
  };
  for (const [x, y, z] of base) push(x!, y!, z!);
  let faces = new Int32Array([
    0, 11, 5, 0, 5, 1, 0, 1, 7, 0, 7, 10, 0, 10, 11,
    1, 5, 9, 5, 11, 4, 11, 10, 2, 10, 7, 6, 7, 1, 8,
    3, 9, 4, 3, 4, 2, 3, 2, 6, 3, 6, 8, 3, 8, 9,
    4, 9, 5, 2, 4, 11, 6, 2, 10, 8, 6, 7, 9, 8, 1,
  ]);
  for (let k = 0; k < order; k++) {
    const mid = new Map<number, number>();
    const midpoint = (a: number, b: number): number => {
      const key = a < b ? a * nv + b : b * nv + a;
      let m = mid.get(key);
      if (m === undefined) {
        m = push(pos[a * 3]! + pos[b * 3]!, pos[a * 3 + 1]! + pos[b * 3 + 1]!, pos[a * 3 + 2]! + pos[b * 3 + 2]!);
        mid.set(key, m);
      }
      return m;
    };
    const nf = faces.length / 3;
    const next = new Int32Array(nf * 12);
    for (let f = 0; f < nf; f++) {
      const a = faces[f * 3]!, b = faces[f * 3 + 1]!, c = faces[f * 3 + 2]!;
      const ab = midpoint(a, b), bc = midpoint(b, c), ca = midpoint(c, a);
      next.set([a, ab, ca, b, bc, ab, c, ca, bc, ab, bc, ca], f * 12);
    }
    faces = next;
  }
  const vertices = new Float32Array(nv * 3);
  for (let i = 0; i < nv * 3; i++) vertices[i] = pos[i]! * radius;
  return { order, vertices, faces };
}

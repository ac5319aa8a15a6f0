/**
 * The one matrix type that lib/encoding and lib/viz share: row-major float32 data and its
 * `[rows, cols]` shape. Fitted selectors, ridge features and channel weights are all Matrices;
 * figures also take rows or flat data (`MatrixInput`), which `toMatrix` reads into one.
 */

/** A row-major matrix `[rows, cols]`. */
export interface Matrix {
  data: Float32Array;
  shape: [number, number];
}

/** A matrix as callers hold it: a {@link Matrix}, an array of rows, or flat row-major data (its column count given or inferred). */
export type MatrixInput = Matrix | ArrayLike<number>[] | ArrayLike<number>;

/** The shape `[rows, cols]` of a Matrix, after checking that its data holds rows x cols values. */
export function checkMatrix(m: Matrix, what: string): [number, number] {
  const [r, c] = m.shape;
  if (m.data.length !== r * c) throw new Error(`${what}: shape [${r}, ${c}] needs ${r * c} values, found ${m.data.length}.`);
  return [r, c];
}

function isMatrix(a: MatrixInput): a is Matrix {
  return typeof a === 'object' && a !== null && 'shape' in a && Array.isArray((a as { shape: unknown }).shape);
}

/**
 * Reads a MatrixInput into a Matrix (a copy of the data). Flat data takes its column count from
 * `cols`, else from `rows` (length / rows); rows take it from the first row.
 */
export function toMatrix(a: MatrixInput, opts: { rows?: number; cols?: number; what: string }): Matrix {
  if (isMatrix(a)) {
    if ((a.shape as number[]).length !== 2) throw new Error(`${opts.what}: expected [N, k], got shape [${(a.shape as number[]).join(', ')}]`);
    return { data: Float32Array.from(a.data), shape: [a.shape[0], a.shape[1]] };
  }
  const arr = a as ArrayLike<unknown>;
  if (arr.length && typeof arr[0] === 'object') {
    const rows = a as ArrayLike<number>[];
    const k = rows[0]!.length;
    const data = new Float32Array(rows.length * k);
    for (let i = 0; i < rows.length; i++) for (let j = 0; j < k; j++) data[i * k + j] = Number(rows[i]![j]);
    return { data, shape: [rows.length, k] };
  }
  const data = Float32Array.from(a as ArrayLike<number>);
  const k = opts.cols ?? (opts.rows && data.length % opts.rows === 0 ? data.length / opts.rows : undefined);
  if (!k) throw new Error(`${opts.what}: cannot tell the columns of a flat array of ${data.length} values${opts.rows ? ` over ${opts.rows} rows` : ''}; pass it as [N, k] ({ shape, data } or rows) or give k`);
  if (data.length % k) throw new Error(`${opts.what}: a flat array of ${data.length} values is not a whole number of rows of ${k}`);
  return { data, shape: [data.length / k, k] };
}

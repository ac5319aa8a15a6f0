/**
 * The checks every reader makes on its input before it reads: the path is an existing regular file (not a
 * folder, not missing), and an array is allocated only once its size is known to fit, so that a header claiming
 * 10^12 elements is refused with the file's name instead of failing inside `new Float32Array(...)`.
 */
import * as fs from 'node:fs';
import { FileFormatError } from './errors.js';
import { type DType, type TypedArray, allocTyped } from './ndarray.js';

/** The most elements one typed array can hold in this JavaScript engine (V8: 2^32). */
export const MAX_ARRAY_ELEMENTS = 2 ** 32;

/**
 * Throws a FileFormatError unless `file` is an existing regular file (a folder, a missing path or an unreadable
 * one is named, with what was found); returns its size in bytes. `what` names the format, e.g. 'NIfTI' or 'MATLAB .mat'.
 */
export function checkInputFile(file: string, what: string): number {
  const kind = what.replace(/ file$/, '');
  const a = /^(?:[aeiou]|HDF|MGH)/i.test(kind) ? 'an' : 'a';
  what = kind;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') throw new FileFormatError(file, `an existing ${what} file`, 'no such file (ENOENT)', 'Check the path.');
    if (err.code === 'ENOTDIR') throw new FileFormatError(file, `an existing ${what} file`, 'a path through something that is not a folder', 'Check the path.');
    throw new FileFormatError(file, `a readable ${what} file`, `${err.code ?? 'an error'}: ${err.message}`, 'Check the path and its permissions.');
  }
  if (st.isDirectory()) {
    throw new FileFormatError(file, `${a} ${what} file`, 'a directory', 'Pass the path of the file itself, not of the folder that holds it.');
  }
  if (!st.isFile()) throw new FileFormatError(file, `a regular ${what} file`, 'a device, socket or pipe', 'Copy the data to a regular file first.');
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    throw new FileFormatError(file, `a readable ${what} file`, `${(e as NodeJS.ErrnoException).code ?? 'an error'}`, 'Check its permissions.');
  }
  return st.size;
}

/**
 * Allocates the typed array for `n` elements of `dtype` read from `file`, refusing sizes a typed array cannot hold
 * (and turning an out-of-memory failure into an error that names the file). `what` says what the array is (e.g.
 * 'dataset /betas of shape [750, 10000000]'); `fix` how to read less at once.
 */
export function allocFor(file: string, dtype: DType, n: number, o: { what: string; fix: string }): TypedArray {
  const elements = n * (dtype === 'complex64' || dtype === 'complex128' ? 2 : 1);
  if (!Number.isSafeInteger(elements) || elements < 0 || elements > MAX_ARRAY_ELEMENTS) {
    throw new FileFormatError(file, `an array of at most ${MAX_ARRAY_ELEMENTS} elements in one read`, `${o.what}: ${n.toExponential(3)} elements of ${dtype}`, o.fix);
  }
  try {
    return allocTyped(dtype, n);
  } catch (e) {
    throw new FileFormatError(file, `memory for ${o.what}`, `${(e as Error).message} (${n} elements of ${dtype})`, o.fix);
  }
}

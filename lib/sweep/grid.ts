/**
 * A sweep's grid: parameter values from the command line (`--grid name=a,b`), or from a YAML or JSON file; the points
 * it expands to (the Cartesian product, in the order the names were given, the last name varying fastest); each
 * point's stable key (its folder name); and the check that every name is a parameter the notebook defines.
 * Pure functions apart from reading files.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { declaredNames, parameterLiteral, readNotebook, sourceText } from '../runner/nbformat.js';

/** A parameter value as written in a grid: what the notebook's injected parameters cell will hold. */
export type ParamValue = string | number | boolean | null | ParamValue[] | { [k: string]: ParamValue };

/** One product grid: each name with its list of values. */
export type ProductGrid = Record<string, ParamValue[]>;

/** A grid: one product, or the union of several (a YAML/JSON list of mappings, as in scikit-learn's ParameterGrid). */
export type Grid = ProductGrid | ProductGrid[];

/** Bad sweep input (grid, parameters, options): the message names what was expected, what was found and how to fix it. */
export class SweepError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepError';
  }
}

/** A value given as text (command line) typed as the runner types it: number, boolean, JSON, else the string itself. */
export function typedValue(text: string): ParamValue {
  const lit = parameterLiteral(text);
  if (/^-?(Infinity|NaN)$/.test(lit)) return Number(lit);
  try {
    return JSON.parse(lit) as ParamValue;
  } catch {
    return text;
  }
}

/** A typed value as the runner's `--param` text (strings as they are, everything else as JSON). */
export function valueText(v: ParamValue): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
  return JSON.stringify(v);
}

/** Parses `--grid name=v1,v2,...` arguments into one product grid (a name given twice adds values). */
export function parseGridArgs(args: readonly string[]): ProductGrid {
  const grid: ProductGrid = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new SweepError(`--grid: expected name=value1,value2,..., found "${a}"; e.g. --grid backbone=mobilenetv2,inceptionv3`);
    const name = a.slice(0, eq).trim();
    const values = a.slice(eq + 1).split(',').map((s) => s.trim());
    if (values.some((v) => v === '')) throw new SweepError(`--grid ${name}: an empty value in "${a.slice(eq + 1)}"; separate values with single commas (values that contain commas go in a --grid-file)`);
    grid[name] = [...(grid[name] ?? []), ...values.map(typedValue)];
  }
  return grid;
}

/** Parses `--param name=value` arguments (fixed for every point). */
export function parseParamArgs(args: readonly string[]): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new SweepError(`--param: expected name=value, found "${a}"`);
    out[a.slice(0, eq).trim()] = typedValue(a.slice(eq + 1));
  }
  return out;
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A grid and fixed parameters from a parsed YAML/JSON document (see {@link readGridFile}). */
export function gridFromDocument(doc: unknown, file = '<grid>'): { grid: Grid; params: Record<string, ParamValue> } {
  const expected = 'a mapping of parameter names to lists of values ({ backbone: [mobilenetv2, inceptionv3] }), a list of such mappings, or { grid: ..., params: {...} }';
  let gridPart: unknown = doc;
  let params: Record<string, ParamValue> = {};
  if (isMapping(doc) && ('grid' in doc || 'params' in doc)) {
    const extra = Object.keys(doc).filter((k) => k !== 'grid' && k !== 'params');
    if (extra.length) throw new SweepError(`${file}: expected only the keys grid and params at the top level, found also ${extra.join(', ')}`);
    gridPart = doc.grid ?? {};
    if (doc.params !== undefined && !isMapping(doc.params)) throw new SweepError(`${file}: params: expected a mapping of names to values, found ${JSON.stringify(doc.params)}`);
    params = (doc.params ?? {}) as Record<string, ParamValue>;
  }
  const one = (m: unknown, where: string): ProductGrid => {
    if (!isMapping(m)) throw new SweepError(`${file}${where}: expected ${expected}, found ${JSON.stringify(m)?.slice(0, 80)}`);
    const g: ProductGrid = {};
    for (const [k, v] of Object.entries(m)) {
      // a scalar is a one-value list; a list is the values
      g[k] = Array.isArray(v) ? (v as ParamValue[]) : [v as ParamValue];
      if (!g[k]!.length) throw new SweepError(`${file}${where}: '${k}' has no values; give at least one`);
    }
    return g;
  };
  const grid = Array.isArray(gridPart) ? gridPart.map((m, i) => one(m, ` (grid entry ${i + 1})`)) : one(gridPart, '');
  return { grid, params };
}

/** Reads a grid file: YAML (.yaml, .yml) or JSON (.json); see {@link gridFromDocument} for its shape. */
export function readGridFile(file: string): { grid: Grid; params: Record<string, ParamValue> } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new SweepError(`${file}: expected a grid file (YAML or JSON), found ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}; check the --grid-file path`);
  }
  let doc: unknown;
  const ext = path.extname(file).toLowerCase();
  try {
    doc = ext === '.json' ? JSON.parse(text) : loadYaml(text, { filename: file });
  } catch (e) {
    throw new SweepError(`${file}: expected ${ext === '.json' ? 'JSON' : 'YAML'}, found text that does not parse: ${(e as Error).message.split('\n')[0]}`);
  }
  return gridFromDocument(doc, file);
}

/** Merges product grids given separately (command line and file): the union of the file's grids, each crossed with the command line's. */
export function mergeGrids(a: Grid, b: Grid): ProductGrid[] {
  const as = Array.isArray(a) ? a : [a];
  const bs = Array.isArray(b) ? b : [b];
  const nonEmpty = (gs: ProductGrid[]) => gs.filter((g) => Object.keys(g).length);
  const A = nonEmpty(as), B = nonEmpty(bs);
  if (!A.length) return B.length ? B : [{}];
  if (!B.length) return A;
  return A.flatMap((x) => B.map((y) => ({ ...x, ...y })));
}

/** Every point of a grid: the product of each grid's lists (last name fastest), grids in order, duplicates dropped. */
export function expandGrid(grid: Grid): Record<string, ParamValue>[] {
  const out: Record<string, ParamValue>[] = [];
  const seen = new Set<string>();
  for (const g of Array.isArray(grid) ? grid : [grid]) {
    let points: Record<string, ParamValue>[] = [{}];
    for (const [name, values] of Object.entries(g)) points = points.flatMap((p) => values.map((v) => ({ ...p, [name]: v })));
    for (const p of points) {
      const id = canonicalJson(p);
      if (!seen.has(id)) (seen.add(id), out.push(p));
    }
  }
  return out;
}

/** JSON with sorted keys (so equal parameter sets give equal text). */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/** A short readable form of a value for a folder name: a path's base name without extension, else the value's text. */
function slugPart(v: ParamValue): string {
  let s = typeof v === 'string' ? (/[\\/]/.test(v) ? path.basename(v.replace(/[\\/]+$/, '')).replace(/\.[^.]*$/, '') || v : v) : valueText(v);
  s = s.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/^-+|-+$/g, '');
  return s.slice(0, 24) || 'x';
}

/**
 * A point's key (its folder's name): the grid values in short form and a hash of every parameter it runs with, e.g.
 * `mobilenetv2_s1-3f2a9c1e`. Equal parameters give the same key in every run, so a sweep finds its finished points;
 * changing any parameter (a fixed one too) gives new keys, so stale results are never reused.
 */
export function pointKey(gridValues: Record<string, ParamValue>, allParams: Record<string, ParamValue>): string {
  const slug = Object.values(gridValues).map(slugPart).join('_').slice(0, 60) || 'point';
  const hash = crypto.createHash('sha1').update(canonicalJson(allParams)).digest('hex').slice(0, 8);
  return `${slug}-${hash}`;
}

/** The names the notebook's cell tagged `parameters` declares; throws when it has no such cell. */
export function notebookParameterNames(notebookPath: string): string[] {
  const nb = readNotebook(notebookPath);
  const cell = nb.cells.find((c) => c.cell_type === 'code' && Array.isArray(c.metadata?.tags) && c.metadata.tags.includes('parameters'));
  if (!cell) throw new SweepError(`${notebookPath}: expected a code cell tagged "parameters" (papermill's convention) declaring the swept names, found none; tag the cell that declares them (in Jupyter: View > Cell Toolbar > Tags)`);
  return declaredNames(sourceText(cell.source));
}

/** Throws (before anything runs) when a grid or fixed parameter is not declared in the notebook's parameters cell, listing the declared names. */
export function checkParameterNames(notebookPath: string, names: Iterable<string>): void {
  const declared = notebookParameterNames(notebookPath);
  const unknown = [...new Set(names)].filter((n) => !declared.includes(n));
  if (unknown.length) {
    throw new SweepError(`${notebookPath}: the parameters cell does not define ${unknown.map((n) => `'${n}'`).join(', ')}; it defines: ${declared.join(', ') || '(nothing)'}. Fix the name in --grid/--param/--grid-file, or declare it in the cell tagged "parameters"`);
  }
}

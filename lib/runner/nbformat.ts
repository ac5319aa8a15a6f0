/**
 * nbformat 4 notebooks: types, reading with clear errors, parameter injection (papermill's
 * convention) and a minimal structural check. Pure functions apart from `readNotebook`.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import type { NotebookOutput } from './jupyter-client.js';

/** Cell source: a string or a list of lines (each with its newline). */
export type MultilineString = string | string[];

/** One nbformat 4 cell. */
export interface NotebookCell {
  id?: string;
  cell_type: 'code' | 'markdown' | 'raw';
  source: MultilineString;
  metadata: Record<string, unknown> & { tags?: string[] };
  execution_count?: number | null;
  outputs?: NotebookOutput[];
  attachments?: Record<string, unknown>;
}

/** An nbformat 4 notebook. */
export interface Notebook {
  nbformat: 4;
  nbformat_minor: number;
  metadata: Record<string, unknown> & { kernelspec?: { name?: string; display_name?: string; language?: string } };
  cells: NotebookCell[];
}

/** Joins a multiline source into one string. */
export function sourceText(src: MultilineString): string {
  return Array.isArray(src) ? src.join('') : src;
}

/** Splits text into nbformat's list-of-lines form (each line keeps its newline). */
export function toLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Parses notebook JSON text, checking it is nbformat 4; `file` names the source in errors. */
export function parseNotebook(text: string, file = '<notebook>'): Notebook {
  let nb: Notebook;
  try {
    nb = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: expected notebook JSON (nbformat 4), found text that does not parse (${(e as Error).message}); open and re-save it in Jupyter`);
  }
  if (!nb || typeof nb !== 'object' || nb.nbformat !== 4 || !Array.isArray(nb.cells)) {
    const found = nb && typeof nb === 'object' ? `nbformat ${JSON.stringify((nb as { nbformat?: unknown }).nbformat)}${Array.isArray(nb.cells) ? '' : ' without a cells list'}` : typeof nb;
    throw new Error(`${file}: expected an nbformat 4 notebook ({ nbformat: 4, cells: [...] }), found ${found}; convert it with \`jupyter nbconvert --to notebook --nbformat 4\``);
  }
  nb.metadata ??= {};
  for (const c of nb.cells) {
    c.metadata ??= {};
    c.source ??= '';
  }
  return nb;
}

/** Reads and parses a .ipynb file. */
export function readNotebook(file: string): Notebook {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${file}: expected a notebook file, found ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}; check the path`);
  }
  return parseNotebook(text, file);
}

/** A parameter value as a TypeScript literal: number, boolean, JSON (objects, arrays, null, quoted strings), else a string literal. */
export function parameterLiteral(value: string): string {
  const v = value.trim();
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v) || /^[-+]?(Infinity|NaN)$/.test(v)) return v.replace(/^\+/, '');
  if (v === 'true' || v === 'false') return v;
  if (/^[[{"]|^null$/.test(v)) {
    try {
      return JSON.stringify(JSON.parse(v));
    } catch {
      // not JSON: a plain string
    }
  }
  return JSON.stringify(value);
}

/** Names declared (`const`/`let`/`var`, including simple destructuring) in a cell's source. */
export function declaredNames(source: string): string[] {
  const names = new Set<string>();
  for (const m of source.matchAll(/\b(?:const|let|var)\s+([A-Za-z_$][\w$]*)/g)) names.add(m[1]);
  for (const m of source.matchAll(/\b(?:const|let|var)\s+[{[]([^}\]=]*)[}\]]/g)) {
    for (const part of m[1].split(',')) {
      const n = /([A-Za-z_$][\w$]*)\s*$/.exec(part.split(':').pop()!.trim());
      if (n) names.add(n[1]);
    }
  }
  // Comma-separated declarations: const a = 1, b = 2;
  for (const m of source.matchAll(/,\s*([A-Za-z_$][\w$]*)\s*(?::[^=,;]+)?=/g)) names.add(m[1]);
  return [...names];
}

const IDENT = /^[A-Za-z_$][\w$]*$/;
const RESERVED = new Set('break case catch class const continue debugger default delete do else enum export extends false finally for function if import in instanceof new null return super switch this throw true try typeof var void while with yield let static implements interface package private protected public await'.split(' '));

/** The source of the injected-parameters cell: one `const name = value;` line per parameter. */
export function parametersSource(params: Record<string, string>): string {
  const lines = ['// Parameters injected by the brainnet notebook runner'];
  for (const [name, value] of Object.entries(params)) {
    if (!IDENT.test(name) || RESERVED.has(name)) {
      throw new Error(`parameter "${name}": expected a TypeScript identifier (letters, digits, _ or $, not starting with a digit, not a keyword), found "${name}"; rename it in --param name=value`);
    }
    lines.push(`const ${name} = ${parameterLiteral(value)};`);
  }
  return lines.join('\n');
}

/** Result of {@link injectParameters}. */
export interface InjectResult {
  notebook: Notebook;
  /** Index of the injected cell in `notebook.cells`. */
  index: number;
  warnings: string[];
}

function hasTag(c: NotebookCell, tag: string): boolean {
  return Array.isArray(c.metadata?.tags) && c.metadata.tags.includes(tag);
}

/**
 * Returns a copy of `nb` with an `injected-parameters` code cell after the cell tagged
 * `parameters` (or first, if none), replacing an earlier injected cell; warns about
 * parameters that the parameters cell does not declare.
 */
export function injectParameters(nb: Notebook, params: Record<string, string>): InjectResult {
  const out: Notebook = JSON.parse(JSON.stringify(nb));
  const warnings: string[] = [];
  out.cells = out.cells.filter((c) => !hasTag(c, 'injected-parameters'));
  const pIndex = out.cells.findIndex((c) => c.cell_type === 'code' && hasTag(c, 'parameters'));
  if (pIndex < 0) {
    warnings.push('no cell is tagged "parameters": injecting the parameters as the first cell');
  } else {
    const declared = new Set(declaredNames(sourceText(out.cells[pIndex].source)));
    for (const name of Object.keys(params)) {
      if (!declared.has(name)) warnings.push(`parameter "${name}" is not declared in the parameters cell (declared: ${[...declared].join(', ') || 'none'}); injecting it anyway`);
    }
  }
  const cell: NotebookCell = {
    cell_type: 'code',
    execution_count: null,
    metadata: { tags: ['injected-parameters'] },
    outputs: [],
    source: toLines(parametersSource(params)),
  };
  if (out.nbformat_minor >= 5) cell.id = `injected-parameters-${crypto.randomBytes(4).toString('hex')}`;
  const index = pIndex + 1;
  out.cells.splice(index, 0, cell);
  return { notebook: out, index, warnings };
}

/** Structural problems that would make `nb` invalid nbformat 4 (empty list when it looks valid). */
export function notebookProblems(nb: Notebook): string[] {
  const problems: string[] = [];
  if (nb.nbformat !== 4) problems.push(`nbformat is ${nb.nbformat}, expected 4`);
  if (typeof nb.nbformat_minor !== 'number') problems.push('nbformat_minor missing');
  nb.cells.forEach((c, i) => {
    const where = `cell ${i}`;
    if (!['code', 'markdown', 'raw'].includes(c.cell_type)) problems.push(`${where}: cell_type ${c.cell_type}`);
    if (typeof c.metadata !== 'object') problems.push(`${where}: metadata missing`);
    if (nb.nbformat_minor >= 5 && typeof c.id !== 'string') problems.push(`${where}: id missing (nbformat 4.5+)`);
    if (c.cell_type === 'code') {
      if (!('execution_count' in c)) problems.push(`${where}: execution_count missing`);
      if (!Array.isArray(c.outputs)) problems.push(`${where}: outputs missing`);
      for (const o of c.outputs ?? []) {
        if (o.output_type === 'execute_result' && !('execution_count' in o)) problems.push(`${where}: execute_result without execution_count`);
        if (o.output_type === 'error' && !Array.isArray(o.traceback)) problems.push(`${where}: error without traceback`);
      }
    } else if ('outputs' in c || 'execution_count' in c) {
      problems.push(`${where}: ${c.cell_type} cell with outputs/execution_count`);
    }
  });
  return problems;
}

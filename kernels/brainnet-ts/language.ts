/**
 * Completion, hover docs and is_complete for notebook cells, from the TypeScript language service.
 * The service sees one virtual file in the kernel's working directory: every cell run so far, then the
 * cell being edited, so names from earlier cells and `brainnet` exports complete. Modules resolve as cells'
 * imports do (modules.ts): from the notebook folder, then from the kernel's checkout (`brainnet` through the
 * package's self-reference), so a notebook in any folder completes too.
 */
import ts from 'typescript';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CHECKOUT } from './modules.js';

/** The globals the kernel adds, declared for the type checker (prompt() is in lib.dom already). */
const KERNEL_GLOBALS = `
/** Asks the front end for a line of input (an input_request on stdin); resolves with the answer. */
declare function input(prompt?: string, options?: { password?: boolean }): Promise<string>;
`;

const OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2022.full.d.ts'],
  module: ts.ModuleKind.ESNext,
  moduleResolution: ts.ModuleResolutionKind.Bundler,
  moduleDetection: ts.ModuleDetectionKind.Force,
  esModuleInterop: true,
  allowJs: true,
  strict: true,
  skipLibCheck: true,
  types: ['node'],
  noEmit: true,
};

/** Completion result in Jupyter's terms (offsets are JavaScript string offsets). */
export interface Completion {
  matches: string[];
  cursor_start: number;
  cursor_end: number;
  types: Array<{ text: string; type: string; start: number; end: number }>;
}

/** A language service over the history of executed cells plus the cell being edited. */
export class CellLanguageService {
  private history: string[] = [];
  private current = '';
  private version = 0;
  private readonly fileName: string;
  private service: ts.LanguageService | null = null;

  private readonly globalsFile: string;
  private readonly checkoutFile: string;
  private readonly options: ts.CompilerOptions;

  constructor(cwd: string = process.cwd(), checkout: string = CHECKOUT) {
    const slash = (p: string) => p.split(path.sep).join('/');
    this.fileName = slash(path.join(cwd, '__bn_notebook__.ts'));
    this.globalsFile = slash(path.join(cwd, '__bn_kernel_globals__.d.ts'));
    this.checkoutFile = slash(path.join(checkout, '__bn_notebook__.ts'));
    // @types (node's among them) from the notebook folder when it has them, else from the checkout.
    const typeRoots = [cwd, checkout].map((d) => path.join(d, 'node_modules', '@types')).filter((d) => existsSync(d));
    this.options = { ...OPTIONS, typeRoots };
  }

  /** Records a cell that ran without a syntax error. */
  addCell(source: string): void {
    this.history.push(source);
  }

  private prefix(): string {
    return this.history.map((s) => s + '\n;\n').join('');
  }

  private get ls(): ts.LanguageService {
    if (this.service) return this.service;
    const virtual = (f: string) => f === this.fileName || f === this.globalsFile;
    const host: ts.LanguageServiceHost = {
      getCompilationSettings: () => this.options,
      getScriptFileNames: () => [this.globalsFile, this.fileName],
      getScriptVersion: (f) => (f === this.fileName ? String(this.version) : '1'),
      getScriptSnapshot: (f) => {
        if (f === this.fileName) return ts.ScriptSnapshot.fromString(this.current);
        if (f === this.globalsFile) return ts.ScriptSnapshot.fromString(KERNEL_GLOBALS);
        const text = ts.sys.readFile(f);
        return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
      },
      getCurrentDirectory: () => path.dirname(this.fileName),
      getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
      fileExists: (f) => virtual(f) || ts.sys.fileExists(f),
      readFile: (f) => (f === this.fileName ? this.current : f === this.globalsFile ? KERNEL_GLOBALS : ts.sys.readFile(f)),
      readDirectory: ts.sys.readDirectory,
      directoryExists: ts.sys.directoryExists,
      getDirectories: ts.sys.getDirectories,
      realpath: ts.sys.realpath,
      // The notebook folder first; a bare specifier it does not have resolves from the kernel's checkout.
      resolveModuleNameLiterals: (literals, containingFile, redirected, options) =>
        literals.map((lit) => {
          const first = ts.resolveModuleName(lit.text, containingFile, options, ts.sys, undefined, redirected);
          if (first.resolvedModule || containingFile !== this.fileName || /^(\.|\/|[a-z][a-z0-9+.-]*:)/i.test(lit.text)) return first;
          const second = ts.resolveModuleName(lit.text, this.checkoutFile, options, ts.sys, undefined, redirected);
          return second.resolvedModule ? second : first;
        }),
    };
    this.service = ts.createLanguageService(host, ts.createDocumentRegistry());
    return this.service;
  }

  /** Sets the edited cell; returns the offset of the cell's start in the virtual file. */
  private setCurrent(code: string): number {
    const prefix = this.prefix();
    this.current = prefix + code;
    this.version++;
    return prefix.length;
  }

  /** Completions at `cursor` (an offset into `code`). */
  complete(code: string, cursor: number): Completion {
    let start = cursor;
    while (start > 0 && /[\w$]/.test(code[start - 1])) start--;
    const prefixWord = code.slice(start, cursor);
    const base = this.setCurrent(code);
    const info = this.ls.getCompletionsAtPosition(this.fileName, base + cursor, {
      includeCompletionsWithInsertText: true,
      includeCompletionsForModuleExports: false,
    });
    const entries = (info?.entries ?? []).filter((e) => e.name.startsWith(prefixWord) && !e.name.startsWith('__bn'));
    entries.sort((a, b) => (a.sortText < b.sortText ? -1 : a.sortText > b.sortText ? 1 : a.name.localeCompare(b.name)));
    const seen = new Set<string>();
    const kept = entries.filter((e) => !seen.has(e.name) && seen.add(e.name)).slice(0, 500);
    return {
      matches: kept.map((e) => e.name),
      cursor_start: start,
      cursor_end: cursor,
      types: kept.map((e) => ({ text: e.name, type: e.kind, start, end: cursor })),
    };
  }

  /** Hover documentation at `cursor`: signature (and docs) as text/plain and text/markdown, or null. */
  inspect(code: string, cursor: number): { 'text/plain': string; 'text/markdown': string } | null {
    const base = this.setCurrent(code);
    const candidates = [cursor, cursor - 1];
    // Also try the start of the word before the cursor (e.g. `console.log(` with the cursor after the paren).
    let k = cursor - 1;
    while (k >= 0 && /[\s(,]/.test(code[k])) k--;
    if (k !== cursor - 1) candidates.push(k);
    for (const pos of candidates) {
      if (pos < 0 || pos > code.length) continue;
      const q = this.ls.getQuickInfoAtPosition(this.fileName, base + pos);
      if (!q) continue;
      const signature = ts.displayPartsToString(q.displayParts);
      const docs = ts.displayPartsToString(q.documentation);
      const tags = (q.tags ?? []).map((t) => `@${t.name} ${ts.displayPartsToString(t.text)}`.trim());
      const plain = [signature, docs, ...tags].filter(Boolean).join('\n\n');
      const markdown = ['```typescript', signature, '```', docs, ...tags.map((t) => `*${t}*`)].filter(Boolean).join('\n');
      return { 'text/plain': plain, 'text/markdown': markdown };
    }
    return null;
  }
}

/** IPython-style help request: `name?` or `obj.member?` (a trailing `?` is never valid TypeScript). */
export const HELP_REQUEST = /^\s*([A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*)\s*\?\??\s*$/;

/** Jupyter is_complete: 'complete', 'incomplete' (more input expected at the end) or 'invalid'; `indent` is always sent ('' unless incomplete), as strict clients require it. */
export function isComplete(code: string): { status: 'complete' | 'incomplete' | 'invalid'; indent: string } {
  if (!code.trim() || HELP_REQUEST.test(code)) return { status: 'complete', indent: '' };
  const out = ts.transpileModule(code, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleDetection: ts.ModuleDetectionKind.Force },
    reportDiagnostics: true,
  });
  const errors = (out.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error && d.start !== undefined);
  if (!errors.length) return { status: 'complete', indent: '' };
  // Unclosed brackets, strings, templates or comments: the user is still typing.
  const end = code.trimEnd().length;
  const atEnd = errors.every((d) => (d.start ?? 0) >= end || /expected|Unterminated/.test(ts.flattenDiagnosticMessageText(d.messageText, '\n')) && (d.start ?? 0) >= end - 1);
  if (atEnd) {
    const lastLine = code.split('\n').pop() ?? '';
    const indent = (/^\s*/.exec(lastLine)?.[0] ?? '') + (/[{([]\s*$/.test(lastLine) ? '  ' : '');
    return { status: 'incomplete', indent };
  }
  return { status: 'invalid', indent: '' };
}

/**
 * Turns one notebook cell (TypeScript) into a script that runs in the kernel's persistent global scope.
 *
 * 1. ts.transpileModule (ES2022, ES modules kept, verbatimModuleSyntax so no import is elided) with a source map.
 * 2. Top-level statements of the JavaScript are rewritten as text, keeping every line where it was:
 *    - `const|let|var` declarations become assignments to global `var`s, so a re-run cell may redeclare them;
 *    - `class C {}` becomes `C = class C {};`, function declarations are copied to globalThis;
 *    - imports become `await __bnk.import(spec, () => import(spec))` (require first, then import() for ESM-only),
 *      and `import(x)` anywhere becomes `__bnk.importDynamic((s, o) => import(s, o), x)` (modules.ts resolves both);
 *    - `export` is dropped; the last expression statement becomes the cell's value (`return [(expr)]`: an array
 *      element, so a function value keeps its own name).
 * 3. The result is wrapped: line 1 hoists the names (`var a, b;`) and opens `(async function () {`, the
 *    JavaScript follows from line 2, so a stack frame's line L is JavaScript line L - 1, mapped back to the
 *    cell through the source map.
 */
import ts from 'typescript';
import { SourceMap } from 'node:module';

/** Name of the global object through which compiled cells reach the kernel's helpers. */
export const HELPER = '__bnk';

/** A syntax error in a cell, with 1-based line and column. */
export interface CellSyntaxError {
  message: string;
  line: number;
  column: number;
}

/** A compiled cell ready for vm.Script. */
export interface CompiledCell {
  /** The script text: line 1 is the wrapper, JavaScript line k is script line k + 1. */
  script: string;
  /** Names the cell declares at top level (they become globals). */
  declared: string[];
  /** True when the cell ends with an expression statement whose value is returned. */
  hasValue: boolean;
  /** Maps a 1-based script line and 1-based column to a 1-based cell line, or null outside the cell. */
  cellLine(scriptLine: number, column: number): number | null;
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext,
  moduleDetection: ts.ModuleDetectionKind.Force,
  verbatimModuleSyntax: true,
  esModuleInterop: true,
  sourceMap: true,
  inlineSources: false,
  removeComments: false,
  experimentalDecorators: false,
  jsx: ts.JsxEmit.React,
};

interface Edit {
  pos: number;
  end: number;
  text: string;
  seq?: number;
}

/** Compiles a cell, or returns its first syntax error. */
export function compileCell(source: string, fileName = 'cell.ts'): { ok: CompiledCell } | { error: CellSyntaxError } {
  const out = ts.transpileModule(source, { compilerOptions: COMPILER_OPTIONS, fileName, reportDiagnostics: true });
  const syntax = (out.diagnostics ?? []).find((d) => d.category === ts.DiagnosticCategory.Error && d.file);
  if (syntax && syntax.file && syntax.start !== undefined) {
    const { line, character } = syntax.file.getLineAndCharacterOfPosition(syntax.start);
    return { error: { message: ts.flattenDiagnosticMessageText(syntax.messageText, '\n'), line: line + 1, column: character + 1 } };
  }
  const js = out.outputText.replace(/\n\/\/# sourceMappingURL=.*\s*$/, '\n');
  const map = new SourceMap(JSON.parse(out.sourceMapText ?? '{"version":3,"sources":[],"names":[],"mappings":""}'));
  const rewritten = rewriteTopLevel(js);
  const prefix = `var ${[...rewritten.declared, '__bnUnused'].join(', ')}; (async function () { "use strict"; ${rewritten.hoist}`;
  const script = `${prefix}\n${rewritten.text}\n})()`;
  const jsLines = rewritten.text.split('\n').length - 1;
  const cellLine = (scriptLine: number, column: number): number | null => {
    const jsLine = scriptLine - 2; // 0-based JavaScript line
    if (jsLine < 0 || jsLine >= jsLines) return null; // the wrapper's own lines
    const entry = map.findEntry(jsLine, Math.max(0, column - 1)) as { originalLine?: number };
    if (entry && typeof entry.originalLine === 'number') return entry.originalLine + 1;
    return null;
  };
  return { ok: { script, declared: rewritten.declared, hasValue: rewritten.hasValue, cellLine } };
}

/** Collects the identifiers bound by a binding name (identifier or destructuring pattern). */
function bindingNames(name: ts.BindingName, into: string[]): void {
  if (ts.isIdentifier(name)) into.push(name.text);
  else for (const el of name.elements) if (!ts.isOmittedExpression(el)) bindingNames(el.name, into);
}

function hasModifier(node: ts.Node, kind: ts.SyntaxKind): boolean {
  return !!(ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((m) => m.kind === kind));
}

/** Removes `export` / `export default` modifiers of a declaration. */
function dropExport(node: ts.Node, sf: ts.SourceFile, edits: Edit[]): void {
  if (!ts.canHaveModifiers(node)) return;
  for (const m of ts.getModifiers(node) ?? []) {
    if (m.kind === ts.SyntaxKind.ExportKeyword || m.kind === ts.SyntaxKind.DefaultKeyword) {
      edits.push({ pos: m.getStart(sf), end: m.end, text: '' });
    }
  }
}

/** Keeps the line count of replaced text: appends as many newlines as the original span had. */
function sameLines(original: string, replacement: string): string {
  const n = (original.match(/\n/g) ?? []).length;
  return replacement + '\n'.repeat(n);
}

/** Rewrites the top-level statements of a transpiled cell (see the file comment). */
export function rewriteTopLevel(js: string): { text: string; declared: string[]; hoist: string; hasValue: boolean } {
  const sf = ts.createSourceFile('cell.js', js, ts.ScriptTarget.ES2022, true, ts.ScriptKind.JS);
  const edits: Edit[] = [];
  const declared: string[] = [];
  const hoisted: string[] = [];
  let hasValue = false;
  const statements = sf.statements;
  // Index of the last statement that is not an empty `export {}` or ';'.
  let lastIndex = statements.length - 1;
  while (lastIndex >= 0 && (ts.isExportDeclaration(statements[lastIndex]) || ts.isEmptyStatement(statements[lastIndex]))) lastIndex--;

  statements.forEach((st, index) => {
    const start = st.getStart(sf);
    const text = js.slice(start, st.end);
    if (ts.isImportDeclaration(st)) {
      const spec = st.moduleSpecifier.getText(sf);
      const load = `await ${HELPER}.import(${spec}, () => import(${spec}))`;
      const clause = st.importClause;
      let replacement: string;
      if (!clause || clause.isTypeOnly) replacement = clause ? '' : `${load};`;
      else {
        const parts: string[] = [];
        const bindings = clause.namedBindings;
        if (bindings && ts.isNamespaceImport(bindings)) {
          declared.push(bindings.name.text);
          parts.push(`${bindings.name.text} = ${load}`);
          if (clause.name) {
            declared.push(clause.name.text);
            parts.push(`${clause.name.text} = ${bindings.name.text}.default`);
          }
        } else {
          const props: string[] = [];
          if (clause.name) {
            declared.push(clause.name.text);
            props.push(`default: ${clause.name.text}`);
          }
          if (bindings && ts.isNamedImports(bindings)) {
            for (const el of bindings.elements) {
              if (el.isTypeOnly) continue;
              declared.push(el.name.text);
              const imported = el.propertyName ? el.propertyName.getText(sf) : el.name.text;
              props.push(imported === el.name.text ? imported : `${imported}: ${el.name.text}`);
            }
          }
          parts.push(`({ ${props.join(', ')} } = ${load})`);
        }
        replacement = `(${parts.join(', ')});`;
      }
      edits.push({ pos: start, end: st.end, text: sameLines(text, replacement) });
      return;
    }
    if (ts.isExportDeclaration(st)) {
      edits.push({ pos: start, end: st.end, text: sameLines(text, '') });
      return;
    }
    if (ts.isExportAssignment(st)) {
      // `export default expr;` -> `expr;`
      edits.push({ pos: start, end: st.expression.getStart(sf), text: '' });
      if (index === lastIndex) {
        hasValue = true;
        edits.push({ pos: st.expression.getStart(sf), end: st.expression.getStart(sf), text: 'return [(' });
        edits.push({ pos: st.expression.end, end: st.expression.end, text: ')]' });
      }
      return;
    }
    if (ts.isVariableStatement(st)) {
      dropExport(st, sf, edits);
      if (hasModifier(st, ts.SyntaxKind.DeclareKeyword)) return;
      const list = st.declarationList;
      // Replace the keyword (`const`, `let`, `var`, `using`) with '('.
      const keywordEnd = list.declarations.length ? list.declarations[0].getStart(sf) : list.end;
      edits.push({ pos: list.getStart(sf), end: keywordEnd, text: '(' });
      for (const d of list.declarations) {
        bindingNames(d.name, declared);
        if (!d.initializer) edits.push({ pos: d.name.end, end: d.name.end, text: ' = void 0' });
      }
      edits.push({ pos: list.end, end: list.end, text: ')' });
      return;
    }
    if (ts.isClassDeclaration(st) && st.name) {
      dropExport(st, sf, edits);
      declared.push(st.name.text);
      const classStart = st.modifiers?.length ? st.modifiers[st.modifiers.length - 1].end : start;
      edits.push({ pos: classStart, end: classStart, text: ` ${st.name.text} = ` });
      edits.push({ pos: st.end, end: st.end, text: ';' });
      return;
    }
    if (ts.isFunctionDeclaration(st) && st.name) {
      dropExport(st, sf, edits);
      declared.push(st.name.text);
      hoisted.push(st.name.text);
      return;
    }
    if (index === lastIndex && ts.isExpressionStatement(st)) {
      hasValue = true;
      edits.push({ pos: start, end: start, text: 'return [(' });
      const semi = js[st.end - 1] === ';' ? st.end - 1 : st.end;
      edits.push({ pos: semi, end: semi, text: ')]' });
    }
  });

  // `import(x)` anywhere in the cell: resolved like static imports (notebook folder, then the kernel's checkout).
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      edits.push({ pos: node.expression.getStart(sf), end: node.arguments.pos, text: `${HELPER}.importDynamic((s, o) => import(s, o), ` });
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);

  // Right to left; at one position the edit pushed last is applied first, so pushed order = text order.
  edits.forEach((e, i) => (e.seq = i));
  edits.sort((a, b) => b.pos - a.pos || (b.seq ?? 0) - (a.seq ?? 0));
  let text = js;
  for (const e of edits) text = text.slice(0, e.pos) + e.text + text.slice(e.end);
  const unique = [...new Set(declared)];
  const hoist = hoisted.map((n) => `globalThis[${JSON.stringify(n)}] = ${n};`).join(' ');
  return { text, declared: unique, hoist, hasValue };
}

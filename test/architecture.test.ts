/**
 * The rules of the house (ARCHITECTURE.md), read from the import graph of lib/, kernels/ and data-prep/
 * with the TypeScript compiler's own pre-processor (static imports, re-exports, `import()` and `require()`).
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const REPO = path.resolve(__dirname, '..');
const ROOTS = ['lib', 'kernels', 'data-prep'];

interface Edge { from: string; to: string; spec: string }

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
    const rel = path.posix.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== 'fixtures') out.push(...tsFiles(rel)); }
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** Resolves a relative specifier ('./x.js', '../y/index.js', '../y') to a repository file, or null. */
function resolveRelative(from: string, spec: string): string | null {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const stem = base.replace(/\.(js|mjs|ts)$/, '');
  for (const c of [`${stem}.ts`, `${stem}.mts`, `${base}/index.ts`, base]) if (fs.existsSync(path.join(REPO, c)) && fs.statSync(path.join(REPO, c)).isFile()) return c;
  return null;
}

/** Every import edge of the repository's TypeScript under ROOTS; the package's own name ('brainnet', 'brainnet/x') resolves to lib/. */
function importGraph(): { files: string[]; edges: Edge[]; external: Edge[] } {
  const files = ROOTS.flatMap(tsFiles);
  const edges: Edge[] = [];
  const external: Edge[] = [];
  for (const f of files) {
    const info = ts.preProcessFile(fs.readFileSync(path.join(REPO, f), 'utf8'), true, true);
    for (const { fileName: spec } of info.importedFiles) {
      if (spec.startsWith('.')) {
        const to = resolveRelative(f, spec);
        assert.ok(to, `${f} imports '${spec}', which does not resolve to a file`);
        edges.push({ from: f, to, spec });
      } else if (spec === 'brainnet' || spec.startsWith('brainnet/')) {
        const sub = spec === 'brainnet' ? 'index' : `${spec.slice('brainnet/'.length)}/index`;
        edges.push({ from: f, to: `lib/${sub}.ts`, spec });
      } else external.push({ from: f, to: spec, spec });
    }
  }
  return { files, edges, external };
}

/** The lib folder a file belongs to ('lib/encoding'), or its top folder outside lib. */
function folderOf(file: string): string {
  const parts = file.split('/');
  return parts[0] === 'lib' && parts.length > 2 ? `lib/${parts[1]}` : parts[0]!;
}

/** One cycle of a directed graph, as a list of nodes, or null. */
function findCycle(nodes: string[], next: (n: string) => string[]): string[] | null {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    state.set(n, 1);
    stack.push(n);
    for (const m of next(n)) {
      if (state.get(m) === 1) return [...stack.slice(stack.indexOf(m)), m];
      if (!state.has(m)) {
        const c = visit(m);
        if (c) return c;
      }
    }
    stack.pop();
    state.set(n, 2);
    return null;
  };
  for (const n of nodes) if (!state.has(n)) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe('architecture: the import rules of ARCHITECTURE.md', () => {
  const g = importGraph();
  const inLib = g.edges.filter((e) => e.from.startsWith('lib/'));
  const list = (es: Edge[]) => es.map((e) => `  ${e.from} imports '${e.spec}'`).join('\n');

  it('reads a graph of the whole repository', () => {
    assert.ok(g.files.length > 100, `only ${g.files.length} files found`);
    assert.ok(g.edges.length > 300, `only ${g.edges.length} edges found`);
  });

  it('has no import cycle between files', () => {
    const adj = new Map<string, string[]>();
    for (const e of g.edges) adj.set(e.from, [...(adj.get(e.from) ?? []), e.to]);
    const c = findCycle(g.files, (n) => adj.get(n) ?? []);
    assert.equal(c, null, `import cycle: ${c?.join(' -> ')}`);
  });

  it('has no cycle between the folders of lib (the data flow goes one way)', () => {
    const adj = new Map<string, Set<string>>();
    for (const e of inLib) {
      const a = folderOf(e.from), b = folderOf(e.to);
      if (a !== b && b.startsWith('lib/') && !e.to.endsWith('lib/index.ts')) adj.set(a, new Set([...(adj.get(a) ?? []), b]));
    }
    const c = findCycle([...adj.keys()].sort(), (n) => [...(adj.get(n) ?? [])]);
    assert.equal(c, null, `folder cycle: ${c?.join(' -> ')}`);
  });

  it('each lib folder imports only the folders ARCHITECTURE.md allows it', () => {
    // The "may import" column of ARCHITECTURE.md's table: keep both in step.
    const allowed: Record<string, string[]> = {
      'lib/core': [],
      'lib/io': [],
      'lib/compute': ['core', 'io'],
      'lib/notebook': ['io'],
      'lib/runner': ['io', 'notebook'],
      'lib/sweep': ['io', 'notebook', 'runner'],
      'lib/data': ['core', 'io'],
      'lib/backbones': ['core', 'io', 'compute', 'notebook'],
      'lib/encoding': ['core', 'io', 'compute', 'notebook', 'data', 'backbones'],
      'lib/diffusion': ['core', 'io', 'compute', 'notebook', 'backbones', 'encoding'],
      'lib/braindive': ['core', 'io', 'compute', 'notebook', 'data', 'backbones', 'encoding', 'diffusion'],
      'lib/synthetic': ['core', 'io', 'compute', 'notebook', 'data', 'backbones', 'diffusion', 'braindive'],
      'lib/viz': ['core', 'io', 'notebook', 'data', 'encoding'],
    };
    const folders = new Set(g.files.filter((f) => f.startsWith('lib/') && f.split('/').length > 2).map(folderOf));
    assert.deepEqual([...folders].filter((f) => !(f in allowed)), [], 'a new lib folder: add it to ARCHITECTURE.md and to this table');
    const bad = inLib.filter((e) => {
      const a = folderOf(e.from), b = folderOf(e.to);
      return a !== 'lib' && a !== b && b.startsWith('lib/') && !allowed[a]!.includes(b.slice(4));
    });
    assert.deepEqual(bad, [], `imports outside the table:\n${list(bad)}`);
  });

  it('lib/io and lib/core import nothing else from lib', () => {
    const bad = inLib.filter((e) => ['lib/io', 'lib/core'].includes(folderOf(e.from)) && folderOf(e.to) !== folderOf(e.from));
    assert.deepEqual(bad, [], `lib/io and lib/core must stand alone:\n${list(bad)}`);
  });

  it('only lib/synthetic imports the simulator', () => {
    const bad = inLib.filter((e) => folderOf(e.to) === 'lib/synthetic' && folderOf(e.from) !== 'lib/synthetic' && e.from !== 'lib/index.ts');
    assert.deepEqual(bad, [], `the synthetic world is reached from outside lib/ (data-prep, tests, notebooks), never from another lib folder:\n${list(bad)}`);
  });

  it('lib/synthetic never imports lib/encoding, and only lib/synthetic reads a subject\'s ground_truth/ (tools join the two)', () => {
    const bad = inLib.filter((e) => folderOf(e.from) === 'lib/synthetic' && folderOf(e.to) === 'lib/encoding');
    assert.deepEqual(bad, [], `run experiments from data-prep/ (e.g. science-run.ts):\n${list(bad)}`);
    const readers = g.files.filter((f) => f.startsWith('lib/') && folderOf(f) !== 'lib/synthetic' && fs.readFileSync(path.join(REPO, f), 'utf8').includes('ground_truth'));
    assert.deepEqual(readers, [], 'read the ground truth through lib/synthetic/ground-truth.ts and pass plain arrays (e.g. fitEncoder({ noiseCeiling }))');
  });

  it('lib never imports data-prep/ or kernels/, nor itself by package name', () => {
    const bad = inLib.filter((e) => !e.to.startsWith('lib/') || e.spec === 'brainnet' || e.spec.startsWith('brainnet/'));
    assert.deepEqual(bad, [], list(bad));
  });

  it('kernels/ takes only types from lib/ (the kernel runs without the built library)', () => {
    const typeOnly = (e: Edge) => {
      const sf = ts.createSourceFile(e.from, fs.readFileSync(path.join(REPO, e.from), 'utf8'), ts.ScriptTarget.Latest);
      return sf.statements.every((s) => !ts.isImportDeclaration(s) || (s.moduleSpecifier as ts.StringLiteral).text !== e.spec || !!s.importClause?.isTypeOnly);
    };
    const bad = g.edges.filter((e) => e.from.startsWith('kernels/') && e.to.startsWith('lib/') && !typeOnly(e));
    assert.deepEqual(bad, [], `use \`import type\`:\n${list(bad)}`);
  });

  it('only lib/runner talks to kernels over zeromq', () => {
    const bad = g.external.filter((e) => e.spec === 'zeromq' && e.from.startsWith('lib/') && folderOf(e.from) !== 'lib/runner');
    assert.deepEqual(bad, [], list(bad));
  });

  it('only lib/compute asks which tfjs backend is running', () => {
    const bad: string[] = [];
    for (const f of g.files.filter((x) => x.startsWith('lib/') && folderOf(x) !== 'lib/compute')) {
      const src = fs.readFileSync(path.join(REPO, f), 'utf8');
      src.split('\n').forEach((line, i) => {
        if (/\btf\.(getBackend|backend)\(\)/.test(line)) bad.push(`  ${f}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(bad, [], `ask lib/compute instead:\n${bad.join('\n')}`);
  });
});

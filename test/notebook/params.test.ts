import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import {
  injectParameters, locateErrorLine, notebookProblems, parameterLiteral, parametersSource, parseNotebook, type Notebook,
} from 'brainnet/runner';

function nb(cells: Notebook['cells'], minor = 5): Notebook {
  return { nbformat: 4, nbformat_minor: minor, metadata: {}, cells };
}
const code = (source: string, tags?: string[], id?: string) => ({ id, cell_type: 'code' as const, source, metadata: tags ? { tags } : {}, execution_count: null, outputs: [] });

describe('notebook/parameters', () => {
  it('types values by parsing: number, boolean, JSON, else string', () => {
    assert.equal(parameterLiteral('3'), '3');
    assert.equal(parameterLiteral('-2.5e-3'), '-2.5e-3');
    assert.equal(parameterLiteral('+7'), '7');
    assert.equal(parameterLiteral('.5'), '.5');
    assert.equal(parameterLiteral('true'), 'true');
    assert.equal(parameterLiteral('false'), 'false');
    assert.equal(parameterLiteral('null'), 'null');
    assert.equal(parameterLiteral('[1, 2]'), '[1,2]');
    assert.equal(parameterLiteral('{"a": {"b": "c"}}'), '{"a":{"b":"c"}}');
    assert.equal(parameterLiteral('"quoted"'), '"quoted"');
    assert.equal(parameterLiteral('hello world'), '"hello world"');
    assert.equal(parameterLiteral('0x10'), '"0x10"');
    assert.equal(parameterLiteral('1.2.3'), '"1.2.3"');
    assert.equal(parameterLiteral('{not json'), '"{not json"');
    assert.equal(parameterLiteral(`it's "x"\n`), JSON.stringify(`it's "x"\n`));
    assert.equal(parameterLiteral(''), '""');
    // the literal evaluates back to the typed value
    assert.equal(eval(`(${parameterLiteral('a\\b </script>')})`), 'a\\b </script>');
  });

  it('writes one const line per parameter and rejects non-identifiers', () => {
    assert.equal(parametersSource({ a: '1', b: 'x' }), '// Parameters injected by the brainnet notebook runner\nconst a = 1;\nconst b = "x";');
    assert.throws(() => parametersSource({ '1a': '1' }), /parameter "1a": expected a TypeScript identifier/);
    assert.throws(() => parametersSource({ class: '1' }), /identifier/);
    assert.throws(() => parametersSource({ 'a-b': '1' }), /identifier/);
  });

  it('injects after the cell tagged parameters, tagged injected-parameters', () => {
    const src = nb([code('intro()', [], 'c0'), code("const greeting = 'hello';\nconst n = 3;", ['parameters'], 'c1'), code('use(greeting)', [], 'c2')]);
    const r = injectParameters(src, { greeting: 'hi', n: '5' });
    assert.equal(r.index, 2);
    assert.deepEqual(r.warnings, []);
    const cell = r.notebook.cells[2];
    assert.deepEqual(cell.metadata.tags, ['injected-parameters']);
    assert.equal(cell.cell_type, 'code');
    assert.match((cell.source as string[]).join(''), /const greeting = "hi";\nconst n = 5;$/);
    assert.match(cell.id!, /^[A-Za-z0-9_-]{1,64}$/);
    assert.equal(r.notebook.cells.length, 4);
    assert.equal(src.cells.length, 3, 'the input notebook is not modified');
    assert.deepEqual(notebookProblems(r.notebook), []);
    // running again replaces the injected cell rather than adding a second one
    const again = injectParameters(r.notebook, { n: '6' });
    assert.equal(again.notebook.cells.filter((c) => c.metadata.tags?.includes('injected-parameters')).length, 1);
  });

  it('warns about parameters the parameters cell does not declare, and injects them anyway', () => {
    const src = nb([code('let a = 1, b: number = 2;\nconst { c, d: e } = obj;', ['parameters'])]);
    const r = injectParameters(src, { a: '1', b: '2', c: '3', e: '4', zeta: '5' });
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0], /parameter "zeta" is not declared in the parameters cell/);
    assert.match((r.notebook.cells[1].source as string[]).join(''), /const zeta = 5;/);
  });

  it('injects at the top when no cell is tagged parameters', () => {
    const r = injectParameters(nb([code('x()')], 4), { x: '1' });
    assert.equal(r.index, 0);
    assert.equal(r.notebook.cells[0].metadata.tags![0], 'injected-parameters');
    assert.equal(r.notebook.cells[0].id, undefined, 'nbformat 4.4 cells have no id');
    assert.match(r.warnings[0], /no cell is tagged "parameters"/);
  });

  it('reads notebooks with clear errors', () => {
    assert.throws(() => parseNotebook('{', 'a.ipynb'), /a\.ipynb: expected notebook JSON/);
    assert.throws(() => parseNotebook('{"nbformat": 3, "worksheets": []}', 'b.ipynb'), /b\.ipynb: expected an nbformat 4 notebook .* found nbformat 3/);
  });

  it('finds the failing line in kernel tracebacks', () => {
    const src = 'const a = 1;\nconst b = a.c.d;\nconst z = 3;';
    assert.equal(locateErrorLine(src, ['TypeError: x', 'Cell In[4], line 2', '  2 | const b'], '', 4), 2);
    assert.equal(locateErrorLine(src, ['Cell In[2], line 1', 'Cell In[4], line 3'], '', 4), 3, "prefers this cell's frame");
    assert.equal(locateErrorLine(src, ['\x1b[0;32mCell \x1b[0;32mIn [7], line 2\x1b[0m'], ''), 2);
    assert.equal(locateErrorLine(src, ['at <cell>:3:5'], ''), 3);
    assert.equal(locateErrorLine(src, ['no location'], ''), undefined);
    assert.equal(locateErrorLine(src, ['Cell In[1], line 99'], ''), undefined, 'out of range');
  });

  it('makes notebooks that nbformat validates (when Debian python3-nbformat is present)', function () {
    if (!fs.existsSync('/usr/bin/python3')) this.skip();
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import nbformat'], { stdio: 'ignore' });
    } catch {
      this.skip();
    }
    const r = injectParameters(nb([code('const a = 1;', ['parameters'], 'p')]), { a: '2' });
    const out = execFileSync('/usr/bin/python3', ['-c', 'import sys, nbformat; nbformat.validate(nbformat.reads(sys.stdin.read(), as_version=4)); print("ok")'], { input: JSON.stringify(r.notebook) });
    assert.equal(out.toString().trim(), 'ok');
  });
});

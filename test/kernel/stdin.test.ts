/**
 * stdin in the brainnet-ts kernel, through the runner's Jupyter client and its CLI: `await input()`, the password
 * form and the synchronous `prompt()` ask the front end and return its answer; `allow_stdin: false` gives a clear
 * error; an input request nobody answers is interrupted; the CLI answers prompts from `--input name=value`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findKernelSpec, KernelClient, type InputRequest, type NotebookOutput } from 'brainnet/runner';
import { installTempKernel, REPO } from './helpers.js';

const CLI = path.join(REPO, 'dist', 'lib', 'runner', 'cli.js');
const value = (outs: NotebookOutput[]) => outs.map((o) => (o.output_type === 'execute_result' ? String(o.data['text/plain']) : '')).join('');

describe('kernel: stdin (input, prompt) through the runner', function () {
  this.timeout(120_000);
  let install: ReturnType<typeof installTempKernel>;
  let kernel: KernelClient;
  let dir: string;

  before(async () => {
    install = installTempKernel();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-stdin-'));
    kernel = await KernelClient.start({ kernel: findKernelSpec('brainnet-ts', { ...process.env, JUPYTER_PATH: install.jupyterPath }), cwd: dir });
  });
  after(async () => {
    await kernel?.shutdown();
    install?.cleanup();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('input(), input(..., { password: true }) and prompt() send input_request and return the answers', async () => {
    const asked: InputRequest[] = [];
    const r = await kernel.execute(
      "const who = await input('Subject: ');\nconst token = await input('Token: ', { password: true });\nconst runs = prompt('Runs?', '3');\n`${who} ${token.length} ${runs}`",
      { onInput: (req) => (asked.push(req), req.prompt === 'Subject: ' ? 'sub-01' : req.password ? 'secret' : '') },
    );
    assert.equal(r.status, 'ok', JSON.stringify(r.error));
    assert.deepEqual(asked, [{ prompt: 'Subject: ', password: false }, { prompt: 'Token: ', password: true }, { prompt: 'Runs?', password: false }]);
    assert.equal(value(r.outputs), "'sub-01 6 3'"); // an empty answer to prompt() gives its default
  });

  it('a cell sent with allow_stdin: false that asks for input fails with an error that says so', async () => {
    const r = await kernel.execute("await input('Subject: ')");
    assert.equal(r.status, 'error');
    assert.equal(r.error!.ename, 'StdinNotAllowedError');
    assert.match(r.error!.evalue, /input\("Subject: "\) needs an answer from the front end, but this execute_request came with allow_stdin: false.*--input 'Name=value'/s);
    const p = await kernel.execute("prompt('Subject: ')");
    assert.equal(p.error!.ename, 'StdinNotAllowedError');
  });

  it('an error answer fails the cell with the front end\'s message', async () => {
    const r = await kernel.execute("await input('Subject: ')", { onInput: () => { throw new Error('nobody here knows the subject'); } });
    assert.equal(r.error!.ename, 'InputError');
    assert.match(r.error!.evalue, /input\("Subject: "\): nobody here knows the subject/);
  });

  for (const code of ["await input('Never answered: ')", "prompt('Never answered: ')", "await new Promise((r) => setTimeout(r, 5));\nprompt('Never answered: ')"]) {
    it(`an input request nobody answers is interrupted (${code.replace(/\n/g, ' ')}), and the kernel goes on`, async () => {
      let asked!: () => void;
      const wasAsked = new Promise<void>((r) => (asked = r));
      const running = kernel.execute(code, { onInput: () => (asked(), new Promise<string>(() => {})) });
      await wasAsked;
      await kernel.interrupt();
      const r = await running;
      assert.equal(r.status, 'error');
      assert.equal(r.error!.ename, 'InterruptedError');
      assert.match(r.error!.evalue, /"Never answered: "\) was interrupted before the front end answered/);
      assert.equal(value((await kernel.execute('40 + 2')).outputs), '42');
    });
  }

  describe('the CLI (one kernel per run)', () => {
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [CLI, path.join(dir, 'ask.ipynb'), '--out', path.join(dir, 'out'), ...args], { env: { ...process.env, JUPYTER_PATH: install.jupyterPath }, encoding: 'utf8', timeout: 110_000 });
    before(() => {
      const nb = {
        nbformat: 4, nbformat_minor: 5, metadata: { kernelspec: { name: 'brainnet-ts', display_name: 'TypeScript (brainnet)', language: 'typescript' } },
        cells: [{ cell_type: 'code', id: 'ask', metadata: {}, source: "const subject = await input('Subject: ');\nconst key = await input('API key: ', { password: true });\n`${subject}:${key.length}`", outputs: [], execution_count: null }],
      };
      fs.writeFileSync(path.join(dir, 'ask.ipynb'), JSON.stringify(nb));
    });

    it('answers prompts from --input name=value (the prompt without its colon)', () => {
      const ok = cli('--input', 'Subject=sub-07', '--input', 'API key=abcd');
      assert.equal(ok.status, 0, ok.stderr);
      const out = JSON.parse(fs.readFileSync(path.join(dir, 'out', 'ask.ipynb'), 'utf8'));
      assert.equal(value(out.cells[0].outputs), "'sub-07:4'");
    });

    it('without --input, the cell fails with the kernel\'s allow_stdin error', () => {
      const none = cli();
      assert.equal(none.status, 1);
      assert.match(none.stderr, /StdinNotAllowedError: input\("Subject: "\) needs an answer from the front end/);
    });

    it('names a prompt no --input answers, and refuses a malformed --input', () => {
      const other = cli('--input', 'Subject=sub-07');
      assert.equal(other.status, 1);
      assert.match(other.stderr, /InputError: input\("API key: "\): no --input answers the prompt "API key: ": expected --input 'API key=<value>', found only 'Subject'/);
      const bad = cli('--input', 'novalue');
      assert.equal(bad.status, 2);
      assert.match(bad.stderr, /--input: expected name=value, found "novalue"/);
    });
  });
});

/**
 * notebooks/braindive_minimal.ipynb runs headless on the brainnet-ts kernel with the committed synthetic-world models
 * (few images and steps, to keep it quick): it shows the guided/unguided grid, the activation plot, the top-20 % grid
 * and the evaluation table, and an unknown region stops it with an error that lists the known ones.
 */
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { tf, initBackend } from 'brainnet';
import { loadOnnxImageEncoder } from 'brainnet/backbones';
import { trainVoxelEncoder, saveVoxelEncoder } from 'brainnet/braindive';
import type { Notebook } from 'brainnet/runner';
import { installTestKernel, runNotebookCli, NOTEBOOK_CLI, REPO } from '../notebook/kernel-env';

type Out = { output_type: string; data?: Record<string, unknown>; text?: string | string[]; evalue?: string };
const outputs = (nb: Notebook): Out[] => nb.cells.flatMap((c) => ((c as { outputs?: Out[] }).outputs ?? []));
const text = (o: Out) => (Array.isArray(o.text) ? o.text.join('') : o.text ?? '');

describe('braindive_minimal.ipynb end to end (synthetic world, brainnet-ts kernel)', function () {
  this.timeout(600000);
  let env: ReturnType<typeof installTestKernel>;
  let tmp: string;
  before(() => {
    assert.ok(fs.existsSync(NOTEBOOK_CLI), `${NOTEBOOK_CLI} is missing: run npm run build first`);
    env = installTestKernel();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-braindive-nb-'));
  });
  after(() => { env?.cleanup(); if (tmp) fs.rmSync(tmp, { recursive: true, force: true }); });

  const run = (name: string, params: string[]) => {
    const r = runNotebookCli(['notebooks/braindive_minimal.ipynb', '--out', path.join(tmp, name), ...params.flatMap((p) => ['--param', p]), '--timeout', '400'], env.jupyterPath, 550000);
    const file = path.join(tmp, name, 'braindive_minimal.ipynb');
    return { status: r.code, log: `${r.stdout}\n${r.stderr}`, nb: fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Notebook) : null };
  };

  it('generates, plots, re-ranks and evaluates a region; asked for SAG, says in one line that it does not apply here', () => {
    const { status, log, nb } = run('ppa', ['region=PPA', 'nImages=5', 'steps=6', 'sagScale=0.75']);
    assert.equal(status, 0, log);
    const outs = outputs(nb!);
    const pngs = outs.filter((o) => o.data?.['image/png']);
    assert.ok(pngs.length >= 2, `the side-by-side grid and the top-20 % grid: ${pngs.length} PNGs`);
    assert.ok(outs.some((o) => o.data?.['application/vnd.plotly.v1+json'] || o.data?.['text/html']), 'the activation plot');
    const printed = outs.map(text).join('');
    assert.match(printed, /guided \d+\.\d s\/image/);
    assert.match(printed, /PPA\s+places\s+5\s+\d+\s+\d+\s+\d+\s+-?\d+\.\d\d/, printed);
    assert.equal(printed.split('self-attention guidance does not apply in the synthetic world').length - 1, 1, printed);
    assert.doesNotMatch(printed, /both with self-attention guidance/);
  });

  it('mode sd runs the paper\'s pipeline on ONNX weights: Stable Diffusion, an ONNX image encoder, CLIP zero-shot', async () => {
    // tiny stand-ins in the real layouts: tiny-sd (optimum's SD folder), a ViT exported to ONNX as the image encoder, a
    // voxel encoder fitted on its features (random responses: the wiring is under test, not the science), tiny-clip
    await initBackend();
    const vit = path.join(REPO, 'test/fixtures/onnx/vit_tiny.onnx');
    const fx = await loadOnnxImageEncoder(vit, { inputSize: 32 });
    assert.deepEqual(fx.features(tf.zeros([3, 3, 40, 40]) as tf.Tensor4D).shape, [3, fx.dim]);
    const n = 64, v = 6;
    const X = new Float32Array(n * fx.dim).map((_, i) => Math.sin(i * 1.3)), Y = new Float32Array(n * v).map((_, i) => Math.cos(i * 0.7));
    const enc = trainVoxelEncoder(X, Y, n, fx.dim, v, null, { featureName: fx.name, vertexSet: 'lh 3 + rh 3 #test', regions: { FFA: Int32Array.from([0, 1, 2]) } }, { steps: 20 });
    const encFile = path.join(tmp, 'clip-encoder.safetensors');
    await saveVoxelEncoder(encFile, enc);
    const { status, log, nb } = run('sd', ['mode=sd', `sdDir=${path.join(REPO, 'test/fixtures/diffusion/tiny-sd')}`, 'sdSize=64', 'sdSteps=3', `clipEncoder=${vit}`, 'clipInputSize=32',
      `encoderFile=${encFile}`, `clipModel=${path.join(REPO, 'test/fixtures/braindive/tiny-clip')}`, 'region=FFA', 'nImages=2']);
    assert.equal(status, 0, log);
    const outs = outputs(nb!);
    assert.ok(outs.filter((o) => o.data?.['image/png']).length >= 2);
    const printed = outs.map(text).join('');
    assert.match(printed, /FFA\s+faces\s+2\s+\d+\s+\d+\s+\d+\s+-?\d+\.\d\d/);
    // the paper's recipe by default: self-attention guidance at 0.75 (the tiny UNet carries its attention output)
    assert.match(printed, /self-attention guidance 0\.75/);
    assert.match(printed, /both with self-attention guidance 0\.75/);
  });

  it('a region that does not exist stops the notebook with an error that lists those that do', () => {
    const { status, log, nb } = run('bad-region', ['region=FFX', 'nImages=2', 'steps=2']);
    assert.notEqual(status, 0);
    const errors = nb ? outputs(nb).filter((o) => o.output_type === 'error').map((o) => o.evalue ?? '').join('\n') : '';
    assert.match(`${errors}\n${log}`, /FFX/);
    assert.match(`${errors}\n${log}`, /PPA/);
  });
});

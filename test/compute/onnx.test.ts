/** onnxruntime set-up (lib/compute/onnx.ts): a session leaves nothing behind in the temporary folder. */
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

describe('compute/onnx: onnxruntime set-up', function () {
  this.timeout(60000);
  it('a process that runs an onnxruntime session through the library leaves no telemetry log (mat-debug-<pid>.log) in TMPDIR', () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-ort-'));
    try {
      const model = path.join(ROOT, 'test', 'fixtures', 'diffusion', 'tiny-sd', 'text_encoder', 'model.onnx');
      const script = `const c = require(${JSON.stringify(path.join(ROOT, 'dist', 'lib', 'compute', 'index.js'))});
        c.loadOnnxRuntime().InferenceSession.create(${JSON.stringify(model)}).then((s) => console.log(process.pid, s.inputNames.join(',')));`;
      const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp, TMP: tmp, TEMP: tmp };
      delete env.ORT_DISABLE_TELEMETRY;
      const r = spawnSync(process.execPath, ['-e', script], { env, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^\d+ input_ids/, 'the session ran');
      assert.deepEqual(fs.readdirSync(tmp), [], `left in ${tmp}`);
      assert.ok(!fs.existsSync(path.join('/tmp', `mat-debug-${r.stdout.split(' ')[0]}.log`)), 'nothing in /tmp either');
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

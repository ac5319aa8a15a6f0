/**
 * CLIP BPE tokenizer: token ids match a straightforward Python port of CLIP's simple_tokenizer.py
 * (data-prep/fixtures/make_diffusion_fixtures.py, python3-regex) on a small vocabulary learned for
 * the test, in Hugging Face's vocab.json + merges.txt layout.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FileFormatError } from 'brainnet/io';
import { ClipTokenizer, bytesToUnicode } from 'brainnet/diffusion';

const DIR = path.join(__dirname, '../fixtures/diffusion/tiny-sd/tokenizer');
const cases = (JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/diffusion/tokenizer.json'), 'utf8')) as { cases: { text: string; ids: number[] }[] }).cases;

describe('diffusion: CLIP BPE tokenizer', () => {
  const tok = ClipTokenizer.fromDir(DIR);

  it('byte table: 256 distinct printable characters, ASCII letters map to themselves', () => {
    const t = bytesToUnicode();
    assert.equal(new Set(t).size, 256);
    assert.equal(t['a'.charCodeAt(0)], 'a');
    assert.equal(t[32], '\u0120'); // space -> Ġ
  });

  for (const c of cases) {
    it(`ids of ${JSON.stringify(c.text.length > 40 ? c.text.slice(0, 40) + '…' : c.text)} match the Python reference`, () => {
      assert.deepEqual(tok.encodeText(c.text), c.ids);
    });
  }

  it('encode: <|startoftext|> ids <|endoftext|> then the pad token ("!" here, as SD-2.x) to 77', () => {
    const ids = tok.encode('a photo of a face');
    assert.equal(ids.length, 77);
    assert.equal(ids[0], tok.bosId);
    assert.deepEqual(Array.from(ids.slice(1, 6)), cases[0]!.ids);
    assert.equal(ids[6], tok.eosId);
    assert.equal(tok.padId, tok.vocab['!']);
    assert.ok(ids.slice(7).every((v) => v === tok.padId));
    const long = tok.encode('the quick brown fox jumps over the lazy dog '.repeat(20));
    assert.equal(long.length, 77);
    assert.equal(long[76], tok.eosId, 'truncated to 75 tokens plus the two special ones');
    const empty = tok.encode('');
    assert.deepEqual([empty[0], empty[1], empty[2]], [tok.bosId, tok.eosId, tok.padId]);
  });

  it('decode inverts encode for cleaned text', () => {
    assert.equal(tok.decode(tok.encode('A Photo of   a FACE')), 'a photo of a face');
    assert.equal(tok.decode(tok.encodeText('pizza and apples')), 'pizza and apples');
  });

  it('a missing or broken tokenizer file is named, with the expected layout', () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tok-'));
    assert.throws(() => ClipTokenizer.fromDir(d), (e: Error) => e instanceof FileFormatError && e.message.includes(path.join(d, 'vocab.json')) && /tokenizer\/merges\.txt/.test(e.message));
    fs.writeFileSync(path.join(d, 'vocab.json'), '{"a": 0}');
    fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\na b c\n');
    assert.throws(() => ClipTokenizer.fromDir(d), /line 2/);
    fs.writeFileSync(path.join(d, 'merges.txt'), '#version: 0.2\n');
    assert.throws(() => ClipTokenizer.fromDir(d), /start token "<\|startoftext\|>" is not in the vocabulary/);
    fs.rmSync(d, { recursive: true });
  });
});

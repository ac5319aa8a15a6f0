/**
 * Crash hygiene in lib/io: temporary files carry their writer's pid and the leftovers of dead writers are removed
 * (live ones stay); folder locks name their holder, wait on request, take over a stale lock with a note and are
 * released on SIGTERM; HDF5 and MAT files written twice from the same data are the same bytes. The holders are
 * real child processes, killed for real.
 */
import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  acquireFolderLock, FolderLockedError, folderLockFile, lockStatus, processAlive, readLockFile, removeStaleTemps, tempFileWriter, tempPathFor,
  withFileLock, withFolderLock, writeFileAtomic, openHdf5, writeMat, readMat, readHdf5,
} from 'brainnet/io';

const IO = require.resolve('brainnet/io');

/** A pid that has just exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '']);
  assert.ok(r.pid && !processAlive(r.pid));
  return r.pid!;
}

/** A child that takes the lock of `dir` as `command`, writes a temporary file there, prints 'locked' and waits; `releaseAfterMs` releases it. */
function lockHolder(dir: string, command = 'test holder', releaseAfterMs = 60000): Promise<ChildProcess> {
  const code = `
    const io = require(${JSON.stringify(IO)});
    const fs = require('node:fs'), path = require('node:path');
    io.acquireFolderLock(${JSON.stringify(dir)}, { command: ${JSON.stringify(command)}, log: null }).then((lock) => {
      fs.writeFileSync(io.tempPathFor(path.join(${JSON.stringify(dir)}, 'big.npy')), Buffer.alloc(1000));
      console.log('locked');
      setTimeout(() => { lock.release(); console.log('released'); }, ${releaseAfterMs});
      setTimeout(() => {}, ${releaseAfterMs} + 60000);
    });`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('locked')) resolve(child); });
    child.on('exit', (c) => reject(new Error(`lock holder exited early (${c})`)));
  });
}

const exited = (c: ChildProcess) => new Promise<NodeJS.Signals | number | null>((r) => (c.exitCode !== null || c.signalCode !== null ? r(c.signalCode ?? c.exitCode) : c.on('exit', (code, sig) => r(sig ?? code))));

describe('io: crash hygiene (temporary files, folder locks, reproducible files)', function () {
  this.timeout(60000);
  let tmp: string;
  const children: ChildProcess[] = [];
  beforeEach(() => { tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'brainnet-hygiene-')); });
  afterEach(() => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('names temporary files by pid and removes those of dead writers only', async () => {
    const target = path.join(tmp, 'sub', 'x.npy');
    const mine = tempPathFor(target);
    assert.equal(tempFileWriter(path.basename(mine)), process.pid);
    assert.equal(tempFileWriter('L00_a.local.npy.tmp-4321'), 4321, 'the token cache before resume named its temporaries so');
    assert.equal(tempFileWriter('x.npy'), null);
    assert.equal(tempFileWriter('notes.tmp-12'), null, 'a user file that merely looks alike is left');
    const dead = deadPid();
    const live = spawn('sleep', ['30']);
    children.push(live);
    fs.mkdirSync(path.join(tmp, 'sub'), { recursive: true });
    const files = {
      mine, notes: path.join(tmp, 'notes.tmp-12'), data: path.join(tmp, 'sub', 'x.npy'),
      dead: path.join(tmp, 'sub', `.x.npy.tmp-${dead}-abc12345`), deadDir: path.join(tmp, `.ckpt.tmp-${dead}-zz`),
      live: path.join(tmp, `.y.npy.tmp-${live.pid}-abc12345`), oldCache: path.join(tmp, `L01_b.global.npy.tmp-${dead}`),
    };
    for (const [k, f] of Object.entries(files)) {
      if (k === 'deadDir') { fs.mkdirSync(f); fs.writeFileSync(path.join(f, 'a'), Buffer.alloc(500)); } else fs.writeFileSync(f, Buffer.alloc(1000));
    }
    const r = removeStaleTemps(tmp);
    assert.deepEqual(r.removed.sort(), [files.dead, files.deadDir, files.oldCache].sort());
    assert.equal(r.bytes, 2500);
    assert.deepEqual(r.pids, [dead]);
    assert.deepEqual(r.kept.sort(), [files.live, files.mine].sort());
    for (const k of ['mine', 'notes', 'data', 'live'] as const) assert.ok(fs.existsSync(files[k]), `${k} stays`);
  });

  it('a second writer fails at once naming the holder; with wait it waits, says so, and goes on', async () => {
    const dir = path.join(tmp, 'out');
    const holder = await lockHolder(dir, 'make-subject (seed 1)', 1500);
    children.push(holder);
    assert.equal(lockStatus(dir).state, 'live');
    const t0 = Date.now();
    await assert.rejects(acquireFolderLock(dir, { command: 'make-subject (seed 2)', log: null }), (e: Error) => {
      assert.ok(e instanceof FolderLockedError);
      assert.match(e.message, new RegExp(`^${dir}: expected no other writer of this folder, but found pid ${holder.pid} \\(make-subject \\(seed 1\\).*holding .*\\.brainnet\\.lock\\. Wait for it to finish`));
      return true;
    });
    assert.ok(Date.now() - t0 < 1000, 'at once');
    const lines: string[] = [];
    await withFolderLock(dir, { command: 'zscore', wait: 20000, log: (s) => lines.push(s), pollMs: 100 }, (lock) => {
      const h = readLockFile(lock.file);
      assert.ok(h && h !== 'unreadable');
      assert.equal(h.pid, process.pid);
      assert.equal(h.command, 'zscore');
    });
    assert.match(lines[0]!, new RegExp(`waiting for pid ${holder.pid} \\(make-subject \\(seed 1\\)`));
    assert.match(lines[1]!, /the other writer is done/);
    assert.ok(!fs.existsSync(folderLockFile(dir)), 'released');
    // a bounded wait gives up with the same message
    const h2 = await lockHolder(dir, 'rank-hcp');
    children.push(h2);
    await assert.rejects(withFolderLock(dir, { command: 'x', wait: 300, log: null, pollMs: 50 }, () => undefined), /found pid \d+ \(rank-hcp.*\(waited 0 s\)/);
  });

  it('takes over the lock of a writer killed with SIGKILL, with a note, and removes its temporary files', async () => {
    const dir = path.join(tmp, 'out');
    const holder = await lockHolder(dir);
    holder.kill('SIGKILL');
    await exited(holder);
    assert.equal(lockStatus(dir).state, 'stale');
    const leftovers = fs.readdirSync(dir).filter((n) => tempFileWriter(n) === holder.pid);
    assert.equal(leftovers.length, 1);
    const lines: string[] = [];
    await withFolderLock(dir, { command: 'make-subject', log: (s) => lines.push(s) }, () => undefined);
    assert.match(lines[0]!, new RegExp(`${dir}: taking over the lock of pid ${holder.pid} \\(test holder.*which is no longer running`));
    assert.match(lines[1]!, new RegExp(`removed 1 temporary file \\(1000 bytes\\) left by killed writer \\(pid ${holder.pid}\\)`));
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it('recognises a pid reused by another process (Linux start time), and refuses a second lock in the same process', async function () {
    if (!fs.existsSync('/proc/self/stat')) this.skip();
    const dir = path.join(tmp, 'out');
    const other = spawn('sleep', ['30']);
    children.push(other);
    fs.mkdirSync(dir);
    fs.writeFileSync(folderLockFile(dir), JSON.stringify({ pid: other.pid, host: os.hostname(), command: 'old run', argv: '', started: '2026-01-01T00:00:00Z', procStart: 1, token: 'x' }));
    assert.equal(lockStatus(dir).state, 'stale', 'pid alive but started at another time: stale');
    const lock = await acquireFolderLock(dir, { command: 'first', log: null });
    await assert.rejects(acquireFolderLock(dir, { command: 'second', log: null }), /pid \d+, this process \(first.*This same process is already writing it/);
    lock.release();
    lock.release();
    assert.equal(lockStatus(dir).state, 'none');
  });

  it('releases the lock when the holder gets SIGTERM, and locks an output file beside it', async () => {
    const dir = path.join(tmp, 'out');
    const holder = await lockHolder(dir);
    holder.kill('SIGTERM');
    assert.equal(await exited(holder), 'SIGTERM', 'dies of the signal as it would have');
    assert.equal(lockStatus(dir).state, 'none');
    const file = path.join(tmp, 'brick.h5');
    await withFileLock(file, { command: 'crop-images', log: null }, async (lock) => {
      assert.equal(lock.file, path.join(tmp, '.brick.h5.brainnet.lock'));
      await assert.rejects(withFileLock(file, { command: 'reorder', log: null }, () => undefined), /brick\.h5: expected no other writer of this file.*crop-images/);
    });
  });

  it('an unreadable lock file is refused, naming it and how to fix it', async () => {
    const dir = path.join(tmp, 'out');
    fs.mkdirSync(dir);
    fs.writeFileSync(folderLockFile(dir), 'garbage');
    await assert.rejects(acquireFolderLock(dir, { command: 'x', log: null }), /\.brainnet\.lock: expected a brainnet lock file .* but found something unreadable\. If no other command is writing .*, delete/);
  });

  it('HDF5 and MAT files written twice from the same data are the same bytes (no time stamped in)', async () => {
    const write = async (n: number) => {
      const h = await openHdf5(path.join(tmp, `a${n}.h5`), 'w');
      h.createDataset('x', { shape: [4, 3], dtype: 'uint8', chunks: [1, 3], compression: 1 });
      h.writeRows('x', 0, { dtype: 'uint8', shape: [4, 3], data: Uint8Array.from({ length: 12 }, (_, i) => i) });
      h.writeDataset('g/y', { dtype: 'float32', shape: [2], data: Float32Array.from([1.5, -2]) });
      h.setAttr('/', 'description', 'same');
      h.close();
      await writeMat(path.join(tmp, `a${n}.mat`), { v: { dtype: 'float64', shape: [1, 3], data: Float64Array.from([1, 2, 3]) } });
    };
    await write(1);
    await new Promise((r) => setTimeout(r, 1100));
    await write(2);
    assert.ok(fs.readFileSync(path.join(tmp, 'a1.h5')).equals(fs.readFileSync(path.join(tmp, 'a2.h5'))), 'HDF5 bytes differ');
    assert.ok(fs.readFileSync(path.join(tmp, 'a1.mat')).equals(fs.readFileSync(path.join(tmp, 'a2.mat'))), 'MAT bytes differ');
    assert.deepEqual(Array.from((await readHdf5(path.join(tmp, 'a2.h5'), 'x')).data as Uint8Array), Array.from({ length: 12 }, (_, i) => i));
    assert.deepEqual(Array.from(((await readMat(path.join(tmp, 'a2.mat'))).v as { data: Float64Array }).data), [1, 2, 3]);
    assert.ok(Date.now() > 1e12, 'the clock is ours again');
    // an atomic write leaves nothing but the target
    await writeFileAtomic(path.join(tmp, 'z.txt'), 'z');
    assert.deepEqual(fs.readdirSync(tmp).filter((n) => n.startsWith('.')), []);
  });
});

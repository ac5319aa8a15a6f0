/**
 * How watch mode notices saves (lib/runner/saves.ts): by content, with the stat only as a shortcut, so no save is
 * lost to a coarse or unchanged modification time, a half-written file, or a save made before polling began; and
 * abortableSleep, which the watch loop polls with, leaves no listener or timer behind.
 */
import { strict as assert } from 'node:assert';
import { getEventListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { abortableSleep, RACY_MS, SaveDetector } from 'brainnet/runner';

describe('notebook runner: save detection in watch mode', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bn-saves-'));
    file = path.join(dir, 'nb.ipynb');
    fs.writeFileSync(file, '{"v": 1}');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('sees a save made after the first read and before the first poll', () => {
    const d = new SaveDetector(file);
    assert.equal(d.read(), '{"v": 1}');
    fs.writeFileSync(file, '{"v": 2}');
    assert.equal(d.poll(), '{"v": 2}');
    assert.equal(d.poll(), undefined);
  });

  it('sees a save that leaves the modification time and size unchanged (a second save within one file-time tick)', () => {
    const d = new SaveDetector(file);
    d.read();
    const before = fs.statSync(file);
    fs.writeFileSync(file, '{"v": 3}'); // same size
    fs.utimesSync(file, before.atime, before.mtime); // as if the file system's clock had not moved on
    assert.ok(Math.abs(fs.statSync(file).mtimeMs - before.mtimeMs) < 1);
    assert.equal(fs.statSync(file).size, before.size);
    assert.equal(d.poll(), '{"v": 3}');
  });

  it('returns a half-written save, then the whole one when the rest lands', () => {
    const d = new SaveDetector(file);
    d.read();
    fs.writeFileSync(file, '{"v": 4, "ce');
    assert.equal(d.poll(), '{"v": 4, "ce');
    fs.appendFileSync(file, 'lls": []}');
    assert.equal(d.poll(), '{"v": 4, "cells": []}');
  });

  it('reads a just-modified file again on each poll (a write in the same tick could leave its stat unchanged)', () => {
    const d = new SaveDetector(file);
    d.read();
    const reads = d.reads;
    for (let i = 0; i < 3; i++) assert.equal(d.poll(), undefined); // same content: no save
    assert.equal(d.reads, reads + 3);
  });

  it('does not read a quiet file on every poll once its time is older than the racy window', () => {
    let now = Date.now();
    const old = new Date(now - 10 * RACY_MS);
    fs.utimesSync(file, old, old);
    const d = new SaveDetector(file, () => now);
    d.read();
    const reads = d.reads;
    for (let i = 0; i < 5; i++) assert.equal(d.poll(), undefined);
    assert.equal(d.reads, reads, 'a quiet old file is only stat-ed');
    now += 1000;
    fs.writeFileSync(file, '{"v": 5}');
    assert.equal(d.poll(), '{"v": 5}');
  });

  it('survives a rename-save (a new inode) and a missing file in between', () => {
    const d = new SaveDetector(file);
    d.read();
    fs.rmSync(file);
    assert.equal(d.poll(), undefined);
    fs.writeFileSync(`${file}.tmp`, '{"v": 6}');
    fs.renameSync(`${file}.tmp`, file);
    assert.equal(d.poll(), '{"v": 6}');
  });

  it('names the file when it cannot be read at all', () => {
    assert.throws(() => new SaveDetector(path.join(dir, 'none.ipynb')).read(), /none\.ipynb: expected a notebook file, found no such file; check the path/);
  });

  it('abortableSleep removes its abort listener and timer, whether it times out or is aborted', async () => {
    const stop = new AbortController();
    for (let i = 0; i < 20; i++) await abortableSleep(1, stop.signal);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
    const sleeping = abortableSleep(60_000, stop.signal);
    assert.equal(getEventListeners(stop.signal, 'abort').length, 1);
    stop.abort();
    await sleeping; // resolves at once, not after a minute
    assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
  });
});

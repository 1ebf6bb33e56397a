/**
 * `npm start` serves from the existing build when it is current and rebuilds only a stale one
 * (issue 26). The test works on a copy of the project (sources, build and a link to the
 * installed dependencies), so editing a source there cannot disturb the tree under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/process.js';

/** The project root: dist/test/build → ../../.. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COPIED = ['package.json', 'tsconfig.json', 'scripts', 'src', 'test', 'bench', 'console', 'packages', 'dist'];

function copyProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-start-'));
  for (const name of COPIED) {
    const from = path.join(ROOT, name);
    if (fs.existsSync(from)) fs.cpSync(from, path.join(dir, name), { recursive: true, preserveTimestamps: true });
  }
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** Every file under dist/ with its modification time in nanoseconds. */
function buildOutput(dir: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  const walk = (folder: string) => {
    for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
      const full = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(full);
      else out.set(path.relative(dir, full), fs.statSync(full, { bigint: true }).mtimeNs);
    }
  };
  walk(path.join(dir, 'dist'));
  return out;
}

/** Runs `npm start` in `dir` until the server answers HTTP, then stops it; returns its output. */
async function npmStart(dir: string): Promise<string> {
  const port = await freePort();
  const child = spawn('npm', ['start'], {
    cwd: dir,
    detached: true,
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', FERRY_DATA_DIR: path.join(dir, 'data'), FERRY_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}: ${output}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/elements/api-v2/elements`);
        await res.arrayBuffer();
        assert.ok(res.status > 0);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`npm start did not answer within 120 s: ${output}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
    await exited;
  }
  return output;
}

test('npm start twice on a current build does not run the compiler; a changed source is rebuilt', { timeout: 600_000 }, async () => {
  const dir = copyProject();
  try {
    const before = buildOutput(dir);
    assert.ok(before.has(path.join('dist', 'src', 'cli.js')), 'the copy holds a build');
    assert.ok(before.has(path.join('dist', '.build-hash')), 'the build recorded its input hash');

    const first = await npmStart(dir);
    assert.doesNotMatch(first, /build: /, 'the first start on a current build does not build');
    assert.deepEqual(buildOutput(dir), before, 'no build output changed on the first start');
    await npmStart(dir);
    assert.deepEqual(buildOutput(dir), before, 'no build output changed on the second start');

    // A source edit makes the build stale: the next start rebuilds, and the one after does not.
    const cli = path.join(dir, 'src', 'cli.ts');
    fs.appendFileSync(cli, '\n// edited by the start test\n');
    const stale = spawnSync(process.execPath, ['scripts/build.js'], { cwd: dir, encoding: 'utf8' });
    assert.equal(stale.status, 0, stale.stderr);
    assert.match(stale.stderr, /sources changed, rebuilding/);
    const rebuilt = buildOutput(dir);
    assert.notEqual(rebuilt.get(path.join('dist', 'src', 'cli.js')), before.get(path.join('dist', 'src', 'cli.js')), 'cli.js was recompiled');
    assert.notEqual(fs.readFileSync(path.join(dir, 'dist', '.build-hash'), 'utf8'), fs.readFileSync(path.join(ROOT, 'dist', '.build-hash'), 'utf8'));
    await npmStart(dir);
    assert.deepEqual(buildOutput(dir), rebuilt, 'the rebuilt output is not built again');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

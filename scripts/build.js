#!/usr/bin/env node
/**
 * The project's build, and the check that skips it when nothing changed (issue 26).
 *
 *   node scripts/build.js           build when the inputs changed since the last build, else nothing
 *   node scripts/build.js --force   build from a clean dist/ whatever the inputs
 *   node scripts/start.js …         the same check, then `ferry serve …` in the same process
 *
 * "Changed" is decided by content, not modification times: a SHA-256 over the path and bytes
 * of every build input (the TypeScript under src/, test/ and bench/, the console's sources,
 * tsconfig.json, package.json) is written to dist/.build-hash after a successful build, and a
 * build whose inputs hash to the same value is skipped. Hashing ~1.5 MB takes tens of
 * milliseconds, so `npm start` on a current build costs about what `node dist/src/cli.js serve`
 * does. A stale build is rebuilt from a clean dist/ (so output of a deleted source cannot
 * linger); the hash is written last, so a build that fails or is interrupted is redone.
 *
 * Plain JavaScript with no dependencies: it must run before anything is compiled.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist');
const hashFile = path.join(dist, '.build-hash');

/** Folders whose files feed the build, with the file names that count in each. */
const INPUT_TREES = [
  { dir: 'src', keep: (name) => name.endsWith('.ts') },
  { dir: 'test', keep: (name) => name.endsWith('.ts') },
  { dir: 'bench', keep: (name) => name.endsWith('.ts') },
  { dir: 'console', keep: () => true },
];
const INPUT_FILES = ['tsconfig.json', 'package.json', 'scripts/build.js', 'scripts/start.js'];

function walk(dir, keep, out) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if (e.code === 'ENOENT') return;
    throw e;
  }
  for (const entry of entries) {
    if (entry.name === 'node_modules' || entry.name === 'dist') continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full, keep, out);
    else if (entry.isFile() && keep(entry.name)) out.push(full);
  }
}

/** The hash of every build input, in a fixed order. */
export function inputHash() {
  const files = [];
  for (const { dir, keep } of INPUT_TREES) walk(path.join(root, dir), keep, files);
  for (const file of INPUT_FILES) if (fs.existsSync(path.join(root, file))) files.push(path.join(root, file));
  files.sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(path.relative(root, file)).update('\0');
    hash.update(fs.readFileSync(file)).update('\0');
  }
  return hash.digest('hex');
}

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write(`build: ${[command, ...args].join(' ')} failed\n`);
    process.exit(result.status ?? 1);
  }
}

/** Compiles the TypeScript, then the console when it exists; writes the hash last. */
function build(hash) {
  fs.rmSync(dist, { recursive: true, force: true });
  run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
  const consoleBuild = path.join(root, 'console', 'build.mjs');
  if (fs.existsSync(consoleBuild)) run(process.execPath, [consoleBuild]);
  fs.writeFileSync(hashFile, `${hash}\n`);
}

/**
 * Builds when the inputs changed since the last build (or always, with `force`); returns
 * whether it built. Exits the process when a build step fails.
 */
export function ensureBuilt({ force = false } = {}) {
  const hash = inputHash();
  let built = null;
  try {
    built = fs.readFileSync(hashFile, 'utf8').trim();
  } catch {
    // no build yet
  }
  if (!force && built === hash) return false;
  // An installed package ships dist/ only: nothing to build from, and nothing needs building.
  if (!fs.existsSync(path.join(root, 'src'))) return false;
  process.stderr.write(force ? 'build: building\n' : built ? 'build: sources changed, rebuilding\n' : 'build: no build yet, building\n');
  build(hash);
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  ensureBuilt({ force: process.argv.includes('--force') });
}

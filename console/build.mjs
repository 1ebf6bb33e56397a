/**
 * Builds Ferry Console (console/src, TypeScript + Preact) into dist/console/: one minified
 * JavaScript bundle, one stylesheet and index.html, all served by Ferry at /console/
 * (src/http/console.ts). Prints the gzipped size of JS + CSS and fails above the 150 KB budget.
 * Type checking is `tsc -p console/tsconfig.json` (esbuild strips types without checking).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, '..', 'dist', 'console');
const BUDGET = 150 * 1024;

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });

await esbuild.build({
  entryPoints: { app: path.join(here, 'src', 'main.tsx') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2020'],
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outdir: out,
  legalComments: 'none',
  logLevel: 'warning',
});
fs.copyFileSync(path.join(here, 'src', 'styles.css'), path.join(out, 'app.css'));
fs.copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));

let total = 0;
for (const name of ['app.js', 'app.css']) {
  const size = zlib.gzipSync(fs.readFileSync(path.join(out, name)), { level: 9 }).length;
  total += size;
}
console.log(`console: dist/console/app.js + app.css = ${(total / 1024).toFixed(1)} KB gzipped (budget ${BUDGET / 1024} KB)`);
if (total > BUDGET) {
  console.error('console: over the size budget');
  process.exit(1);
}

#!/usr/bin/env node
// Ferry benchmarks: `npm run bench` runs all, `npm run bench -- accept` runs one.
// Each benchmark starts what it needs on loopback, runs a bounded load, stops by itself, and
// prints the figure, its same-run baseline and the ratio. Run `npm run build` first.
import { accept } from './accept.js';

const all = { accept };
const wanted = process.argv.slice(2);
const names = wanted.length ? wanted : Object.keys(all);
for (const name of names) {
  if (!all[name]) {
    console.error(`unknown benchmark ${name}; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  await all[name]();
}
process.exit(0);

// Prints the top self-time functions of a V8 .cpuprofile (from node --cpu-prof), with their
// source location, and the share of time per package/module (self time summed by file).
import fs from 'node:fs';

const file = process.argv[2];
const limit = Number(process.argv[3] ?? 30);
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map();
const dt = prof.timeDeltas;
let total = 0;
prof.samples.forEach((id, i) => {
  const d = dt[i] ?? 0;
  total += d;
  self.set(id, (self.get(id) ?? 0) + d);
});
const fn = new Map();
const files = new Map();
for (const [id, t] of self) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const where = cf.url ? cf.url.replace(/^file:\/\/\/work\/main\//, '').replace(/.*node_modules\//, 'nm/') : '(native)';
  const key = `${cf.functionName || '(anonymous)'}  ${where}:${cf.lineNumber + 1}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const mod = where.startsWith('nm/') ? where.split('/').slice(0, where.split('/')[1].startsWith('@') ? 3 : 2).join('/') : where;
  files.set(mod, (files.get(mod) ?? 0) + t);
}
const show = (m, k) =>
  [...m]
    .sort((a, b) => b[1] - a[1])
    .slice(0, k)
    .forEach(([name, t]) => console.log(`${((100 * t) / total).toFixed(1).padStart(5)} %  ${(t / 1000).toFixed(0).padStart(6)} ms  ${name}`));
console.log(`total ${(total / 1e6).toFixed(1)} s sampled\n-- self time by function --`);
show(fn, limit);
console.log('-- self time by file / package --');
show(files, 20);

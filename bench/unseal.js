// unseal: CPU per read of an instance's clear configuration — what every async accept pays to
// find its callback URL — decrypting each time (before issue 19) vs the cache in
// InstanceService.unseal (a hit compares the sealed object). A typical localfs instance: a
// callback URL and a signature key (sealed). Process CPU time (user + system) per call.
// Knob: BENCH_UNSEAL_CALLS (200000).
import { MasterKey, isSealed } from '../dist/src/identity/crypto.js';
import { InstanceService } from '../dist/src/instances/service.js';
import { fmt, table } from './lib.js';

const CALLS = Number(process.env.BENCH_UNSEAL_CALLS ?? 200_000);

export async function unseal() {
  const key = MasterKey.generate();
  const instance = {
    id: 1,
    configuration: { root: 'bench', 'event.notification.callback.url': 'http://127.0.0.1:9/hook', 'event.notification.signature.key': key.encrypt('k'.repeat(32)) },
  };
  const service = new InstanceService(null, key, null, null);
  const decryptEach = (i) => {
    const out = {};
    for (const [k, v] of Object.entries(i.configuration)) out[k] = isSealed(v) ? key.decrypt(v) : v;
    return out;
  };
  const measure = (f) => {
    for (let n = 0; n < 2000; n++) f(instance); // warm
    const before = process.cpuUsage();
    let sink = 0;
    for (let n = 0; n < CALLS; n++) sink += f(instance)['event.notification.callback.url'].length;
    const used = process.cpuUsage(before);
    if (sink === 0) throw new Error('unreachable');
    return ((used.user + used.system) * 1000) / CALLS; // ns per call
  };
  const rows = [];
  for (let round = 1; round <= 3; round++) {
    const before = measure(decryptEach);
    const after = measure((i) => service.unseal(i));
    rows.push([String(round), fmt(before), fmt(after), `${fmt(before / after, 0)}×`]);
  }
  console.log(`\n## unseal: CPU per read of an instance's clear configuration (${CALLS} calls per cell)\n`);
  table(['round', 'decrypt each time (ns)', 'cached (ns)', 'ratio'], rows);
}

if (import.meta.url === `file://${process.argv[1]}`) unseal();

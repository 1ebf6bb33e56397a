// Start time (issue 26): from the start command to the first HTTP answer, `npm start` against
// `node dist/src/cli.js serve` on the same current build, five rounds each, alternating, each
// on a fresh data directory. Target: npm start's median ≤ 1.3× the built server's.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { closedPort, fmt, mark, now, percentiles, sleep, table, USER, ORG } from './lib.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const ROUNDS = 5;

async function timeToFirstAnswer(command, args) {
  const port = await closedPort();
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-bench-start-'));
  const started = now();
  const child = spawn(command, args, {
    cwd: ROOT,
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, PORT: String(port), FERRY_DATA_DIR: dataDir, FERRY_USER_SECRET: USER, FERRY_ORG_SECRET: ORG, FERRY_LOG_LEVEL: 'silent' },
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (;;) {
      if (now() - started > 120_000) throw new Error(`${command} ${args.join(' ')} did not answer within 120 s`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/elements/api-v2/elements`);
        await res.arrayBuffer();
        return now() - started;
      } catch {
        await sleep(10);
      }
    }
  } finally {
    process.kill(-child.pid, 'SIGKILL');
    await exited;
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export async function start() {
  if (!fs.existsSync(path.join(ROOT, 'dist', '.build-hash'))) throw new Error('build first: npm run build');
  const npmStart = [];
  const built = [];
  for (let round = 0; round < ROUNDS; round++) {
    const pair = [
      ['npm start', () => timeToFirstAnswer('npm', ['start']), npmStart],
      ['node dist/src/cli.js serve', () => timeToFirstAnswer(process.execPath, ['dist/src/cli.js', 'serve']), built],
    ];
    if (round % 2) pair.reverse();
    for (const [, run, into] of pair) into.push(await run());
  }
  const a = percentiles(npmStart);
  const b = percentiles(built);
  const ratio = a.p50 / b.p50;
  console.log('\n## start — time from the command to the first answer (median of 5, alternating)\n');
  table(
    ['command', 'median ms', 'min ms', 'max ms'],
    [
      ['npm start', fmt(a.p50), fmt(Math.min(...npmStart)), fmt(Math.max(...npmStart))],
      ['node dist/src/cli.js serve', fmt(b.p50), fmt(Math.min(...built)), fmt(Math.max(...built))],
    ],
  );
  console.log(`\nnpm start / built server: ${ratio.toFixed(2)}× (target ≤ 1.3×: ${mark(ratio <= 1.3)})`);
}

/**
 * A real OpenSSH server for the SFTP element's tests: Debian's `/usr/sbin/sshd` run as a
 * non-daemon child on 127.0.0.1 with a throwaway configuration, host key and home folder under
 * os.tmpdir(). `.ci/install-sshd.sh` installs the binary on CI.
 *
 * Why things are the way they are:
 * - sshd must run as root to switch to the test user, so the harness needs root (tests and CI
 *   run as root); without root or without the binary it returns null and tests skip.
 * - One system user (`ferrysftp`, shell nologin) is shared by every harness. Its password is
 *   kept in a root-only file created atomically, so test files running in parallel set the
 *   same password instead of overwriting each other's.
 * - `UsePAM no`: password authentication then checks /etc/shadow directly (sshd is root),
 *   which is what `chpasswd` writes; no PAM stack to configure.
 * - `internal-sftp -d <home>` makes the login directory the fresh temp home, so the element's
 *   default `home_directory` (realpath('.')) is testable, and `ForceCommand internal-sftp`
 *   keeps the account to SFTP only.
 * - `restart()` kills the listener *and* its per-connection children: killing only the
 *   listener would leave established sessions alive, which is not what a server restart does.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import fs from 'node:fs/promises';

const run = promisify(execFile);

const SSHD = '/usr/sbin/sshd';
const USER = 'ferrysftp';
const PASSWORD_FILE = path.join(os.tmpdir(), 'ferry-sshd-test-user.secret');

/** A running test sshd. */
export interface TestSshd {
  host: string;
  port: number;
  username: string;
  password: string;
  /** An unencrypted ed25519 key in OpenSSH PEM format, authorized for the user. */
  privateKeyPem: string;
  /** An RSA key in classic PEM format encrypted with `privateKeyPassphrase`, also authorized. */
  encryptedPrivateKeyPem: string;
  privateKeyPassphrase: string;
  /** The login (and element home) folder, owned by the user. */
  home: string;
  /** The host key fingerprint as `ssh-keygen -lf` prints it: `SHA256:<base64>`. */
  fingerprint: string;
  /** A ready sftp element configuration (password authentication, fingerprint pinned). */
  config: Record<string, string>;
  /** Kills sshd and its sessions, then starts it again on the same port. */
  restart(): Promise<void>;
  /**
   * Restarts sshd with a NEW host key (what a reinstalled server, or an impostor, presents);
   * resolves to its fingerprint, which `fingerprint` and `config` then carry.
   */
  rotateHostKey(): Promise<string>;
  /**
   * Stops (SIGSTOP) every open session, leaving the listener serving new ones: the server
   * "hangs" for existing connections. Resolves to a function that resumes them.
   */
  freeze(): Promise<() => Promise<void>>;
  /** Kills sshd and its sessions and removes every temp file. */
  stop(): Promise<void>;
}

/** Starts a test sshd, or returns null (and logs one line why) when this machine cannot. */
export async function startSshd(): Promise<TestSshd | null> {
  const reason = await whySshdUnavailable();
  if (reason) {
    console.log(`# sshd tests skipped: ${reason}`);
    return null;
  }
  await fs.mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const password = await sharedPassword();
  await ensureUser(password);
  const { uid, gid } = await userIds();

  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-sshd-'));
  // sshd reads authorized_keys as the user, so the folder must be traversable by it.
  await fs.chmod(dir, 0o755);
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-sftp-home-'));
  await fs.chown(home, uid, gid);
  await fs.chmod(home, 0o755);

  const hostKey = path.join(dir, 'host_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-test-host', '-f', hostKey]);
  const fingerprintOf = async () => (await run('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${hostKey}.pub`])).stdout.split(' ')[1];
  let fingerprint = await fingerprintOf();

  const userKey = path.join(dir, 'user_ed25519');
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-test-user', '-f', userKey]);
  const privateKeyPassphrase = randomBytes(12).toString('hex');
  const rsaKey = path.join(dir, 'user_rsa');
  await run('ssh-keygen', ['-q', '-t', 'rsa', '-b', '2048', '-m', 'PEM', '-N', privateKeyPassphrase, '-C', 'ferry-test-rsa', '-f', rsaKey]);
  const authorizedKeys = path.join(dir, 'authorized_keys');
  const pubs = await Promise.all([fs.readFile(`${userKey}.pub`, 'utf8'), fs.readFile(`${rsaKey}.pub`, 'utf8')]);
  await fs.writeFile(authorizedKeys, pubs.join(''), { mode: 0o644 });

  let port = 0;
  let child: ChildProcess | null = null;
  const configFile = path.join(dir, 'sshd_config');
  const start = async (): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const candidate = port || (await freePort());
      await fs.writeFile(configFile, sshdConfig({ port: candidate, dir, hostKey, authorizedKeys, home }));
      try {
        child = await launch(configFile);
        port = candidate;
        return;
      } catch (e) {
        // Another process took the ephemeral port between probing and binding: pick another,
        // unless this is a restart, which must keep its port.
        if (port || attempt >= 4) throw e;
      }
    }
  };
  const kill = async (): Promise<void> => {
    if (child) await killTree(child);
    child = null;
  };
  await start();

  const privateKeyPem = await fs.readFile(userKey, 'utf8');
  const encryptedPrivateKeyPem = await fs.readFile(rsaKey, 'utf8');
  return {
    host: '127.0.0.1',
    get port() {
      return port;
    },
    username: USER,
    password,
    privateKeyPem,
    encryptedPrivateKeyPem,
    privateKeyPassphrase,
    home,
    get fingerprint() {
      return fingerprint;
    },
    get config() {
      return {
        hostname: '127.0.0.1',
        port: String(port),
        username: USER,
        password,
        home_directory: home,
        'sftp.host.fingerprint': fingerprint,
      };
    },
    async restart() {
      await kill();
      await start();
    },
    async rotateHostKey() {
      await kill();
      await fs.rm(hostKey, { force: true });
      await fs.rm(`${hostKey}.pub`, { force: true });
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ferry-test-host', '-f', hostKey]);
      fingerprint = await fingerprintOf();
      await start();
      return fingerprint;
    },
    async freeze() {
      const pids = child?.pid === undefined ? [] : await descendants(child.pid);
      signal(pids, 'SIGSTOP');
      return async () => signal(pids, 'SIGCONT');
    },
    async stop() {
      await kill();
      await fs.rm(dir, { recursive: true, force: true });
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}

/** Why this machine cannot run the test sshd, or null when it can. */
export async function whySshdUnavailable(): Promise<string | null> {
  if (process.platform !== 'linux') return 'needs Linux';
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'needs root to run sshd';
  try {
    await fs.access(SSHD, fs.constants.X_OK);
  } catch {
    return `${SSHD} is absent (run .ci/install-sshd.sh)`;
  }
  return null;
}

function sshdConfig(o: { port: number; dir: string; hostKey: string; authorizedKeys: string; home: string }): string {
  return [
    `Port ${o.port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${o.hostKey}`,
    `PidFile ${path.join(o.dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${o.authorizedKeys}`,
    'StrictModes no',
    'UsePAM no',
    'PasswordAuthentication yes',
    'PermitEmptyPasswords no',
    'KbdInteractiveAuthentication no',
    'PubkeyAuthentication yes',
    'PermitRootLogin no',
    `AllowUsers ${USER}`,
    'AllowTcpForwarding no',
    'X11Forwarding no',
    'MaxStartups 64:30:128',
    'MaxSessions 64',
    // INFO is the least that prints "Server listening on", which launch() waits for.
    'LogLevel INFO',
    `Subsystem sftp internal-sftp -d ${o.home}`,
    `ForceCommand internal-sftp -d ${o.home}`,
    '',
  ].join('\n');
}

/** Spawns sshd and resolves once it listens; rejects with its output when it exits first. */
function launch(configFile: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(SSHD, ['-D', '-e', '-f', configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let output = '';
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`sshd did not start listening in time: ${output}`)), 10_000);
    const fail = (e: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(e);
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      // Keep draining stderr after start so sshd never blocks on a full pipe, but keep none.
      if (settled) return;
      output += chunk;
      if (!settled && /Server listening on/.test(output)) {
        settled = true;
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`sshd exited with ${code}: ${output.trim()}`)));
  });
}

/** Kills sshd and every descendant (its per-connection session processes). */
async function killTree(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null) return;
  const pids = await descendants(child.pid);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signal([child.pid, ...pids], 'SIGKILL');
  await exited;
}

function signal(pids: number[], name: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, name);
    } catch {
      // already gone
    }
  }
}

async function descendants(root: number): Promise<number[]> {
  const parentOf = new Map<number, number>();
  for (const name of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await fs.readFile(`/proc/${name}/stat`, 'utf8');
      // The command may contain spaces and parentheses: fields start after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(Number(name), ppid);
    } catch {
      // exited while we looked
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) {
    const parent = queue.shift()!;
    for (const [pid, ppid] of parentOf) {
      if (ppid === parent) {
        found.push(pid);
        queue.push(pid);
      }
    }
  }
  return found;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The test user's password, the same for every harness on this machine. */
async function sharedPassword(): Promise<string> {
  try {
    return (await fs.readFile(PASSWORD_FILE, 'utf8')).trim();
  } catch {
    const candidate = path.join(os.tmpdir(), `ferry-sshd-secret-${process.pid}-${randomBytes(4).toString('hex')}`);
    await fs.writeFile(candidate, randomBytes(18).toString('base64url'), { mode: 0o600 });
    // link() fails when the file exists: whoever links first wins, everyone reads the winner.
    await fs.link(candidate, PASSWORD_FILE).catch(() => undefined);
    await fs.rm(candidate, { force: true });
    return (await fs.readFile(PASSWORD_FILE, 'utf8')).trim();
  }
}

async function ensureUser(password: string): Promise<void> {
  try {
    await run('id', ['-u', USER]);
  } catch {
    try {
      await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
    } catch (e) {
      // Exit status 9: created meanwhile by a parallel test file.
      if ((e as { code?: unknown }).code !== 9) throw e;
    }
  }
  await new Promise<void>((resolve, reject) => {
    const child = spawn('chpasswd', [], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`chpasswd failed: ${err.trim()}`))));
    child.stdin.end(`${USER}:${password}\n`);
  });
}

async function userIds(): Promise<{ uid: number; gid: number }> {
  const [uid, gid] = await Promise.all([run('id', ['-u', USER]), run('id', ['-g', USER])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

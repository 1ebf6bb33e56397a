#!/usr/bin/env node
/**
 * The `ferry` command: `serve` runs a node; `org create` and `user create` add tenants and
 * users (printing their secrets once); `listen` starts a local webhook receiver for people.
 */
import { Command, Option } from 'commander';
import { loadConfig, type Role } from './config.js';
import { startFerry } from './server.js';
import { openStore } from './store/index.js';
import { hashSecret, newSecret } from './identity/secrets.js';
import { listen } from './listen.js';
import { MasterKey } from './identity/crypto.js';
import { rotateMasterKey } from './identity/rotate.js';

const program = new Command();
program.name('ferry').description('Self-hosted connector gateway with asynchronous requests and signed webhooks');

program
  .command('serve')
  .description('Serve the API (and run jobs and deliveries, by role)')
  .addOption(new Option('--role <role>', 'what this node does').choices(['all', 'api', 'worker']))
  .action(async (opts: { role?: Role }) => {
    const config = loadConfig(process.env, opts.role ? { role: opts.role } : {});
    // The API answers before the node has finished starting (its runner and poller threads start
    // after the listener): the signal handlers are in place first, and a drain asked for while
    // the node still starts begins as soon as it has started.
    const started = startFerry(config);
    // Graceful drain on the first signal (lifecycle/drain.ts); a second one exits at once —
    // a crash, which loses nothing: unfinished leases expire and other nodes take them over.
    let stopping = false;
    const stop = async (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`ferry: ${signal} again: exiting at once\n`);
        process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
      }
      stopping = true;
      process.stderr.write(`ferry: ${signal}: draining (up to ${config.drainTimeoutMs / 1000} s; send it again to exit at once)\n`);
      try {
        const ferry = await started;
        const report = await ferry.drain();
        process.stderr.write(
          `ferry: drained: ${report.jobsReleased} job(s) and ${report.notificationsReleased} webhook(s) released for another node or the next start; requests in flight ${report.requestsFinished ? 'all answered' : 'cut at the deadline'}\n`,
        );
        // Closing cannot hang the exit: whatever still runs was released by the drain.
        await Promise.race([ferry.close(), new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
      } catch (e) {
        process.stderr.write(`ferry: stopping failed: ${(e as Error).message}\n`);
        process.exit(1);
      }
      process.exit(0);
    };
    process.on('SIGINT', (signal) => void stop(signal));
    process.on('SIGTERM', (signal) => void stop(signal));
    const ferry = await started;
    const where = ferry.url
      ? `on ${ferry.url}`
      : `(worker: no API; /healthz, /readyz and /metrics on ${ferry.operationsUrl ?? 'no port'})`;
    process.stdout.write(`Ferry ${config.role} node serving ${where}; data in ${config.dataDir}\n`);
    process.stdout.write(`Credentials of the first user: ${config.dataDir}/credentials.json\n`);
    if (ferry.url) process.stdout.write(`Console: ${ferry.url}/console/\n`);
  });

const org = program.command('org').description('Organizations');
org
  .command('create <name>')
  .description('Create an organization and print its secret (shown once)')
  .action(async (name: string) => {
    const store = await openStore(loadConfig());
    try {
      if (await store.getOrganizationByName(name)) throw new Error(`An organization named ${name} already exists`);
      const secret = newSecret();
      const created = await store.createOrganization({ name, secretHash: hashSecret(secret) });
      process.stdout.write(JSON.stringify({ id: created.id, name, organizationSecret: secret }, null, 2) + '\n');
    } finally {
      await store.close();
    }
  });

const user = program.command('user').description('Users');
user
  .command('create')
  .description('Create a user in an organization and print its secret (shown once)')
  .requiredOption('--org <name>', 'organization name')
  .requiredOption('--email <address>', 'email address')
  .option('--first-name <name>', 'first name', '')
  .option('--last-name <name>', 'last name', '')
  .action(async (opts: { org: string; email: string; firstName: string; lastName: string }) => {
    const store = await openStore(loadConfig());
    try {
      const organization = await store.getOrganizationByName(opts.org);
      if (!organization) throw new Error(`No organization named ${opts.org}`);
      const secret = newSecret();
      const created = await store.createUser({
        organizationId: organization.id,
        emailAddress: opts.email,
        firstName: opts.firstName,
        lastName: opts.lastName,
        secretHash: hashSecret(secret),
      });
      process.stdout.write(JSON.stringify({ id: created.id, emailAddress: opts.email, userSecret: secret }, null, 2) + '\n');
    } finally {
      await store.close();
    }
  });

program
  .command('rotate-master-key')
  .description('Re-encrypt every stored secret and re-seal every bulk result under a new master key (stop all nodes first)')
  .option('--new-key <base64>', 'the new key (base64 of 32 bytes); default: a random one')
  .action(async (opts: { newKey?: string }) => {
    const config = loadConfig();
    const store = await openStore(config);
    try {
      const current = MasterKey.load(config.masterKey, config.dataDir);
      const next = opts.newKey ? MasterKey.fromBase64(opts.newKey) : MasterKey.generate();
      const result = await rotateMasterKey(store, config.dataDir, current, next, {
        writeKeyFile: !config.masterKey,
        bulk: { dir: config.bulkDir, retentionMs: config.resultRetentionMs },
      });
      process.stdout.write(`Re-encrypted ${result.values} secret value(s) of ${result.instances} instance(s).\n`);
      process.stdout.write(`Re-sealed ${result.bulkFiles} bulk result file(s) in ${config.bulkDir}.\n`);
      if (config.masterKey) {
        process.stdout.write(`FERRY_MASTER_KEY is set in the environment: set it to the new key before starting Ferry:\n${result.newKey}\n`);
      } else {
        process.stdout.write(`The new key is in ${config.dataDir}/master.key.\n`);
      }
    } finally {
      await store.close();
    }
  });

program
  .command('listen')
  .description('Receive webhooks locally, print them and check their signatures')
  .option('--port <port>', 'port to listen on', '4000')
  .option('--host <host>', 'address to listen on', '127.0.0.1')
  .option(
    '--signature-key <key>',
    'the instance\'s event.notification.signature.key; repeat it to accept several keys while one rotates',
    (key: string, keys: string[]) => [...keys, key],
    [] as string[],
  )
  .action(async (opts: { port: string; host: string; signatureKey: string[] }) => {
    const receiver = await listen({ port: Number(opts.port), host: opts.host, signatureKey: opts.signatureKey });
    process.stdout.write(`Listening for webhooks on http://${opts.host}:${receiver.port}/\n`);
  });

program.parseAsync(process.argv).catch((e: Error) => {
  process.stderr.write(`ferry: ${e.message}\n`);
  process.exit(1);
});

#!/usr/bin/env bash
# The client package as a user installs it (issue 20): `npm pack` of packages/client gives a
# tarball that installs into an empty folder; a TypeScript program importing `@ferry/client` and
# `@ferry/client/verify` type-checks under `tsc --noEmit` (NodeNext, once with Node's types only
# and once with the DOM's, as a browser project would), and the ESM entry points import and run.
# Run from the repository root after a build (it uses the repository's TypeScript and @types/node).
set -euo pipefail
root="$(pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

test -f packages/client/dist/index.js || { echo "client pack check: packages/client/dist is missing; run npm run build first"; exit 1; }
tarball="$(cd packages/client && npm pack --silent --pack-destination "$work" | tail -n 1)"
mkdir "$work/app"
cd "$work/app"
npm init -y >/dev/null
npm pkg set type=module >/dev/null
npm install --no-audit --no-fund --offline "$work/$tarball" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; echo "client pack check: installing $tarball into an empty folder failed"; exit 1; }

cat > main.ts <<'TS'
import { FerryClient, FerryError, type DocumentObject, type FerryEvent } from '@ferry/client';
import { verifyWebhook, WebhookVerificationError, type FerryNotification } from '@ferry/client/verify';

const client = new FerryClient({ baseUrl: 'http://127.0.0.1:1', userSecret: 'u', organizationSecret: 'o' });
const hub = client.instance('token');
export async function typed(): Promise<[DocumentObject, FerryEvent, FerryNotification]> {
  const copied: DocumentObject = await hub.copyFile('/a', '/b');
  const { eventId } = await hub.async({ callbackUrl: 'https://example.com/hook' }).copyFolder('/a', '/b');
  const event: FerryEvent = await client.waitForEvent(eventId, { timeoutMs: 1000 });
  const n: FerryNotification = await verifyWebhook('{}', {}, 'key');
  const size: number = copied.size;
  const status: 'completed' | 'failed' = n.eventStatus;
  void size, status, FerryError, WebhookVerificationError;
  return [copied, event, n];
}
TS
for lib in '"ES2022"' '"ES2022", "DOM"'; do
  cat > tsconfig.json <<JSON
{ "compilerOptions": { "target": "ES2022", "module": "NodeNext", "moduleResolution": "NodeNext", "strict": true,
  "noEmit": true, "skipLibCheck": false, "lib": [$lib], "types": ["node"], "typeRoots": ["$root/node_modules/@types"] },
  "files": ["main.ts"] }
JSON
  node "$root/node_modules/typescript/bin/tsc" -p tsconfig.json \
    || { echo "client pack check: the package's types do not resolve under tsc --noEmit (lib $lib)"; exit 1; }
done

cat > run.mjs <<'JS'
import { FerryClient, FerryError, verifyWebhook } from '@ferry/client';
import { verifyWebhook as alone, WebhookVerificationError } from '@ferry/client/verify';
if (typeof FerryClient !== 'function' || typeof verifyWebhook !== 'function' || alone !== verifyWebhook) throw new Error('exports missing');
const client = new FerryClient({ baseUrl: 'http://127.0.0.1:1', userSecret: 'u', organizationSecret: 'o' });
await client.elements.list().then(() => { throw new Error('expected no answer'); }, (e) => { if (!(e instanceof FerryError) || e.status !== 0) throw e; });
await alone('{}', {}, 'key').then(() => { throw new Error('expected a refusal'); }, (e) => { if (!(e instanceof WebhookVerificationError) || e.reason !== 'missing_signature') throw e; });
JS
node run.mjs || { echo "client pack check: importing the installed package (ESM) failed"; exit 1; }
echo "client pack check: $tarball installs into an empty folder, imports as ESM, and its types resolve under tsc --noEmit"

/**
 * The egress policy (DESIGN §3.3): which URLs and addresses Ferry may call — callback URLs and
 * anything else it fetches on a caller's behalf. Without it, anyone who can register a callback
 * URL could make Ferry POST into its own network (databases, cloud metadata at 169.254.169.254).
 *
 * Two checks, because names are not addresses:
 * - `checkUrl` at accept time is syntactic: absolute http(s), no credentials, and — when the host
 *   is an IP literal in any spelling the WHATWG parser normalises (`2130706433`, `0x7f.1`,
 *   `[::ffff:127.0.0.1]`) — the address is checked right away so the caller gets a 400.
 * - `connect` checks at connect time, for every outbound client (webhooks through `dispatcher()`,
 *   S3 through `guardedAgents`, SFTP through ssh2's `sock`): IP literals before a socket exists,
 *   names through a lookup that refuses the name if ANY resolved address is refused, and the
 *   socket's remote address again when TCP connects, before a byte is written
 *   (egress-connect.ts). A name that resolved to a public address when accepted and to
 *   127.0.0.1 when sent (DNS rebinding) is therefore still refused, and so is a stored IP
 *   literal after the policy tightened.
 *
 * Refused by default: loopback, unspecified, private, CGNAT, link-local (incl. metadata),
 * multicast, broadcast/reserved, documentation and benchmarking ranges, every IPv6 range outside
 * global unicast 2000::/3, and IPv6 forms that embed a refused IPv4 (mapped, compatible,
 * translated, NAT64, 6to4). `FERRY_EGRESS_ALLOW` opens holes: a CIDR allows addresses inside it,
 * a host name (exact, case-insensitive) allows whatever that name resolves to.
 *
 * A refusal at accept time is `invalid` (→ 400); at connect time it is `forbidden`, which the
 * delivery attempt reports as a retryable failure and a hub request answers with 403 (both name
 * FERRY_EGRESS_ALLOW).
 */
import dns from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { Agent } from 'undici';
import { forbidden, invalid } from '../errors.js';
import { createGuardedConnect, guardedUndiciConnector, type GuardedConnect } from './egress-connect.js';

/** An IP address as a number: IPv4 in 32 bits, IPv6 in 128. */
interface Address {
  family: 4 | 6;
  value: bigint;
}

interface Cidr extends Address {
  prefix: number;
}

const BITS = { 4: 32, 6: 128 } as const;

function parseIPv4(text: string): bigint | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (!m) return null;
  let value = 0n;
  for (const part of m.slice(1)) {
    // Leading zeros are refused: some parsers read them as octal, so "010" is ambiguous.
    if ((part.length > 1 && part.startsWith('0')) || Number(part) > 255) return null;
    value = (value << 8n) | BigInt(part);
  }
  return value;
}

function parseIPv6(text: string): bigint | null {
  let s = text.toLowerCase();
  const zone = s.indexOf('%'); // fe80::1%eth0, as getaddrinfo may return it
  if (zone >= 0) s = s.slice(0, zone);
  if (s.includes('.')) {
    // A trailing dotted quad (::ffff:1.2.3.4) is two 16-bit groups written differently.
    const i = s.lastIndexOf(':');
    const v4 = parseIPv4(s.slice(i + 1));
    if (v4 === null) return null;
    s = `${s.slice(0, i + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string) => (h === '' ? [] : h.split(':'));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  const given = head.length + rest.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  let value = 0n;
  for (const g of [...head, ...Array<string>(8 - given).fill('0'), ...rest]) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return null;
    value = (value << 16n) | BigInt(parseInt(g, 16));
  }
  return value;
}

/** Parses an IPv4 or IPv6 address (IPv6 without brackets); null when it is not one. */
function parseAddress(text: string): Address | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, value: v4 };
  const v6 = text.includes(':') ? parseIPv6(text) : null;
  return v6 === null ? null : { family: 6, value: v6 };
}

function parseCidr(text: string): Cidr | null {
  const [ip, bits, extra] = text.split('/');
  if (extra !== undefined) return null;
  const addr = parseAddress(ip);
  if (!addr) return null;
  const max = BITS[addr.family];
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return null;
  return { ...addr, prefix };
}

function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad built-in CIDR ${text}`);
  return c;
}

function inCidr(addr: Address, range: Cidr): boolean {
  if (addr.family !== range.family) return false;
  const shift = BigInt(BITS[addr.family] - range.prefix);
  return addr.value >> shift === range.value >> shift;
}

// Special-purpose ranges (IANA registries) that a webhook has no business reaching.
const REFUSED_V4: Array<[Cidr, string]> = [
  ['0.0.0.0/8', 'unspecified'],
  ['10.0.0.0/8', 'private'],
  ['100.64.0.0/10', 'shared (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local (cloud metadata)'],
  ['172.16.0.0/12', 'private'],
  ['192.0.0.0/24', 'IETF protocol assignment'],
  ['192.0.2.0/24', 'documentation'],
  ['192.88.99.0/24', '6to4 relay'],
  ['192.168.0.0/16', 'private'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation'],
  ['203.0.113.0/24', 'documentation'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved or broadcast'],
].map(([c, why]) => [cidr(c), why]);

const REFUSED_V6: Array<[Cidr, string]> = [
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['64:ff9b:1::/48', 'local NAT64'],
  ['100::/64', 'discard-only'],
  ['2001::/23', 'IETF protocol assignment (Teredo, benchmarking)'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['fc00::/7', 'private (unique local)'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local'],
  ['ff00::/8', 'multicast'],
].map(([c, why]) => [cidr(c), why]);

const GLOBAL_UNICAST_V6 = cidr('2000::/3');

// IPv6 ranges whose low 32 bits are an IPv4 address the packet really goes to.
const EMBEDS_V4_LOW: Array<[Cidr, string]> = [
  ['::ffff:0:0/96', 'IPv4-mapped'],
  ['::ffff:0:0:0/96', 'IPv4-translated'],
  ['64:ff9b::/96', 'NAT64'],
  ['::/96', 'IPv4-compatible'],
].map(([c, why]) => [cidr(c), why]);

const SIX_TO_FOUR = cidr('2002::/16');
const MAPPED = cidr('::ffff:0:0/96');

function embeddedV4(addr: Address): { v4: Address; how: string } | null {
  if (addr.family !== 6) return null;
  for (const [range, how] of EMBEDS_V4_LOW) {
    if (inCidr(addr, range)) return { v4: { family: 4, value: addr.value & 0xffffffffn }, how };
  }
  if (inCidr(addr, SIX_TO_FOUR)) return { v4: { family: 4, value: (addr.value >> 80n) & 0xffffffffn }, how: '6to4' };
  return null;
}

/** Why an address is refused by default, or null when it is public. */
function refusalReason(addr: Address): string | null {
  if (addr.family === 4) return REFUSED_V4.find(([range]) => inCidr(addr, range))?.[1] ?? null;
  // :: and ::1 sit inside ::/96 (IPv4-compatible) — name them for what they are first.
  const own = REFUSED_V6.find(([range]) => inCidr(addr, range));
  if (own) return own[1];
  const embedded = embeddedV4(addr);
  if (embedded) {
    const why = refusalReason(embedded.v4);
    if (why) return `${why} (${embedded.how})`;
    if (embedded.how !== '6to4') return null; // the packet goes to a public IPv4 address
  }
  return inCidr(addr, GLOBAL_UNICAST_V6) ? null : 'reserved IPv6';
}

function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** "a loopback address", "an unspecified address" — for messages. */
function describeRefusal(why: string): string {
  if (why === 'not an IP address') return why;
  return `${/^[aeiou]/i.test(why) ? 'an' : 'a'} ${why} address`;
}

const ALLOW_HINT = 'allow it with FERRY_EGRESS_ALLOW (comma-separated CIDRs and host names, e.g. 127.0.0.1/32,localhost)';

/** Settings of the undici Agent that makes outbound calls. */
export interface EgressDispatcherOptions {
  /** Milliseconds for DNS resolution plus TCP (and TLS) connect; default 10 s. */
  connectTimeoutMs?: number;
  /** Most sockets kept to one origin; default unlimited (callers limit per-origin concurrency). */
  connectionsPerOrigin?: number;
  /** How long an idle keep-alive socket stays open; default 4 s. */
  keepAliveTimeoutMs?: number;
}

/** How the policy resolves names at connect time. */
export interface EgressPolicyOptions {
  /**
   * Resolves a name to all its addresses (`family` 0 = any); default `dns.promises.lookup` with
   * `all: true`. Replaceable so tests can play a rebinding resolver.
   */
  resolve?: (hostname: string, family: 0 | 4 | 6) => Promise<dns.LookupAddress[]>;
}

/** The policy built from `FERRY_EGRESS_ALLOW`. */
export interface EgressPolicy {
  /**
   * Accept-time check of a URL; returns it parsed. Throws `invalid` naming the problem. Host
   * names pass (they are checked when resolved at connect time); IP literals are checked now.
   */
  checkUrl(url: string): URL;
  /**
   * May Ferry connect to `ip`, reached through `hostname` (the name that resolved to it, or the
   * IP literal itself)? True when the name or the address is allowed, or the address is public.
   */
  checkAddress(ip: string, hostname: string): boolean;
  /** Why `checkAddress` refuses this address (a short phrase), or null when it allows it. */
  explain(ip: string, hostname: string): string | null;
  /**
   * An undici Agent (keep-alive pool per origin, no redirects) whose sockets all come from
   * `connect`. A refusal surfaces as a `forbidden` FerryError from the request.
   */
  dispatcher(options?: EgressDispatcherOptions): Agent;
  /**
   * Opens an outbound TCP/TLS connection, checked at connect time: the only way Ferry connects
   * out (egress-connect.ts). A refused address sees no connection at all.
   */
  connect: GuardedConnect;
}

/**
 * Builds the policy from allow-list entries: CIDRs (`10.0.0.0/8`, `::1/128`), single addresses
 * (`127.0.0.1`, taken as /32 or /128) and host names (`localhost`). Throws `invalid` on an entry
 * that looks like an address but does not parse, naming FERRY_EGRESS_ALLOW.
 */
export function createEgressPolicy(allow: string[], policyOptions: EgressPolicyOptions = {}): EgressPolicy {
  const allowedRanges: Cidr[] = [];
  const allowedNames = new Set<string>();
  for (const raw of allow) {
    const entry = raw.trim().replace(/^\[(.*)\]$/, '$1');
    if (entry === '') continue;
    const looksLikeAddress = entry.includes('/') || entry.includes(':') || /^[\d.]+$/.test(entry);
    if (looksLikeAddress) {
      const range = parseCidr(entry);
      if (!range) throw invalid(`FERRY_EGRESS_ALLOW entry "${raw}" is not a valid CIDR or IP address.`);
      allowedRanges.push(range);
    } else if (/^[a-z0-9._-]+$/i.test(entry)) {
      allowedNames.add(normaliseHost(entry));
    } else {
      throw invalid(`FERRY_EGRESS_ALLOW entry "${raw}" is neither a CIDR, an IP address nor a host name.`);
    }
  }

  function explain(ip: string, hostname: string): string | null {
    if (allowedNames.has(normaliseHost(hostname))) return null;
    const addr = parseAddress(ip);
    if (!addr) return 'not an IP address';
    // A mapped address is the same IPv4 host, so an IPv4 allowance covers it.
    const candidates = [addr];
    if (inCidr(addr, MAPPED)) candidates.push({ family: 4, value: addr.value & 0xffffffffn });
    if (candidates.some((c) => allowedRanges.some((range) => inCidr(c, range)))) return null;
    return refusalReason(addr);
  }

  function checkAddress(ip: string, hostname: string): boolean {
    return explain(ip, hostname) === null;
  }

  function checkUrl(text: string): URL {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalid('The URL is not a valid absolute URL (expected http://host/... or https://host/...).');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw invalid(`The URL scheme "${url.protocol.replace(/:$/, '')}" is not allowed; use http or https.`);
    }
    if (url.username !== '' || url.password !== '') {
      // Never echo the URL here: it carries the credentials.
      throw invalid('The URL must not contain credentials (user:password@); receivers can check the webhook signature instead.');
    }
    if (url.hostname === '') throw invalid('The URL has no host.');
    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    if (isIP(host)) {
      const why = explain(host, host);
      if (why) throw invalid(`The URL host ${url.hostname} is ${describeRefusal(why)}, which Ferry does not call; ${ALLOW_HINT}.`);
    }
    return url;
  }

  function refusal(hostname: string, ip: string, why: string) {
    const via = hostname === ip ? ip : `${hostname} (${ip})`;
    return forbidden(`Egress refused: ${via} is ${describeRefusal(why)}; ${ALLOW_HINT}.`);
  }

  const resolve = policyOptions.resolve ?? ((hostname, family) => dns.promises.lookup(hostname, { all: true, family }));

  // Resolves every address of a name and refuses the whole name when any one is refused, so a
  // resolver cannot slip a private address in among public ones. net.connect then connects only
  // to the addresses checked here.
  const guardedLookup: LookupFunction = (hostname, lookupOptions, callback) => {
    resolve(hostname, lookupOptions.family === 4 || lookupOptions.family === 6 ? lookupOptions.family : 0).then(
      (addresses) => {
        if (addresses.length === 0) {
          return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), []);
        }
        for (const a of addresses) {
          const why = explain(a.address, hostname);
          if (why) return callback(refusal(hostname, a.address, why), []);
        }
        if (lookupOptions.all) callback(null, addresses);
        else callback(null, addresses[0].address, addresses[0].family);
      },
      (err: NodeJS.ErrnoException) => callback(err, []),
    );
  };

  const connect = createGuardedConnect({ explain, refusal, lookup: guardedLookup });

  function dispatcher(options: EgressDispatcherOptions = {}): Agent {
    return new Agent({
      connect: guardedUndiciConnector(connect, { connectTimeoutMs: options.connectTimeoutMs ?? 10_000 }),
      connections: options.connectionsPerOrigin ?? null,
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 4_000,
    });
  }

  return { checkUrl, checkAddress, explain, dispatcher, connect };
}

// Values that are refused wherever they come from: checked once when a
// repository is validated (with file:line) and again by the driver that
// renders them (throwing), so a value that slipped past one layer never
// reaches a unit file or an nginx site.
import { BlockList, isIP } from 'node:net';

/** Leading characters systemd reads as Exec prefixes (`+` runs as root, `-` ignores failure, `!`, `!!`, `:`, `@`, `|`). */
export const SYSTEMD_EXEC_PREFIX = /^[-+!:@|]/;

/** Why `program` (argv[0]) cannot be rendered as an Exec command, or undefined when it can. */
export function programProblem(program: string | undefined): string | undefined {
  if (program === undefined || program === '') return 'the command is empty';
  if (SYSTEMD_EXEC_PREFIX.test(program))
    return `program ${JSON.stringify(program)} starts with ${JSON.stringify(program[0])}, which systemd reads as an Exec prefix (+ would run it as root)`;
  if (!/^(?:\/[A-Za-z0-9._@+/-]+|[A-Za-z0-9_][A-Za-z0-9._+-]*)$/.test(program))
    return `program ${JSON.stringify(program)} is not a plain absolute path or program name`;
  return undefined;
}

/**
 * What an IP address is, for deciding where a service may listen and where
 * nginx may proxy. `metadata` is a cloud instance-metadata endpoint (checked
 * before link-local, which holds the best known one).
 */
export type AddressClass = 'invalid' | 'loopback' | 'unspecified' | 'metadata' | 'link-local' | 'multicast' | 'reserved' | 'translated' | 'unicast';

const METADATA = ['169.254.169.254', '169.254.170.2', '169.254.170.23', '100.100.100.200', '192.0.0.192', 'fd00:ec2::254', 'fd00:ec2::23'];

function list(entries: readonly [string, number, 'ipv4' | 'ipv6'][]): BlockList {
  const b = new BlockList();
  for (const [address, prefix, family] of entries) b.addSubnet(address, prefix, family);
  return b;
}

// BlockList also matches IPv4-mapped IPv6 spellings (::ffff:169.254.169.254) against IPv4 rules.
const CLASSES: [AddressClass, BlockList][] = [
  ['metadata', list(METADATA.map((a) => [a, a.includes(':') ? 128 : 32, a.includes(':') ? 'ipv6' : 'ipv4']))],
  [
    'loopback',
    list([
      ['127.0.0.0', 8, 'ipv4'],
      ['::1', 128, 'ipv6'],
    ]),
  ],
  [
    'unspecified',
    list([
      ['0.0.0.0', 8, 'ipv4'],
      ['::', 128, 'ipv6'],
    ]),
  ],
  [
    'link-local',
    list([
      ['169.254.0.0', 16, 'ipv4'],
      ['fe80::', 10, 'ipv6'],
    ]),
  ],
  [
    'multicast',
    list([
      ['224.0.0.0', 4, 'ipv4'],
      ['ff00::', 8, 'ipv6'],
    ]),
  ],
  ['reserved', list([['240.0.0.0', 4, 'ipv4']])],
  // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) spellings reach an IPv4 address in disguise.
  [
    'translated',
    list([
      ['::', 96, 'ipv6'],
      ['64:ff9b::', 96, 'ipv6'],
      ['64:ff9b:1::', 48, 'ipv6'],
    ]),
  ],
];

export function addressClass(address: string): AddressClass {
  const family = isIP(address);
  if (family === 0 || address.includes('%')) return 'invalid';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, block] of CLASSES) if (block.check(address, type)) return cls;
  return 'unicast';
}

/** The same address in one spelling (lower-case, shortest IPv6 form), for comparing declared addresses. */
export function sameAddress(a: string, b: string): boolean {
  if (isIP(a) === 0 || isIP(b) === 0) return false;
  const one = new BlockList();
  one.addAddress(a, isIP(a) === 4 ? 'ipv4' : 'ipv6');
  return one.check(b, isIP(b) === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why a service may not listen on `bind`, or undefined when it may: loopback,
 * all addresses (0.0.0.0, ::; nginx then proxies to 127.0.0.1), or one of the
 * Host's declared `spec.addresses`.
 */
export function bindProblem(bind: string, declared: readonly string[]): string | undefined {
  const cls = addressClass(bind);
  if (cls === 'loopback' || cls === 'unspecified') return undefined;
  if (cls === 'unicast' && declared.some((d) => sameAddress(d, bind))) return undefined;
  if (cls === 'unicast')
    return declared.length === 0
      ? `${bind} is not a loopback address and the Host declares no spec.addresses`
      : `${bind} is not a loopback address nor one of the Host's spec.addresses (${declared.join(', ')})`;
  return `${bind} is a ${cls} address`;
}

/** Why nginx may not proxy to `host`, or undefined when it may: never all-addresses, link-local, metadata, multicast. */
export function upstreamProblem(host: string): string | undefined {
  const cls = addressClass(host);
  if (cls === 'loopback' || cls === 'unicast') return undefined;
  if (cls === 'invalid') return `upstream host ${JSON.stringify(host)} is not an IP address`;
  return `upstream host ${host} is a ${cls} address`;
}

// Response headers that change a browser's security decisions, sessions,
// navigation or the framing of the response: a site's responseHeaders may not
// set them. Exact names and name prefixes, compared case-insensitively.
export const DENIED_HEADERS: readonly string[] = [
  'set-cookie',
  'set-cookie2',
  'clear-site-data',
  'location',
  'content-location',
  'refresh',
  'link',
  'alt-svc',
  'strict-transport-security',
  'public-key-pins',
  'public-key-pins-report-only',
  'expect-ct',
  'x-frame-options',
  'x-content-type-options',
  'x-xss-protection',
  'referrer-policy',
  'permissions-policy',
  'feature-policy',
  'www-authenticate',
  'proxy-authenticate',
  'content-type',
  'content-encoding',
  'content-length',
  'content-disposition',
  'content-range',
  'transfer-encoding',
  'connection',
  'upgrade',
  'keep-alive',
  'trailer',
  'server',
  'date',
];
export const DENIED_HEADER_PREFIXES: readonly string[] = [
  'content-security-policy',
  'x-content-security-policy',
  'x-webkit-csp',
  'access-control-',
  'cross-origin-',
  'x-hostkit-',
  'x-accel-',
];

/** Why a site may not set response header `name`, or undefined when it may. */
export function headerNameProblem(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (DENIED_HEADERS.includes(lower)) return `response header ${name} changes security, sessions or routing; HostKit does not let a site set it`;
  const prefix = DENIED_HEADER_PREFIXES.find((p) => lower.startsWith(p));
  if (prefix) return `response header ${name} (${prefix}*) changes security, sessions or routing; HostKit does not let a site set it`;
  return undefined;
}

// systemd reads `%` as a specifier, a trailing `\` as a line continuation and
// a line break as the end of the setting: free text (a description) is made
// plain text on one line that systemd reads back as written (minus the
// trailing backslashes and control characters, which become nothing and spaces).
export function systemdText(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u001f\u007f]/g, ' ')
      .replace(/[\s\\]+$/, '')
      .replace(/%/g, '%%')
  );
}

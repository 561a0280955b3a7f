import { isIPv4, isIPv6 } from 'node:net';

/** An address or network in the one form HostKit renders and compares. */
export interface Network {
  family: 'ip' | 'ip6';
  /** "10.0.0.0/8", "2001:db8::/32"; a full-length prefix is written as the bare address ("192.0.2.7"). */
  text: string;
  /** The input had bits set below its prefix (10.0.0.1/8): they were cleared. */
  hostBits: boolean;
}

// One canonical spelling per network, whatever the input or nft's output looked
// like (upper-case hex, "::" placement, /32 spelled out, host bits set), so the
// desired and the observed table compare equal exactly when they match the same packets.
export function canonicalNetwork(cidr: string): Network | undefined {
  const [address, prefixText, extra] = cidr.split('/');
  if (extra !== undefined || address === undefined) return undefined;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  if (isIPv4(address)) {
    const bytes = address.split('.').map(Number);
    return finish('ip', bytes, prefixText === undefined ? 32 : Number(prefixText));
  }
  if (isIPv6(address) && !address.includes('%')) {
    const bytes = ipv6Bytes(address);
    return bytes ? finish('ip6', bytes, prefixText === undefined ? 128 : Number(prefixText)) : undefined;
  }
  return undefined;
}

function finish(family: 'ip' | 'ip6', bytes: number[], prefix: number): Network | undefined {
  const bits = bytes.length * 8;
  if (prefix > bits) return undefined;
  let hostBits = false;
  const masked = bytes.map((b, i) => {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((b & ~mask & 0xff) !== 0) hostBits = true;
    return b & mask;
  });
  const address = family === 'ip' ? masked.join('.') : formatIPv6(masked);
  return { family, text: prefix === bits ? address : `${address}/${prefix}`, hostBits };
}

function ipv6Bytes(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const tail: number[] = [];
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    if (!isIPv4(dotted[2]!)) return undefined;
    tail.push(...dotted[2]!.split('.').map(Number));
    text = dotted[1]!.endsWith('::') ? dotted[1]! : dotted[1]!.slice(0, -1);
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const want = 8 - tail.length / 2;
  const fill = halves.length === 2 ? want - head.length - rest.length : 0;
  if (fill < 0 || (halves.length === 1 && head.length !== want)) return undefined;
  const all = [...head, ...Array<string>(fill).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  bytes.push(...tail);
  return bytes.length === 16 ? bytes : undefined;
}

// RFC 5952, as glibc's inet_ntop (and so nft) prints it: lower case, the first
// longest run of two or more zero groups as "::", IPv4-mapped addresses dotted.
function formatIPv6(bytes: readonly number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${bytes.slice(12).join('.')}`;
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.length < 2) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

import { HostKitError } from '../../core/errors.js';
import type { FirewallSpec } from '../../core/specs.js';
import { canonicalNetwork } from '../shared/network.js';
import { ruleText, type Rule, type Statement, type Table } from './model.js';

// ICMP that must pass a drop policy: errors (path MTU discovery), ping, and for
// IPv6 the neighbour and router discovery without which IPv6 stops working.
// Sorted by name, as parse.ts sorts what nft prints (it lists them by type number).
export const ICMP_TYPES = ['destination-unreachable', 'echo-request', 'parameter-problem', 'time-exceeded'];
export const ICMPV6_TYPES = [
  'destination-unreachable',
  'echo-request',
  'nd-neighbor-advert',
  'nd-neighbor-solicit',
  'nd-router-advert',
  'packet-too-big',
  'parameter-problem',
  'time-exceeded',
];

export const SSH_COMMENT = 'ssh';

export interface DesiredTable {
  table: Table;
  /** Inputs that were accepted but changed, e.g. host bits cleared from a CIDR. */
  notes: string[];
}

const accept: Statement = { kind: 'verdict', verdict: 'accept' };

/**
 * The whole `inet hostkit` table for a FirewallSpec. Order is fixed and
 * deterministic: established/related, loopback and SSH first (ahead of the
 * drop policy), then ICMP, then the openings sorted by protocol, port, owner
 * and source, whatever order the manifests declared them in.
 */
export function desiredTable(spec: FirewallSpec): DesiredTable {
  const notes: string[] = [];
  const sources = (from: readonly string[], owner: string): Statement[][] => {
    if (from.length === 0) return [[]];
    return from.map((cidr) => {
      const network = canonicalNetwork(cidr);
      if (!network) {
        throw new HostKitError('FIREWALL_INVALID_INPUT', `${owner}: ${JSON.stringify(cidr)} is not an IPv4 or IPv6 address or network`, {
          data: { owner, cidr },
        });
      }
      if (network.hostBits) notes.push(`${owner}: ${cidr} has bits set below its prefix; opened for ${network.text}`);
      return [{ kind: 'saddr', family: network.family, network: network.text }];
    });
  };
  const port = (protocol: 'tcp' | 'udp', n: number, from: readonly string[], comment: string): Rule[] =>
    sources(from, comment).map((source) => ({ statements: [...source, { kind: 'dport', protocol, port: n }, accept], comment }));

  const rules: Rule[] = [
    { statements: [{ kind: 'ct-state', states: ['established', 'related'] }, accept] },
    { statements: [{ kind: 'iif', name: 'lo' }, accept] },
  ];
  if (spec.ssh !== false) rules.push(...port('tcp', spec.ssh.port, spec.ssh.from, SSH_COMMENT));
  rules.push({ statements: [{ kind: 'icmp-type', protocol: 'icmp', types: [...ICMP_TYPES] }, accept] });
  rules.push({ statements: [{ kind: 'icmp-type', protocol: 'icmpv6', types: [...ICMPV6_TYPES] }, accept] });

  const openings = spec.openings.flatMap((o) => port(o.protocol, o.port, o.from, o.for));
  const key = (r: Rule) => {
    const dport = r.statements.find((s) => s.kind === 'dport');
    return [dport?.protocol ?? '', String(dport?.port ?? 0).padStart(5, '0'), r.comment ?? '', ruleText(r)].join('\0');
  };
  const seen = new Set(rules.map(ruleText));
  for (const rule of openings.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))) {
    const text = ruleText(rule);
    if (seen.has(text)) continue; // the same opening declared twice by one owner
    seen.add(text);
    rules.push(rule);
  }
  return {
    table: { chains: [{ name: 'input', base: { type: 'filter', hook: 'input', priority: 0, policy: spec.input }, rules }], objects: [] },
    notes,
  };
}

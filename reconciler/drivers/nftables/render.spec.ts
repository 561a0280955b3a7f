import { describe, expect, it } from 'vitest';
import type { FirewallSpec } from '../../core/specs.js';
import { canonicalNetwork } from '../shared/network.js';
import { desiredTable } from './desired.js';
import type { Table } from './model.js';
import { renderTable, renderTransaction } from './render.js';

const ICMP = 'icmp type { destination-unreachable, echo-request, parameter-problem, time-exceeded } accept';
const ICMPV6 =
  'icmpv6 type { destination-unreachable, echo-request, nd-neighbor-advert, nd-neighbor-solicit, nd-router-advert, packet-too-big, parameter-problem, time-exceeded } accept';

// The rule lines of the rendered input chain (without the chain header).
function ruleLines(spec: FirewallSpec): string[] {
  const text = renderTable(desiredTable(spec).table);
  return text
    .split('\n')
    .filter((l) => l.startsWith('\t\t') && !l.includes('type filter hook'))
    .map((l) => l.trim());
}

describe('reconciler/drivers/nftables/address', () => {
  it.each([
    ['10.0.0.0/8', 'ip', '10.0.0.0/8', false],
    ['10.1.2.3/8', 'ip', '10.0.0.0/8', true],
    ['192.0.2.7', 'ip', '192.0.2.7', false],
    ['192.0.2.7/32', 'ip', '192.0.2.7', false],
    ['0.0.0.0/0', 'ip', '0.0.0.0/0', false],
    ['2001:DB8::/32', 'ip6', '2001:db8::/32', false],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', 'ip6', '2001:db8::1:0:0:1', false],
    ['2001:db8:0:0:1:0:0:0/80', 'ip6', '2001:db8:0:0:1::/80', false],
    ['2001:db8:1:2:3:4:5:6/64', 'ip6', '2001:db8:1:2::/64', true],
    ['2001:db8:0:1:1:1:1:1', 'ip6', '2001:db8:0:1:1:1:1:1', false],
    ['::1', 'ip6', '::1', false],
    ['::/0', 'ip6', '::/0', false],
    ['::ffff:1.2.3.4', 'ip6', '::ffff:1.2.3.4', false],
    ['::ffff:0102:0304', 'ip6', '::ffff:1.2.3.4', false],
  ])('%s -> %s %s', (input, family, text, hostBits) => {
    expect(canonicalNetwork(input)).toEqual({ family, text, hostBits });
  });

  it.each(['10.0.0.0/33', '2001:db8::/129', '10.0.0.0/8/8', '999.1.1.1', '::::', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', '10.0.0.0/-1', 'lo', ''])(
    'refuses %j',
    (input) => {
      expect(canonicalNetwork(input)).toBeUndefined();
    },
  );
});

describe('reconciler/drivers/nftables/render', () => {
  const base: FirewallSpec = { input: 'drop', ssh: { port: 22, from: [] }, openings: [] };

  it.each<[string, FirewallSpec, string[]]>([
    [
      'drop policy, SSH from anywhere, no openings',
      base,
      ['ct state established,related accept', 'iif "lo" accept', 'tcp dport 22 accept comment "ssh"', ICMP, ICMPV6],
    ],
    ['ssh: false leaves SSH closed', { ...base, ssh: false }, ['ct state established,related accept', 'iif "lo" accept', ICMP, ICMPV6]],
    [
      'SSH on another port from two networks, IPv4 and IPv6',
      { ...base, ssh: { port: 2222, from: ['192.0.2.0/24', '2001:DB8::/32'] } },
      [
        'ct state established,related accept',
        'iif "lo" accept',
        'ip saddr 192.0.2.0/24 tcp dport 2222 accept comment "ssh"',
        'ip6 saddr 2001:db8::/32 tcp dport 2222 accept comment "ssh"',
        ICMP,
        ICMPV6,
      ],
    ],
    [
      'openings sorted by protocol and port whatever their declared order, one rule per source',
      {
        ...base,
        openings: [
          { port: 53, protocol: 'udp', from: [], for: 'FirewallRules/dns' },
          { port: 8080, protocol: 'tcp', from: ['10.0.0.0/8', '2001:db8::1'], for: 'Project/api' },
          { port: 443, protocol: 'tcp', from: [], for: 'Project/web' },
        ],
      },
      [
        'ct state established,related accept',
        'iif "lo" accept',
        'tcp dport 22 accept comment "ssh"',
        ICMP,
        ICMPV6,
        'tcp dport 443 accept comment "Project/web"',
        'ip saddr 10.0.0.0/8 tcp dport 8080 accept comment "Project/api"',
        'ip6 saddr 2001:db8::1 tcp dport 8080 accept comment "Project/api"',
        'udp dport 53 accept comment "FirewallRules/dns"',
      ],
    ],
    [
      'two owners of one port keep one rule each; one owner declaring it twice gets one',
      {
        ...base,
        ssh: false,
        openings: [
          { port: 80, protocol: 'tcp', from: [], for: 'Project/web' },
          { port: 80, protocol: 'tcp', from: [], for: 'Project/blog' },
          { port: 80, protocol: 'tcp', from: [], for: 'Project/web' },
        ],
      },
      [
        'ct state established,related accept',
        'iif "lo" accept',
        ICMP,
        ICMPV6,
        'tcp dport 80 accept comment "Project/blog"',
        'tcp dport 80 accept comment "Project/web"',
      ],
    ],
  ])('%s', (_title, spec, expected) => {
    expect(ruleLines(spec)).toEqual(expected);
  });

  it('renders one transaction that declares, deletes and redefines only inet hostkit, with the policy on the input hook', () => {
    const text = renderTransaction(desiredTable({ ...base, input: 'accept', ssh: false }).table);
    expect(text).toBe(
      [
        '# HostKit: the whole table is replaced on every change; edits by hand are drift.',
        'table inet hostkit {}',
        'delete table inet hostkit',
        'table inet hostkit {',
        '\tchain input {',
        '\t\ttype filter hook input priority 0; policy accept;',
        '\t\tct state established,related accept',
        '\t\tiif "lo" accept',
        `\t\t${ICMP}`,
        `\t\t${ICMPV6}`,
        '\t}',
        '}',
        '',
      ].join('\n'),
    );
    expect(text).not.toMatch(/flush/);
  });

  it('is deterministic: the same spec renders the same bytes', () => {
    const spec: FirewallSpec = {
      ...base,
      openings: [
        { port: 9000, protocol: 'udp', from: ['198.51.100.0/24'], for: 'Project/b' },
        { port: 9000, protocol: 'tcp', from: [], for: 'Project/a' },
      ],
    };
    const reversed = { ...spec, openings: [...spec.openings].reverse() };
    expect(renderTransaction(desiredTable(spec).table)).toBe(renderTransaction(desiredTable(reversed).table));
  });

  it('reports host bits it cleared', () => {
    const { notes } = desiredTable({ ...base, openings: [{ port: 80, protocol: 'tcp', from: ['10.1.2.3/8'], for: 'Project/web' }] });
    expect(notes).toEqual(['Project/web: 10.1.2.3/8 has bits set below its prefix; opened for 10.0.0.0/8']);
  });

  it.each<[string, FirewallSpec]>([
    ['a CIDR that is not one', { ...base, openings: [{ port: 80, protocol: 'tcp', from: ['10.0.0.0/8; flush ruleset'], for: 'Project/x' }] }],
    ['port 0', { ...base, openings: [{ port: 0, protocol: 'tcp', from: [], for: 'Project/x' }] }],
    ['a port above 65535', { ...base, openings: [{ port: 70000, protocol: 'tcp', from: [], for: 'Project/x' }] }],
    ['a fractional port', { ...base, openings: [{ port: 80.5, protocol: 'tcp', from: [], for: 'Project/x' }] }],
    ['an unknown protocol', { ...base, openings: [{ port: 80, protocol: 'sctp' as 'tcp', from: [], for: 'Project/x' }] }],
    ['a comment with a quote', { ...base, openings: [{ port: 80, protocol: 'tcp', from: [], for: 'Project/x" drop #' }] }],
    ['a policy that is neither', { ...base, input: 'reject' as 'drop' }],
  ])('refuses %s', (_title, spec) => {
    expect(() => renderTransaction(desiredTable(spec).table)).toThrow(/Refusing to render|is not an IPv4 or IPv6/);
  });

  it('refuses statements it did not build (a parsed "other" rule) and table objects', () => {
    const other: Table = {
      chains: [
        {
          name: 'input',
          rules: [
            {
              statements: [
                { kind: 'other', json: '{"jump":{}}' },
                { kind: 'verdict', verdict: 'accept' },
              ],
            },
          ],
        },
      ],
      objects: [],
    };
    expect(() => renderTable(other)).toThrow(/Refusing to render statement/);
    expect(() => renderTable({ chains: [], objects: ['set {"name":"x"}'] })).toThrow(/Refusing to render table objects/);
    const network: Table = {
      chains: [
        {
          name: 'input',
          rules: [
            {
              statements: [
                { kind: 'saddr', family: 'ip', network: '10.0.0.1/8' },
                { kind: 'verdict', verdict: 'accept' },
              ],
            },
          ],
        },
      ],
      objects: [],
    };
    expect(() => renderTable(network)).toThrow(/Refusing to render ip network "10.0.0.1\/8"/);
  });
});

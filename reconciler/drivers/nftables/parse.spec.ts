import { describe, expect, it } from 'vitest';
import { desiredTable } from './desired.js';
import { tableLines } from './model.js';
import { parseStatement, parseTable } from './parse.js';

// Captured from `nft -j list table inet hostkit` (nftables 1.0.6, Debian bookworm)
// after loading the rendered table for the spec below.
const LIVE = `{"nftables":[
  {"metainfo":{"version":"1.0.6","release_name":"Lester Gooch #5","json_schema_version":1}},
  {"table":{"family":"inet","name":"hostkit","handle":29}},
  {"chain":{"family":"inet","table":"hostkit","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"drop"}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":2,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":3,"expr":[{"match":{"op":"==","left":{"meta":{"key":"iif"}},"right":"lo"}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":4,"comment":"ssh","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"192.0.2.0","len":24}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":2222}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":5,"comment":"ssh","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":{"prefix":{"addr":"2001:db8::","len":32}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":2222}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":7,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"icmp","field":"type"}},"right":{"set":["destination-unreachable","echo-request","time-exceeded","parameter-problem"]}}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":9,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"icmpv6","field":"type"}},"right":{"set":["destination-unreachable","packet-too-big","time-exceeded","parameter-problem","echo-request","nd-router-advert","nd-neighbor-solicit","nd-neighbor-advert"]}}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":10,"comment":"Project/web","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"0.0.0.0","len":0}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":443}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":11,"comment":"Project/api","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.0.0.0","len":8}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":12,"comment":"Project/api","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"2001:db8::1:0:0:1"}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":13,"comment":"Project/api","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip6","field":"saddr"}},"right":"::ffff:1.2.3.4"}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080}},{"accept":null}]}},
  {"rule":{"family":"inet","table":"hostkit","chain":"input","handle":14,"comment":"FirewallRules/dns","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"udp","field":"dport"}},"right":53}},{"accept":null}]}}
]}`;

const LIVE_SPEC = {
  input: 'drop' as const,
  ssh: { port: 2222, from: ['192.0.2.0/24', '2001:DB8::/32'] },
  openings: [
    { port: 8080, protocol: 'tcp' as const, from: ['10.0.0.1/8', '::ffff:1.2.3.4', '2001:db8:0:0:1:0:0:1'], for: 'Project/api' },
    { port: 53, protocol: 'udp' as const, from: [], for: 'FirewallRules/dns' },
    { port: 443, protocol: 'tcp' as const, from: ['0.0.0.0/0'], for: 'Project/web' },
  ],
};

// Also captured: what hand edits look like (a set, an inserted negated match, a counter, reject, iifname).
const HAND_EDITS = [
  '{"set":{"family":"inet","name":"blocked","table":"hostkit","type":"ipv4_addr","handle":17}}',
  '{"rule":{"family":"inet","table":"hostkit","chain":"input","handle":18,"expr":[{"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.0.0.0","len":8}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":25}},{"drop":null}]}}',
  '{"rule":{"family":"inet","table":"hostkit","chain":"input","handle":16,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[80,443]}}},{"counter":{"packets":12,"bytes":720}},{"accept":null}]}}',
  '{"rule":{"family":"inet","table":"hostkit","chain":"input","handle":19,"expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":"new"}},{"match":{"op":"==","left":{"meta":{"key":"iifname"}},"right":"eth0"}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":7}},{"reject":{"type":"icmpx","expr":"port-unreachable"}}]}}',
];

describe('reconciler/drivers/nftables/parse', () => {
  it('parses a live table into the same lines as the desired table it was loaded from', () => {
    expect(tableLines(parseTable(JSON.parse(LIVE)))).toEqual(tableLines(desiredTable(LIVE_SPEC).table));
  });

  it('parses the live table into normalized lines (handles dropped, sets sorted, prefixes canonical)', () => {
    expect(tableLines(parseTable(JSON.parse(LIVE)))).toEqual([
      'chain input { type filter hook input priority 0; policy drop; }',
      '  ct state established,related accept',
      '  iif "lo" accept',
      '  ip saddr 192.0.2.0/24 tcp dport 2222 accept comment "ssh"',
      '  ip6 saddr 2001:db8::/32 tcp dport 2222 accept comment "ssh"',
      '  icmp type { destination-unreachable, echo-request, parameter-problem, time-exceeded } accept',
      '  icmpv6 type { destination-unreachable, echo-request, nd-neighbor-advert, nd-neighbor-solicit, nd-router-advert, packet-too-big, parameter-problem, time-exceeded } accept',
      '  ip saddr 0.0.0.0/0 tcp dport 443 accept comment "Project/web"',
      '  ip saddr 10.0.0.0/8 tcp dport 8080 accept comment "Project/api"',
      '  ip6 saddr 2001:db8::1:0:0:1 tcp dport 8080 accept comment "Project/api"',
      '  ip6 saddr ::ffff:1.2.3.4 tcp dport 8080 accept comment "Project/api"',
      '  udp dport 53 accept comment "FirewallRules/dns"',
    ]);
  });

  it('keeps what HostKit does not write as canonical JSON, so hand edits are drift', () => {
    const live = JSON.parse(LIVE) as { nftables: unknown[] };
    live.nftables.push(...HAND_EDITS.map((e) => JSON.parse(e) as unknown));
    const lines = tableLines(parseTable(live));
    expect(lines.slice(12)).toEqual([
      '  {"match":{"left":{"payload":{"field":"saddr","protocol":"ip"}},"op":"!=","right":{"prefix":{"addr":"10.0.0.0","len":8}}}} tcp dport 25 drop',
      '  {"match":{"left":{"payload":{"field":"dport","protocol":"tcp"}},"op":"==","right":{"set":[80,443]}}} {"counter":{}} accept',
      '  ct state new {"match":{"left":{"meta":{"key":"iifname"}},"op":"==","right":"eth0"}} tcp dport 7 {"reject":{"expr":"port-unreachable","type":"icmpx"}}',
      'set {"name":"blocked","type":"ipv4_addr"}',
    ]);
  });

  it('ignores objects of other tables and the metainfo', () => {
    const mixed = {
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'ip', name: 'nat', handle: 27 } },
        { chain: { family: 'ip', table: 'nat', name: 'postrouting', handle: 1, type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
        { table: { family: 'inet', name: 'hostkit', handle: 4 } },
      ],
    };
    expect(parseTable(mixed)).toEqual({ chains: [], objects: [] });
  });

  it.each([
    ['ct state, one value', { match: { op: 'in', left: { ct: { key: 'state' } }, right: 'established' } }, 'ct state established'],
    ['ct state, list in any order', { match: { op: 'in', left: { ct: { key: 'state' } }, right: ['related', 'established'] } }, 'ct state established,related'],
    ['iif', { match: { op: '==', left: { meta: { key: 'iif' } }, right: 'lo' } }, 'iif "lo"'],
    ['bare IPv4', { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '192.0.2.7' } }, 'ip saddr 192.0.2.7'],
    [
      'IPv6 prefix, nft spelling',
      { match: { op: '==', left: { payload: { protocol: 'ip6', field: 'saddr' } }, right: { prefix: { addr: '2001:db8:0:0:1::', len: 80 } } } },
      'ip6 saddr 2001:db8:0:0:1::/80',
    ],
    [
      'IPv4 address under ip6 is not ours',
      { match: { op: '==', left: { payload: { protocol: 'ip6', field: 'saddr' } }, right: '10.0.0.1' } },
      '{"match":{"left":{"payload":{"field":"saddr","protocol":"ip6"}},"op":"==","right":"10.0.0.1"}}',
    ],
    ['udp port', { match: { op: '==', left: { payload: { protocol: 'udp', field: 'dport' } }, right: 53 } }, 'udp dport 53'],
    [
      'tcp sport is not ours',
      { match: { op: '==', left: { payload: { protocol: 'tcp', field: 'sport' } }, right: 53 } },
      '{"match":{"left":{"payload":{"field":"sport","protocol":"tcp"}},"op":"==","right":53}}',
    ],
    ['icmp single type', { match: { op: '==', left: { payload: { protocol: 'icmp', field: 'type' } }, right: 'echo-request' } }, 'icmp type echo-request'],
    ['accept', { accept: null }, 'accept'],
    ['drop', { drop: null }, 'drop'],
    ['jump', { jump: { target: 'other' } }, '{"jump":{"target":"other"}}'],
  ])('%s', (_title, expr, text) => {
    const s = parseStatement(expr);
    expect(s.kind === 'other' ? s.json : tableLines({ chains: [{ name: 'c', rules: [{ statements: [s] }] }], objects: [] })[1]!.trim()).toBe(text);
  });

  it.each([
    ['not an object', '[]'],
    ['no nftables array', '{"nft": []}'],
    ['a rule without expr', '{"nftables":[{"rule":{"family":"inet","table":"hostkit","chain":"input","handle":2}}]}'],
  ])('throws on unexpected output: %s', (_title, json) => {
    expect(() => parseTable(JSON.parse(json))).toThrow(/Unexpected output from nft -j list table inet hostkit/);
  });
});

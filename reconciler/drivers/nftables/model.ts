// The table HostKit owns, as data: what desire builds from the FirewallSpec,
// what parse builds from `nft -j list table`, and what plan compares. Rendering
// to nft syntax (render.ts) and to plan lines (here) both start from this.

export const FAMILY = 'inet';
export const TABLE = 'hostkit';
export const TABLE_REF = `${FAMILY} ${TABLE}`;

/** One statement of a rule. `other` holds anything HostKit does not write itself (a rule added by hand). */
export type Statement =
  | { kind: 'ct-state'; states: string[] }
  | { kind: 'iif'; name: string }
  | { kind: 'saddr'; family: 'ip' | 'ip6'; network: string }
  | { kind: 'dport'; protocol: 'tcp' | 'udp'; port: number }
  | { kind: 'icmp-type'; protocol: 'icmp' | 'icmpv6'; types: string[] }
  | { kind: 'verdict'; verdict: 'accept' | 'drop' }
  | { kind: 'other'; json: string };

export interface Rule {
  statements: Statement[];
  comment?: string;
}

export interface BaseChain {
  type: string;
  hook: string;
  priority: number;
  policy: string;
}

export interface Chain {
  name: string;
  /** Set for a chain attached to a hook. */
  base?: BaseChain;
  rules: Rule[];
}

export interface Table {
  chains: Chain[];
  /** Sets, maps, counters and other objects of the table, one canonical line each (HostKit writes none). */
  objects: string[];
}

/** A statement as nft writes it; `other` as its canonical JSON. */
export function statementText(s: Statement): string {
  switch (s.kind) {
    case 'ct-state':
      return `ct state ${s.states.join(',')}`;
    case 'iif':
      return `iif "${s.name}"`;
    case 'saddr':
      return `${s.family} saddr ${s.network}`;
    case 'dport':
      return `${s.protocol} dport ${s.port}`;
    case 'icmp-type':
      return `${s.protocol} type ${s.types.length === 1 ? s.types[0]! : `{ ${s.types.join(', ')} }`}`;
    case 'verdict':
      return s.verdict;
    case 'other':
      return s.json;
  }
}

export function ruleText(rule: Rule): string {
  const body = rule.statements.map(statementText).join(' ');
  return rule.comment === undefined ? body : `${body} comment "${rule.comment}"`;
}

export function baseChainText(base: BaseChain): string {
  return `type ${base.type} hook ${base.hook} priority ${base.priority}; policy ${base.policy};`;
}

/**
 * The table as normalized lines: one per chain header, rule (in order) and
 * object. Two tables are the same exactly when their lines are; plans diff them.
 */
export function tableLines(table: Table): string[] {
  const lines: string[] = [];
  for (const chain of table.chains) {
    lines.push(`chain ${chain.name}${chain.base ? ` { ${baseChainText(chain.base)} }` : ''}`);
    for (const rule of chain.rules) lines.push(`  ${ruleText(rule)}`);
  }
  lines.push(...table.objects);
  return lines;
}

// JSON with keys sorted at every level, so equal values print equally.
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, sortKeys(v)]),
  );
}

import { HostKitError } from '../../core/errors.js';
import { canonicalNetwork } from '../shared/network.js';
import { canonicalJson, FAMILY, TABLE, type Chain, type Rule, type Statement, type Table } from './model.js';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * `nft -j list table inet hostkit` output -> the table as data. Statements
 * HostKit writes are recognized structurally (a prefix and a bare address, sets
 * in any order, all compare as the same thing); anything else, e.g. a rule
 * added by hand, is kept as canonical JSON so it shows up as drift.
 */
export function parseTable(output: unknown): Table {
  const items = isObject(output) ? output.nftables : undefined;
  if (!Array.isArray(items)) unexpected('no "nftables" array', output);
  const chains = new Map<string, Chain>();
  const objects: string[] = [];
  const chainOf = (name: string) => {
    let chain = chains.get(name);
    if (!chain) {
      chain = { name, rules: [] };
      chains.set(name, chain);
    }
    return chain;
  };
  for (const item of items) {
    if (!isObject(item)) unexpected('an item that is not an object', item);
    const [type, value] = Object.entries(item)[0] ?? [];
    if (type === undefined || !isObject(value)) unexpected('an empty item', item);
    if (type === 'metainfo') continue;
    if (value.family !== FAMILY || (type === 'table' ? value.name : value.table) !== TABLE) continue; // another table's object
    if (type === 'table') continue;
    if (type === 'chain') {
      const chain = chainOf(String(value.name));
      if (typeof value.hook === 'string') {
        chain.base = { type: String(value.type), hook: value.hook, priority: Number(value.prio), policy: String(value.policy ?? 'accept') };
      }
    } else if (type === 'rule') {
      if (!Array.isArray(value.expr)) unexpected('a rule without "expr"', value);
      const rule: Rule = { statements: value.expr.map(parseStatement) };
      if (typeof value.comment === 'string') rule.comment = value.comment;
      chainOf(String(value.chain)).rules.push(rule);
    } else {
      const { handle: _handle, family: _family, table: _table, ...rest } = value;
      objects.push(`${type} ${canonicalJson(rest)}`);
    }
  }
  return { chains: [...chains.values()], objects: objects.sort() };
}

/** One expression of a rule's "expr" array. */
export function parseStatement(expr: unknown): Statement {
  const other: Statement = { kind: 'other', json: canonicalJson(expr) };
  if (!isObject(expr)) return other;
  if ('accept' in expr) return { kind: 'verdict', verdict: 'accept' };
  if ('drop' in expr) return { kind: 'verdict', verdict: 'drop' };
  if ('counter' in expr) return { kind: 'other', json: '{"counter":{}}' }; // its packet counts change; the counter is what matters
  const match = expr.match;
  if (!isObject(match)) return other;
  const { op, left, right } = match;
  if (!isObject(left)) return other;
  const strings = (v: unknown): string[] | undefined => {
    const list = typeof v === 'string' ? [v] : Array.isArray(v) ? v : isObject(v) && Array.isArray(v.set) ? v.set : undefined;
    return list?.every((x): x is string => typeof x === 'string') ? [...list].sort() : undefined;
  };

  if (isObject(left.ct) && left.ct.key === 'state' && (op === 'in' || op === '==')) {
    const states = strings(right);
    return states ? { kind: 'ct-state', states } : other;
  }
  if (op !== '==') return other;
  if (isObject(left.meta) && left.meta.key === 'iif' && typeof right === 'string') return { kind: 'iif', name: right };
  const payload = isObject(left.payload) ? left.payload : undefined;
  if (!payload) return other;
  const { protocol, field } = payload;
  if ((protocol === 'ip' || protocol === 'ip6') && field === 'saddr') {
    const prefix = isObject(right) && isObject(right.prefix) ? right.prefix : undefined;
    const text = typeof right === 'string' ? right : prefix ? `${String(prefix.addr)}/${String(prefix.len)}` : undefined;
    const network = text === undefined ? undefined : canonicalNetwork(text);
    return network?.family === protocol ? { kind: 'saddr', family: protocol, network: network.text } : other;
  }
  if ((protocol === 'tcp' || protocol === 'udp') && field === 'dport' && typeof right === 'number') return { kind: 'dport', protocol, port: right };
  if ((protocol === 'icmp' || protocol === 'icmpv6') && field === 'type') {
    const types = strings(right);
    return types ? { kind: 'icmp-type', protocol, types } : other;
  }
  return other;
}

function unexpected(what: string, value: unknown): never {
  throw new HostKitError(
    'NFT_OUTPUT_UNEXPECTED',
    `Unexpected output from nft -j list table ${FAMILY} ${TABLE}: ${what}: ${JSON.stringify(value)?.slice(0, 300)}`,
    {
      data: { what },
    },
  );
}

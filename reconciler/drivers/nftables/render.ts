import { HostKitError } from '../../core/errors.js';
import { canonicalNetwork } from '../shared/network.js';
import { ICMP_TYPES, ICMPV6_TYPES } from './desired.js';
import { baseChainText, ruleText, TABLE_REF, type BaseChain, type Rule, type Statement, type Table } from './model.js';

// Declaring the table first makes the delete that follows succeed whether or not
// it exists; what comes after defines it again. nft runs the whole file as one
// transaction, so the host never sees a half-written table, and no other table is touched.
export const REPLACE_HEADER = `table ${TABLE_REF} {}\ndelete table ${TABLE_REF}\n`;

/** A transaction that removes the table (and succeeds when it is already gone). */
export const DELETE_TRANSACTION = REPLACE_HEADER;

const CT_STATES = new Set(['established', 'related', 'new', 'invalid', 'untracked']);
const ICMP = { icmp: new Set(ICMP_TYPES), icmpv6: new Set(ICMPV6_TYPES) };
const IPV4_NETWORK = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\/(?:3[0-2]|[12]?\d))?$/;
const IPV6_NETWORK = /^[0-9a-f:.]{2,45}(?:\/(?:12[0-8]|1[01]\d|[1-9]?\d))?$/;
const COMMENT = /^[A-Za-z0-9][A-Za-z0-9/._-]{0,127}$/;
const CHAIN_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const INTERFACE = /^[a-z0-9]{1,15}$/;

/** The nft file that replaces HostKit's table with `table` in one transaction. */
export function renderTransaction(table: Table): string {
  return `# HostKit: the whole table is replaced on every change; edits by hand are drift.\n${REPLACE_HEADER}${renderTable(table)}`;
}

/** `table inet hostkit { ... }` in nft syntax, every value checked against a strict pattern first. */
export function renderTable(table: Table): string {
  if (table.objects.length > 0) refuse('table objects', table.objects.join(', '));
  const chains = table.chains.map((chain) => {
    if (!CHAIN_NAME.test(chain.name)) refuse('chain name', chain.name);
    const lines = [...(chain.base ? [checkedBase(chain.base)] : []), ...chain.rules.map(checkedRule)];
    return `\tchain ${chain.name} {\n${lines.map((l) => `\t\t${l}\n`).join('')}\t}\n`;
  });
  return `table ${TABLE_REF} {\n${chains.join('')}}\n`;
}

function checkedBase(base: BaseChain): string {
  if (base.type !== 'filter' || base.hook !== 'input') refuse('base chain', `${base.type} hook ${base.hook}`);
  if (!Number.isInteger(base.priority) || Math.abs(base.priority) > 1000) refuse('chain priority', base.priority);
  if (base.policy !== 'drop' && base.policy !== 'accept') refuse('chain policy', base.policy);
  return baseChainText(base);
}

function checkedRule(rule: Rule): string {
  if (rule.comment !== undefined && !COMMENT.test(rule.comment)) refuse('rule comment', rule.comment);
  const last = rule.statements[rule.statements.length - 1];
  if (last?.kind !== 'verdict') refuse('rule', 'a rule that does not end in a verdict');
  rule.statements.forEach(checkStatement);
  return ruleText(rule);
}

function checkStatement(s: Statement): void {
  switch (s.kind) {
    case 'ct-state':
      if (s.states.length === 0 || !s.states.every((st) => CT_STATES.has(st))) refuse('ct state', s.states.join(','));
      return;
    case 'iif':
      if (!INTERFACE.test(s.name)) refuse('interface', s.name);
      return;
    case 'saddr': {
      const pattern = s.family === 'ip' ? IPV4_NETWORK : IPV6_NETWORK;
      const canonical = canonicalNetwork(s.network);
      if (!pattern.test(s.network) || canonical?.family !== s.family || canonical.text !== s.network) refuse(`${s.family} network`, s.network);
      return;
    }
    case 'dport':
      if ((s.protocol !== 'tcp' && s.protocol !== 'udp') || !Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
        refuse('port', `${String(s.protocol)} ${s.port}`);
      }
      return;
    case 'icmp-type':
      if (s.types.length === 0 || !s.types.every((t) => ICMP[s.protocol].has(t))) refuse(`${s.protocol} type`, s.types.join(','));
      return;
    case 'verdict':
      if (s.verdict !== 'accept' && s.verdict !== 'drop') refuse('verdict', s.verdict);
      return;
    case 'other':
      refuse('statement', s.json);
  }
}

// Reaching this is a bug upstream (validation let something through): nothing is rendered.
function refuse(what: string, value: unknown): never {
  throw new HostKitError('FIREWALL_UNSAFE_VALUE', `Refusing to render ${what} ${JSON.stringify(value)}: it does not match the expected pattern`, {
    data: { what, value },
  });
}

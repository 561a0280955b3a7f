import { isAlias, isMap, isScalar, isSeq, visit, type Alias, type Document, type LineCounter, type Node } from 'yaml';
import type { LocationIndex } from './source-map.js';

export type Composed =
  | { ok: true; value: unknown; locations: LocationIndex; aliases: number; numbers?: NumberSources }
  | {
      ok: false;
      problem: 'unresolved alias' | 'too many aliases' | 'nesting too deep' | 'complex key' | 'too many items';
      detail: string;
      offset: number;
      pointer: string;
    };

export interface ComposeLimits {
  depth: number;
  /** Alias expansions per file: this document's count starts at `aliasesBefore`, what the file's earlier documents made. */
  aliases: number;
  /** Entries of any one sequence or mapping. */
  items: number;
}

class Stop extends Error {
  readonly result: Extract<Composed, { ok: false }>;
  constructor(result: Extract<Composed, { ok: false }>) {
    super(result.detail);
    this.result = result;
  }
}

/** Numbers not written in plain decimal (0x16, 026, 22.0), by JSON pointer: their source text. */
export type NumberSources = Record<string, string>;

const escape = (key: string) => (key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key);

// Every alias's anchor, found in one walk of the document. yaml's Alias.resolve
// walks the whole document on each call, which made many aliases quadratic.
// Same rule as yaml: the last node with that anchor before the alias.
function anchorTargets(doc: Document): Map<Alias, Node> {
  const anchors = new Map<string, Node>();
  const targets = new Map<Alias, Node>();
  visit(doc, {
    Node: (_key, node) => {
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target) targets.set(node, target);
      } else if (node.anchor) anchors.set(node.anchor, node);
    },
  });
  return targets;
}

/**
 * One walk over a parsed document that builds its plain value and the line
 * and column of every value (by JSON pointer), and refuses what a manifest
 * must not contain: nesting deeper than `depth`, more than `aliases` alias
 * expansions in the file (alias bombs; `aliases` in the result is the file's
 * count so far), aliases without an anchor, non-scalar keys,
 * sequences or mappings of more than `items` entries (refused before their
 * entries are walked). Numbers not written in plain decimal are noted
 * (validate.ts refuses them). It replaces Document.toJS plus separate walks
 * for locations and limits.
 */
export function compose(doc: Document, lineCounter: LineCounter, limits: ComposeLimits, aliasesBefore = 0): Composed {
  const locations: LocationIndex = {};
  let aliases = aliasesBefore;
  let targets: Map<Alias, Node> | undefined;
  let numbers: NumberSources | undefined;
  const pos = (node: Node | null | undefined): [number, number] | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const p = lineCounter.linePos(offset);
    return [p.line, p.col];
  };
  const walk = (node: unknown, pointer: string, depth: number, key?: Node): unknown => {
    const at = pos(node as Node) ?? pos(key);
    if (at) {
      const keyAt = key ? pos(key) : undefined;
      locations[pointer] = keyAt ? [...at, ...keyAt] : at;
    }
    if (isAlias(node)) {
      targets ??= anchorTargets(doc);
      const target = targets.get(node);
      if (!target)
        throw new Stop({
          ok: false,
          problem: 'unresolved alias',
          detail: `alias *${node.source} refers to no anchor (&${node.source}) before it`,
          offset: node.range?.[0] ?? 0,
          pointer,
        });
      if (++aliases > limits.aliases) {
        throw new Stop({
          ok: false,
          problem: 'too many aliases',
          detail: `more than ${limits.aliases} aliases expanded in this file; this looks like an alias bomb`,
          offset: doc.range?.[0] ?? 0,
          pointer,
        });
      }
      const own = locations[pointer];
      const value = walk(target, pointer, depth);
      if (own) locations[pointer] = own; // the alias is where the value was written
      return value;
    }
    if (isScalar(node)) {
      if (typeof node.value === 'number' && !plainNumber(node.value, node.source)) (numbers ??= {})[pointer] = String(node.source);
      return node.value;
    }
    if (isMap(node) || isSeq(node)) {
      if (depth >= limits.depth) {
        throw new Stop({
          ok: false,
          problem: 'nesting too deep',
          detail: `values may nest at most ${limits.depth} levels`,
          offset: node.range?.[0] ?? 0,
          pointer,
        });
      }
      if (node.items.length > limits.items) {
        throw new Stop({
          ok: false,
          problem: 'too many items',
          detail: `${node.items.length} ${isSeq(node) ? 'items in a list' : 'keys in a mapping'}; a manifest allows at most ${limits.items} in any one`,
          offset: node.range?.[0] ?? 0,
          pointer,
        });
      }
      if (isSeq(node)) return node.items.map((item, i) => walk(item, `${pointer}/${i}`, depth + 1));
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = pair.key;
        if (k !== null && !isScalar(k)) {
          throw new Stop({ ok: false, problem: 'complex key', detail: 'mapping keys must be plain scalars', offset: (k as Node).range?.[0] ?? 0, pointer });
        }
        const name = String(k === null ? '' : k.value);
        const value = walk(pair.value, `${pointer}/${escape(name)}`, depth + 1, (k ?? undefined) as Node | undefined);
        // Never let a "__proto__" key reach an object's prototype: it becomes an own property.
        if (name === '__proto__') Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
        else out[name] = value;
      }
      return out;
    }
    return null; // an empty node (e.g. "key:" with no value)
  };
  try {
    const value = walk(doc.contents, '', 0);
    return { ok: true, value, locations, aliases, ...(numbers ? { numbers } : {}) };
  } catch (error) {
    if (error instanceof Stop) return error.result;
    throw error;
  }
}

// A number counts only in the form it reads back as: 0x16, 0o26, 026, 22.0,
// 1e3, +22 and .inf mean something other than what a reader (or YAML 1.1, or
// an env file) takes them for; a port must be the decimal digits it is.
function plainNumber(value: number, source: unknown): boolean {
  return typeof source === 'string' && source === String(value);
}

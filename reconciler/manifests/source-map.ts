import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { Location } from '../core/diagnostics.js';

export function pointerSegments(pointer: string): string[] {
  if (pointer === '' || pointer === '/') return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

export function toPointer(segments: readonly (string | number)[]): string {
  return segments.map((s) => '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/**
 * Line and column of every value in a document, by JSON pointer:
 * [valueLine, valueColumn, keyLine, keyColumn] (key position only for map entries).
 * Plain data, so it can cross a worker boundary and the YAML Document can be dropped.
 */
export type LocationIndex = Record<string, number[]>;

export function indexLocations(doc: Document, lineCounter: LineCounter): LocationIndex {
  const index: LocationIndex = {};
  const pos = (node: Node | null | undefined): [number, number] | undefined => {
    const offset = node?.range?.[0];
    if (offset === undefined) return undefined;
    const p = lineCounter.linePos(offset);
    return [p.line, p.col];
  };
  const walk = (node: unknown, pointer: string, key?: Node) => {
    const at = pos(node as Node) ?? pos(key);
    if (at) index[pointer] = key && pos(key) ? [...at, ...pos(key)!] : at;
    if (isMap(node)) {
      for (const pair of node.items) {
        if (isPair(pair) && isScalar(pair.key)) walk(pair.value, `${pointer}/${String(pair.key.value).replace(/~/g, '~0').replace(/\//g, '~1')}`, pair.key);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, `${pointer}/${i}`));
    }
  };
  walk(doc.contents, '');
  return index;
}

// The nearest located ancestor of a pointer: a missing field is reported at its parent.
export function locateIn(index: LocationIndex, file: string, pointer: string, preferKey = false): Location {
  let p = pointer === '/' ? '' : pointer;
  for (;;) {
    const entry = index[p];
    if (entry) {
      const keyWanted = preferKey && p === pointer && entry.length === 4;
      return { file, line: keyWanted ? entry[2]! : entry[0]!, column: keyWanted ? entry[3]! : entry[1]!, pointer: pointer || '/' };
    }
    if (p === '') return { file, line: 1, column: 1, pointer: pointer || '/' };
    p = p.slice(0, p.lastIndexOf('/'));
  }
}

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

// Finds the YAML node a JSON pointer names, so every diagnostic can carry the
// line and column of the offending value. When the pointer names something
// absent (a missing field), the nearest existing ancestor is used. When
// `preferKey` is set and the last segment is a map key, the key's position is
// returned (useful for "unknown field").
export function locate(
  doc: Document,
  lineCounter: LineCounter,
  file: string,
  pointer: string,
  preferKey = false,
): Location {
  let node: unknown = doc.contents;
  let found: Node | null = (doc.contents as Node | null) ?? null;
  const segments = pointerSegments(pointer);
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const last = i === segments.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment);
      if (!pair) break;
      if (last && preferKey && isScalar(pair.key)) {
        found = pair.key;
        break;
      }
      node = pair.value;
      if (node && typeof node === 'object' && 'range' in node) found = node as Node;
      else if (isScalar(pair.key)) found = pair.key;
      else break;
    } else if (isSeq(node)) {
      const item = node.items[Number(segment)];
      if (!item) break;
      node = item;
      if (typeof item === 'object' && item !== null && 'range' in item) found = item as Node;
    } else {
      break;
    }
  }
  const offset = found?.range?.[0] ?? 0;
  const pos = lineCounter.linePos(offset);
  return { file, line: pos.line, column: pos.col, pointer: pointer || '/' };
}

import { structuredPatch } from 'diff';
import { describe, expect, it } from 'vitest';
import { unifiedDiff } from './text-diff.js';

// What the diff library itself gives, for comparison with the shortcut for whole texts.
function viaLibrary(before: string, after: string): string {
  return structuredPatch('before', 'after', before, after, '', '', { context: 3 })
    .hunks.flatMap((h) => [`@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@`, ...h.lines])
    .join('\n');
}

describe('unifiedDiff', () => {
  it.each([
    ['a\nb\n', 'a\nc\n'],
    ['one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\n', 'one\ntwo\nthree\nFOUR\nfive\nsix\nseven\neight\n'],
    ['x', 'y'],
  ])('shows changed lines with context: %j -> %j', (before, after) => {
    expect(unifiedDiff(before, after)).toBe(viaLibrary(before, after));
    expect(unifiedDiff(before, after)).toMatch(/^@@ /);
  });

  it.each([
    ['', 'a\nb\n'],
    ['', 'a\nb'],
    ['a\nb\n', ''],
    ['a', ''],
    ['', '\n'],
    ['', 'x\n\n'],
    ['', ''],
  ])('a text created or deleted whole gives the same hunk as the diff algorithm: %j -> %j', (before, after) => {
    expect(unifiedDiff(before, after)).toBe(viaLibrary(before, after));
  });

  it('marks a missing final newline', () => {
    expect(unifiedDiff('', 'a\nb')).toBe('@@ -1,0 +1,2 @@\n+a\n+b\n\\ No newline at end of file');
  });
});

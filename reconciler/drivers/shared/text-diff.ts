// The one module that makes patches, not the package index (19 modules at start-up).
import { structuredPatch } from 'diff/lib/patch/create.js';

// A unified diff of two texts (hunks only, no file headers), for plan output.
export function unifiedDiff(before: string, after: string, context = 3): string {
  if (before === '' || after === '') return wholeText(before || after, before === '' ? '+' : '-');
  const patch = structuredPatch('before', 'after', before, after, '', '', { context });
  const lines: string[] = [];
  for (const hunk of patch.hunks) {
    lines.push(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`);
    lines.push(...hunk.lines);
  }
  return lines.join('\n');
}

// A text created or deleted whole, without running the diff algorithm (a first
// plan creates every file); the same hunk structuredPatch gives.
function wholeText(text: string, sign: '+' | '-'): string {
  if (text === '') return '';
  const lines = text.split('\n');
  const newlineAtEnd = lines.at(-1) === '';
  if (newlineAtEnd) lines.pop();
  const range = `1,${lines.length}`;
  const header = sign === '+' ? `@@ -1,0 +${range} @@` : `@@ -${range} +1,0 @@`;
  return [header, ...lines.map((line) => sign + line), ...(newlineAtEnd ? [] : ['\\ No newline at end of file'])].join('\n');
}

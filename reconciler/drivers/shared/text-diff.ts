// The one module that makes patches, not the package index (19 modules at start-up).
import { structuredPatch } from 'diff/lib/patch/create.js';

// A unified diff of two texts (hunks only, no file headers), for plan output.
export function unifiedDiff(before: string, after: string, context = 3): string {
  const patch = structuredPatch('before', 'after', before, after, '', '', { context });
  const lines: string[] = [];
  for (const hunk of patch.hunks) {
    lines.push(`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`);
    lines.push(...hunk.lines);
  }
  return lines.join('\n');
}

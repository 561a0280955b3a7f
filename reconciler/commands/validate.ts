import path from 'node:path';
import { stringify } from 'yaml';
import { HostKitError } from '../core/errors.js';
import { validateRepository } from '../manifests/index.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { stat } from 'node:fs/promises';
import { defaultCacheDir } from '../manifests/parse-cache.js';
import { diagnosticItem } from '../diff/render/markdown.js';
import { isQuiet } from './quiet.js';

export async function assertRepository(repo: string): Promise<string> {
  const dir = path.resolve(repo);
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory()) {
    throw new HostKitError('REPO_NOT_FOUND', `The config repository ${repo} does not exist or is not a directory; pass --repo DIR`);
  }
  return dir;
}

export async function validate(opts: { repo: string; output: string; cache?: boolean }): Promise<number> {
  const dir = await assertRepository(opts.repo);
  const result = await validateRepository(dir, opts.cache !== false ? { cacheDir: defaultCacheDir() } : {});
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  const counts = `${plural(errors, 'error')}${warnings ? `, ${plural(warnings, 'warning')}` : ''}`;
  if (opts.output === 'json' || opts.output === 'yaml') {
    const data = { valid: result.valid, manifests: result.manifests.length, errors, warnings, diagnostics: result.diagnostics };
    process.stdout.write(opts.output === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data));
  } else if (opts.output === 'markdown') {
    const out = [`### HostKit validation of \`${opts.repo}\``, ''];
    out.push(
      result.valid
        ? `✅ ${plural(result.manifests.length, 'manifest')} valid${warnings ? `, ${plural(warnings, 'warning')}` : ''}.`
        : `❌ **${counts}**. Nothing was applied.`,
      '',
    );
    for (const d of result.diagnostics) out.push(diagnosticItem(d));
    process.stdout.write(out.join('\n') + '\n');
  } else {
    // -q: errors only, and nothing when all is well (as eslint --quiet).
    const style = useColor(process.stdout) ? COLOR : PLAIN;
    for (const d of result.diagnostics) if (!isQuiet() || d.severity === 'error') process.stdout.write(renderDiagnostic(d, style) + '\n');
    if (!result.valid) process.stdout.write(`${counts} in ${opts.repo}. Nothing was applied.\n`);
    else if (!isQuiet()) process.stdout.write(`${plural(result.manifests.length, 'manifest')} valid${warnings ? `, ${plural(warnings, 'warning')}` : ''}.\n`);
  }
  return result.valid ? 0 : 1;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

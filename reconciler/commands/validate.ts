import path from 'node:path';
import { stringify } from 'yaml';
import { HostKitError } from '../core/errors.js';
import { validateRepository } from '../manifests/index.js';
import { renderDiagnostic } from '../diff/render/text.js';
import { COLOR, PLAIN, useColor } from '../diff/render/style.js';
import { stat } from 'node:fs/promises';
import { defaultCacheDir } from '../manifests/parse-cache.js';

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
  if (opts.output === 'json' || opts.output === 'yaml') {
    const data = { valid: result.valid, manifests: result.manifests.length, errors, warnings, diagnostics: result.diagnostics };
    process.stdout.write(opts.output === 'json' ? JSON.stringify(data, null, 2) + '\n' : stringify(data));
  } else {
    const style = useColor(process.stdout) ? COLOR : PLAIN;
    for (const d of result.diagnostics) process.stdout.write(renderDiagnostic(d, style) + '\n');
    process.stdout.write(
      result.valid
        ? `${result.manifests.length} manifests valid${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''}.\n`
        : `${errors} error${errors === 1 ? '' : 's'}${warnings ? `, ${warnings} warning${warnings === 1 ? '' : 's'}` : ''} in ${opts.repo}. Nothing was applied.\n`,
    );
  }
  return result.valid ? 0 : 1;
}

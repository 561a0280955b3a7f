import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, retryableCode } from './error-codes.js';
import { HostKitError } from './errors.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [path.join(dir, e.name)] : [],
  );
}

describe('reconciler/core/error-codes', () => {
  it('lists every code the source throws, and nothing it does not', () => {
    const used = new Set<string>();
    for (const file of [...sources(path.join(REPO, 'reconciler')), ...sources(path.join(REPO, 'test'))]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/HostKitError\(\s*'([A-Z][A-Z0-9_]*)'/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(40);
    expect([...used].filter((c) => !(c in ERROR_CODES)).sort()).toEqual([]);
    expect(
      Object.keys(ERROR_CODES)
        .filter((c) => !used.has(c))
        .sort(),
    ).toEqual([]);
  });

  it('the README has a row for each code saying whether a retry helps', () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      expect(readme, code).toMatch(new RegExp(`^\\| \`${code}\` \\| ${info.retryable ? 'yes' : 'no'} \\| `, 'm'));
    }
  });

  it('an error takes its retryability from the catalog unless it says otherwise', () => {
    expect(new HostKitError('GIT_FETCH_FAILED', 'x').retryable).toBe(true);
    expect(new HostKitError('UNIT_INVALID', 'x').retryable).toBe(false);
    expect(new HostKitError('EXEC_FAILED', 'x', { retryable: true }).retryable).toBe(true);
    expect(retryableCode('NO_SUCH_CODE')).toBe(false);
  });
});

import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// One driver, one folder: a driver reaches another only through the run's
// services (run.ts) or drivers/shared, never by importing its internals. The
// one thing a folder may name of another is its spec type (NAME/spec.ts), with
// `import type`: a Site expands into a certificate and must say what one is.
const DRIVERS = path.dirname(new URL(import.meta.url).pathname);
const FOLDERS = readdirSync(DRIVERS).filter((name) => name !== 'shared' && statSync(path.join(DRIVERS, name)).isDirectory());

function sources(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

function crossImports(folder: string): string[] {
  const found: string[] = [];
  for (const file of sources(path.join(DRIVERS, folder))) {
    const text = readFileSync(file, 'utf8');
    for (const match of text.matchAll(/^(import|export)(\s+type)?[^;]*?from\s+'([^']+)'/gms)) {
      const target = path.resolve(path.dirname(file), match[3]!);
      const relative = path.relative(DRIVERS, target).split(path.sep);
      const other = relative[0];
      if (relative.length < 2 || other === folder || !FOLDERS.includes(other!)) continue;
      const typeOnlySpec = match[2] !== undefined && relative.length === 2 && relative[1] === 'spec.js';
      if (!typeOnlySpec) found.push(`${path.relative(DRIVERS, file)} imports ${relative.join('/')}`);
    }
  }
  return found;
}

describe('driver folders', () => {
  it('finds the driver folders', () => {
    expect(FOLDERS).toEqual(expect.arrayContaining(['nginx', 'certificate', 'systemd', 'nftables', 'sysctl']));
  });

  it.each(FOLDERS)('%s imports no other driver folder except a spec type', (folder) => {
    expect(crossImports(folder)).toEqual([]);
  });

  it('the check sees a cross-driver import', () => {
    // The rule holds only if the matcher would catch a violation: run it on a line that is one.
    const line = "import { nginxActive } from '../nginx/nginx.js';";
    const match = /^(import|export)(\s+type)?[^;]*?from\s+'([^']+)'/ms.exec(line);
    expect(match?.[3]).toBe('../nginx/nginx.js');
    expect(match?.[2]).toBeUndefined();
  });
});

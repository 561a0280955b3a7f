import { describe, expect, it } from 'vitest';
import { LIMITS, parseFiles, parseManifestFile } from './load.js';
import { validateFiles } from './index.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('reconciler/manifests/load', () => {
  it('locates values in a multi-document file by JSON pointer, with 1-based lines and columns', () => {
    const text = '# comment\napiVersion: v1\nkind: A\n---\nkind: B\nspec:\n  ports:\n    - 80\n    - name: x\n      port: 443\n';
    const { documents, diagnostics } = parseManifestFile({ file: 'm.yaml', bytes: enc(text) });
    expect(diagnostics).toEqual([]);
    expect(documents).toHaveLength(2);
    expect(documents[0]!.locate('/kind')).toMatchObject({ file: 'm.yaml', line: 3, column: 7 });
    expect(documents[1]!.locate('/spec/ports/1/port')).toMatchObject({ line: 10, column: 13 });
    expect(documents[1]!.locate('/spec/ports/1/port', true)).toMatchObject({ line: 10, column: 7 });
    // A missing field is reported at its nearest existing parent.
    expect(documents[1]!.locate('/spec/ports/1/missing')).toMatchObject({ line: 9, column: 7 });
  });

  it('ignores an empty trailing document', () => {
    const { documents } = parseManifestFile({ file: 'm.yaml', bytes: enc('kind: A\n---\n') });
    expect(documents).toHaveLength(1);
  });

  it('keeps YAML 1.2 core types: "no" and "on" stay strings, 0750 stays an integer', () => {
    const { documents } = parseManifestFile({ file: 'm.yaml', bytes: enc('a: no\nb: on\nc: 0750\n') });
    expect(documents[0]!.value).toEqual({ a: 'no', b: 'on', c: 750 });
  });

  it('validates a valid minimal repository with no diagnostics', async () => {
    const repo = await validateFiles([
      { file: 'hosts/h.yaml', bytes: enc('apiVersion: hostkit.dev/v1\nkind: Host\nmetadata: { name: h }\n') },
      {
        file: 'projects/p.yaml',
        bytes: enc(
          'apiVersion: hostkit.dev/v1\nkind: Project\nmetadata: { name: p }\nspec:\n  placement: { hosts: [h] }\n  runtime: binary\n  service:\n    command: [/bin/true]\n',
        ),
      },
    ]);
    expect(repo.diagnostics).toEqual([]);
    expect(repo.valid).toBe(true);
  });
});

describe('reconciler/manifests/parse-cache', () => {
  it('reuses unchanged files, re-parses edited ones, forgets deleted ones, survives a corrupt pack', async () => {
    const { mkdtemp, writeFile, readdir, rm } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const { loadRepository } = await import('./load.js');
    const root = await mkdtemp(path.join(os.tmpdir(), 'hk-cache-repo-'));
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'hk-cache-'));
    await writeFile(path.join(root, 'a.yaml'), 'kind: A\nvalue: 1\n');
    await writeFile(path.join(root, 'b.yaml'), 'kind: B\n');
    const first = await loadRepository(root, { cacheDir });
    const [pack] = await readdir(cacheDir);
    expect(pack).toMatch(/^parse-[0-9a-f]{16}\.json$/);

    await writeFile(path.join(root, 'a.yaml'), 'kind: A\n\nvalue: 2\n');
    await rm(path.join(root, 'b.yaml'));
    const second = await loadRepository(root, { cacheDir });
    expect(second.documents.map((d) => d.value)).toEqual([{ kind: 'A', value: 2 }]);
    expect(second.documents[0]!.locate('/value').line).toBe(3);
    expect(first.documents.map((d) => d.file)).toEqual(['a.yaml', 'b.yaml']);
    const { readFile } = await import('node:fs/promises');
    expect(Object.keys(JSON.parse(await readFile(path.join(cacheDir, pack!), 'utf8')).entries)).toEqual(['a.yaml']);

    await writeFile(path.join(cacheDir, pack!), '{not json');
    const third = await loadRepository(root, { cacheDir });
    expect(third.documents.map((d) => d.value)).toEqual([{ kind: 'A', value: 2 }]);
  });

  it('caches diagnostics too: a broken file stays broken from the cache', async () => {
    const { mkdtemp, writeFile } = await import('node:fs/promises');
    const os = await import('node:os');
    const path = await import('node:path');
    const { loadRepository } = await import('./load.js');
    const root = await mkdtemp(path.join(os.tmpdir(), 'hk-cache-repo-'));
    const cacheDir = await mkdtemp(path.join(os.tmpdir(), 'hk-cache-'));
    await writeFile(path.join(root, 'a.yaml'), 'a: 1\na: 2\n');
    for (let i = 0; i < 2; i++) {
      const r = await loadRepository(root, { cacheDir });
      expect(r.diagnostics.map((d) => [d.summary, d.location?.line])).toEqual([['duplicate key', 2]]);
    }
  });
});

describe('reconciler/manifests/compose', () => {
  it('a "__proto__" key is plain data, never the object prototype', () => {
    const { documents } = parseManifestFile({ file: 'm.yaml', bytes: enc('a:\n  __proto__:\n    polluted: yes\n') });
    const a = (documents[0]!.value as { a: Record<string, unknown> }).a;
    expect(Object.keys(a)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('an aliased value is located where the alias is written; nesting and alias limits hold', () => {
    const { documents } = parseManifestFile({ file: 'm.yaml', bytes: enc('base: &b\n  x: 1\nuse: *b\n') });
    expect(documents[0]!.value).toEqual({ base: { x: 1 }, use: { x: 1 } });
    expect(documents[0]!.locate('/use')).toMatchObject({ line: 3, column: 6 });
    const deep = parseManifestFile({ file: 'd.yaml', bytes: enc('a: ' + '['.repeat(40) + ']'.repeat(40) + '\n') });
    expect(deep.diagnostics.map((d) => [d.summary, d.location?.line])).toEqual([['nesting too deep', 1]]);
  });
});

describe('reconciler/manifests/load limits per repository', () => {
  const doc = (i: number) => `apiVersion: hostkit.dev/v1\nkind: File\nmetadata: { name: f${i} }\n`;

  it('refuses a repository of more documents than LIMITS.documents, and no more files than LIMITS.files', () => {
    const saved = { documents: LIMITS.documents, files: LIMITS.files };
    try {
      // The logic at a small scale: the real limits (40,000 documents, 20,000 files) would parse that many on every run.
      LIMITS.documents = 5;
      const files = [0, 1, 2].map((f) => ({ file: `m${f}.yaml`, bytes: enc([0, 1].map((d) => doc(f * 2 + d)).join('---\n')) }));
      const refused = parseFiles(files);
      expect(refused.documents).toEqual([]);
      expect(refused.diagnostics.map((d) => [d.summary, d.detail])).toEqual([['too many documents', '6 documents in the repository; at most 5']]);
      expect(parseFiles(files.slice(0, 2)).documents).toHaveLength(4);
      LIMITS.files = 2;
      expect(parseFiles(files).diagnostics.map((d) => d.summary)).toEqual(['too many files']);
    } finally {
      Object.assign(LIMITS, saved);
    }
  });
});

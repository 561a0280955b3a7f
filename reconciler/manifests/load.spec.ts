import { describe, expect, it } from 'vitest';
import { parseManifestFile } from './load.js';
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

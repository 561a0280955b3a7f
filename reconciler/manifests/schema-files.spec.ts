import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DRIVERS } from '../drivers/registry.js';
import { hasManifests } from '../drivers/types.js';
import { PRIMITIVE_KINDS } from './primitives.js';
import { GENERATED_SCHEMA_FILES, generatedSchemas, generatedSchemaTexts, REGENERATE_COMMAND } from './schema-files.js';
import { schemaDir } from './schemas.js';

describe('manifests/schema-files', () => {
  const dir = schemaDir();

  it.each(GENERATED_SCHEMA_FILES)('schema/%s is what the driver registry generates', async (name) => {
    const generated = (await generatedSchemaTexts(dir))[name];
    const committed = readFileSync(path.join(dir, name), 'utf8');
    // A kind added, renamed or given another schema in a driver folder without regenerating the file.
    if (committed !== generated) expect.fail(`schema/${name} is stale: run \`${REGENERATE_COMMAND}\` and commit the result`);
  });

  it('lists every registered kind: manifest kinds in the manifest, resource and reference schemas, resource kinds in the plan', () => {
    const schemas = generatedSchemas(dir);
    const manifest = schemas['manifest.schema.json'] as { properties: { kind: { enum: string[] } } };
    expect(manifest.properties.kind.enum).toEqual(['Host', 'Project', ...PRIMITIVE_KINDS]);
    const resources = schemas['resources.schema.json'] as { $defs: Record<string, unknown>; oneOf: { $ref: string }[] };
    expect(Object.keys(resources.$defs)).toEqual(PRIMITIVE_KINDS);
    expect(resources.oneOf.map((r) => r.$ref)).toEqual(PRIMITIVE_KINDS.map((k) => `#/$defs/${k}`));
    const common = schemas['common.schema.json'] as { $defs: { reference: { pattern: string } } };
    for (const kind of ['Project', ...PRIMITIVE_KINDS]) expect(new RegExp(common.$defs.reference.pattern).test(`${kind}/web`)).toBe(true);
    expect(new RegExp(common.$defs.reference.pattern).test('Host/web')).toBe(false);
    const plan = schemas['plan.schema.json'] as { properties: { changes: { items: { properties: { kind: { enum: string[] } } } } } };
    expect(plan.properties.changes.items.properties.kind.enum).toEqual(DRIVERS.map((d) => d.kind));
  });

  it('each manifest kind is declared by one driver folder only', () => {
    const declared = DRIVERS.flatMap((d) => (hasManifests(d) ? d.manifests.map((p) => p.kind) : []));
    expect(declared).toEqual([...new Set(declared)]);
    expect(declared).toEqual(PRIMITIVE_KINDS);
  });
});

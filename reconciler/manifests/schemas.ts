import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Ajv2020 as Ajv2020Type, ValidateFunction } from 'ajv/dist/2020.js';
import { PRIMITIVE_KINDS } from './primitives.js';
import { generatedSchemas } from './schema-files.js';
import type { ManifestKind } from './types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const BASE = 'https://hostkit.dev/schema/';
export const GENERATED_MODULE = 'validators.generated.cjs';

// The schema/ folder sits at the package root, two levels above this module
// both in the sources (reconciler/manifests) and the build (dist/reconciler/manifests).
export function schemaDir(): string {
  for (const candidate of [path.resolve(here, '../../schema'), path.resolve(here, '../../../schema')]) {
    try {
      readFileSync(path.join(candidate, 'common.schema.json'));
      return candidate;
    } catch {
      // try the next candidate
    }
  }
  throw new Error(`HostKit's schema/ folder was not found next to ${here}`);
}

// What validation compiles: the schemas generated from the driver registry (schema-files.ts),
// never schema/'s copies of them, and the hand-written Host and Project schemas.
function schemaDocuments(): object[] {
  const dir = schemaDir();
  const generated = generatedSchemas(dir);
  const read = (name: string) => JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as object;
  return [generated['common.schema.json'], generated['resources.schema.json'], read('host.schema.json'), read('project.schema.json')];
}

export function schemaHash(documents: readonly object[] = schemaDocuments()): string {
  const hash = createHash('sha256');
  for (const d of documents) hash.update(JSON.stringify(d)).update('\0');
  return hash.digest('hex');
}

/** Which schema (by id) validates each manifest kind. */
export function schemaRefs(): Record<ManifestKind, string> {
  const refs = { Host: `${BASE}host.schema.json`, Project: `${BASE}project.schema.json` } as Record<ManifestKind, string>;
  for (const kind of PRIMITIVE_KINDS) refs[kind] = `${BASE}resources.schema.json#/$defs/${kind}`;
  return refs;
}

/** One Ajv configuration for run-time compilation and for the build-time generated module. */
export async function createAjv(options: { standalone?: boolean } = {}): Promise<Ajv2020Type> {
  const { Ajv2020 } = await import('ajv/dist/2020.js');
  const addFormats = (await import('ajv-formats')).default as unknown as (a: Ajv2020Type) => void;
  const ajv = new Ajv2020({
    allErrors: true,
    verbose: true,
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    allowUnionTypes: true,
    ...(options.standalone ? { code: { source: true } } : {}),
  });
  addFormats(ajv);
  for (const document of schemaDocuments()) ajv.addSchema(document);
  return ajv;
}

let compiled: Map<ManifestKind, ValidateFunction> | undefined;

/**
 * Validators for every kind, once per process. The build compiles the schemas
 * into plain JavaScript (compile-schemas.ts), which saves ~0.6 s of Ajv start-up
 * per command; when that module is missing or older than the schemas (running
 * from sources), the schemas are compiled here instead.
 */
export async function validators(): Promise<Map<ManifestKind, ValidateFunction>> {
  if (compiled) return compiled;
  const refs = schemaRefs();
  const generated = loadGenerated();
  compiled = new Map<ManifestKind, ValidateFunction>();
  if (generated) {
    for (const kind of Object.keys(refs) as ManifestKind[]) compiled.set(kind, generated[kind] as ValidateFunction);
    return compiled;
  }
  const ajv = await createAjv();
  for (const [kind, ref] of Object.entries(refs) as [ManifestKind, string][]) compiled.set(kind, ajv.getSchema(ref)!);
  return compiled;
}

function loadGenerated(): Record<string, unknown> | undefined {
  try {
    const mod = createRequire(import.meta.url)(`./${GENERATED_MODULE}`) as Record<string, unknown>;
    return mod.schemaHash === schemaHash() ? mod : undefined;
  } catch {
    return undefined;
  }
}

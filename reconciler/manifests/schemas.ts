import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { PRIMITIVE_KINDS, type ManifestKind } from './types.js';

// The schema/ folder sits at the package root, two levels above this module
// both in the sources (reconciler/manifests) and the build (dist/reconciler/manifests).
export function schemaDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
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

function readSchema(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(schemaDir(), name), 'utf8')) as Record<string, unknown>;
}

let compiled: Map<ManifestKind, ValidateFunction> | undefined;

// Compiled once per process: ajv compilation is the expensive part.
export function validators(): Map<ManifestKind, ValidateFunction> {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false, strictTuples: false, strictRequired: false, allowUnionTypes: true });
  const addFormats = addFormatsModule as unknown as (a: Ajv2020) => void;
  addFormats(ajv);
  ajv.addSchema(readSchema('common.schema.json'));
  ajv.addSchema(readSchema('resources.schema.json'));
  ajv.addSchema(readSchema('host.schema.json'));
  ajv.addSchema(readSchema('project.schema.json'));
  const base = 'https://hostkit.dev/schema/';
  compiled = new Map<ManifestKind, ValidateFunction>();
  compiled.set('Host', ajv.getSchema(`${base}host.schema.json`)!);
  compiled.set('Project', ajv.getSchema(`${base}project.schema.json`)!);
  for (const kind of PRIMITIVE_KINDS) {
    compiled.set(kind, ajv.getSchema(`${base}resources.schema.json#/$defs/${kind}`)!);
  }
  return compiled;
}

// The schemas that list kinds, generated from the light registry (drivers/kinds.ts): each driver
// folder's manifest kinds (drivers/NAME/manifest.ts) make resources.schema.json and
// manifest.schema.json, and the kind lists in common.schema.json (references) and
// plan.schema.json (a change's kind). Validation compiles these (schemas.ts);
// `npm run schemas` writes them into schema/, and a unit test keeps the committed
// files equal to them.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AnyPrimitive } from '../drivers/manifest-types.js';
import { KINDS } from '../drivers/kinds.js';
import { PRIMITIVES } from './primitives.js';

const BASE = 'https://hostkit.dev/schema/';
const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** The files generated here, in schema/. */
export const GENERATED_SCHEMA_FILES = ['resources.schema.json', 'manifest.schema.json', 'common.schema.json', 'plan.schema.json'] as const;
export type GeneratedSchemaFile = (typeof GENERATED_SCHEMA_FILES)[number];

/** What regenerates the files, for messages about stale ones. */
export const REGENERATE_COMMAND = 'npm run schemas';

type Json = Record<string, unknown>;

// What every primitive manifest shares around its kind's own spec fields.
function primitiveSchema(p: AnyPrimitive): Json {
  return {
    type: 'object',
    title: p.schema.title,
    required: ['apiVersion', 'kind', 'metadata', 'spec'],
    additionalProperties: false,
    properties: {
      apiVersion: { $ref: 'common.schema.json#/$defs/apiVersion' },
      kind: { const: p.kind },
      metadata: { $ref: 'common.schema.json#/$defs/primitiveMetadata' },
      spec: {
        type: 'object',
        additionalProperties: false,
        required: ['placement', ...(p.schema.required ?? [])],
        properties: { placement: { $ref: 'common.schema.json#/$defs/placement' }, ...p.schema.properties },
      },
    },
  };
}

function resourcesSchema(): Json {
  const kinds = [...PRIMITIVES.keys()];
  return {
    $schema: DRAFT,
    $id: `${BASE}resources.schema.json`,
    title: 'HostKit primitive resources',
    description: 'Resources declared directly, for what a Project does not cover.',
    $defs: Object.fromEntries([...PRIMITIVES.values()].map((p) => [p.kind, primitiveSchema(p)])),
    oneOf: kinds.map((k) => ({ $ref: `#/$defs/${k}` })),
  };
}

function manifestSchema(): Json {
  const targets: [string, string][] = [
    ['Host', 'host.schema.json'],
    ['Project', 'project.schema.json'],
    ...[...PRIMITIVES.keys()].map((k): [string, string] => [k, `resources.schema.json#/$defs/${k}`]),
  ];
  return {
    $schema: DRAFT,
    $id: `${BASE}manifest.schema.json`,
    title: 'Any HostKit manifest',
    type: 'object',
    required: ['kind'],
    allOf: targets.map(([kind, ref]) => ({ if: { properties: { kind: { const: kind } } }, then: { $ref: ref } })),
    properties: { kind: { enum: targets.map(([kind]) => kind) } },
  };
}

function readSchema(dir: string, name: string): Json {
  return JSON.parse(readFileSync(path.join(dir, name), 'utf8')) as Json;
}

// The hand-written rest of the file as committed, with the one node that lists kinds replaced.
function withNode(schema: Json, pointer: readonly string[], value: unknown): Json {
  const copy = structuredClone(schema);
  let node: Json = copy;
  for (const key of pointer.slice(0, -1)) {
    const next = node[key];
    if (next === null || typeof next !== 'object') throw new Error(`schema node /${pointer.join('/')} is missing (at ${key})`);
    node = next as Json;
  }
  node[pointer.at(-1)!] = value;
  return copy;
}

function commonSchema(dir: string): Json {
  const kinds = ['Project', ...PRIMITIVES.keys()].join('|');
  const pointer = ['$defs', 'reference', 'pattern'];
  return withNode(readSchema(dir, 'common.schema.json'), pointer, `^(?:${kinds})/[a-z](?:[a-z0-9-]{0,38}[a-z0-9])?$`);
}

function planSchema(dir: string): Json {
  const pointer = ['properties', 'changes', 'items', 'properties', 'kind', 'enum'];
  return withNode(
    readSchema(dir, 'plan.schema.json'),
    pointer,
    KINDS.map((k) => k.kind),
  );
}

/** The generated schemas as objects, read against the schema/ folder `dir` for their hand-written parts. */
export function generatedSchemas(dir: string): Record<GeneratedSchemaFile, Json> {
  return {
    'resources.schema.json': resourcesSchema(),
    'manifest.schema.json': manifestSchema(),
    'common.schema.json': commonSchema(dir),
    'plan.schema.json': planSchema(dir),
  };
}

/** The generated schemas as the files' text (prettier's JSON style, as `npm run lint` checks it). */
export async function generatedSchemaTexts(dir: string): Promise<Record<GeneratedSchemaFile, string>> {
  const prettier = await import('prettier');
  const out = {} as Record<GeneratedSchemaFile, string>;
  for (const [name, schema] of Object.entries(generatedSchemas(dir)) as [GeneratedSchemaFile, Json][]) {
    const file = path.join(dir, name);
    const options = (await prettier.resolveConfig(file)) ?? {};
    out[name] = await prettier.format(JSON.stringify(schema, null, 2), { ...options, filepath: file });
  }
  return out;
}

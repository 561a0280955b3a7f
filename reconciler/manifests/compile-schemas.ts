// Build step: compile the manifest schemas into a standalone CommonJS module
// next to the built schemas.js, so commands start without compiling them.
// (CommonJS because ajv-formats' standalone output uses require.)
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { createAjv, GENERATED_MODULE, schemaHash, schemaRefs } from './schemas.js';

const ajv = await createAjv({ standalone: true });
const generate = standaloneCode as unknown as (a: typeof ajv, refs: Record<string, string>) => string;
const code = generate(ajv, schemaRefs());
const out = path.join(path.dirname(fileURLToPath(import.meta.url)), GENERATED_MODULE);
writeFileSync(out, `${code}\nexports.schemaHash = ${JSON.stringify(schemaHash())};\n`);
process.stderr.write(`compiled manifest schemas -> ${path.relative(process.cwd(), out)}\n`);

// Build step: compile the manifest schemas, as generated from the driver registry
// (schema-files.ts), into a standalone CommonJS module next to the built schemas.js,
// so commands start without compiling them. (CommonJS because ajv-formats'
// standalone output uses require.) With --write, write the generated schemas into
// schema/ instead (`npm run schemas`; a unit test keeps the committed ones current).
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import standaloneCode from 'ajv/dist/standalone/index.js';
import { generatedSchemaTexts } from './schema-files.js';
import { createAjv, GENERATED_MODULE, schemaDir, schemaHash, schemaRefs } from './schemas.js';

if (process.argv.includes('--write')) {
  const dir = schemaDir();
  for (const [name, text] of Object.entries(await generatedSchemaTexts(dir))) {
    const file = path.join(dir, name);
    const changed = readFileSync(file, 'utf8') !== text;
    if (changed) writeFileSync(file, text);
    process.stderr.write(`${path.relative(process.cwd(), file)}: ${changed ? 'regenerated from the driver registry' : 'current'}\n`);
  }
} else {
  const ajv = await createAjv({ standalone: true });
  const generate = standaloneCode as unknown as (a: typeof ajv, refs: Record<string, string>) => string;
  const code = generate(ajv, schemaRefs());
  const out = path.join(path.dirname(fileURLToPath(import.meta.url)), GENERATED_MODULE);
  writeFileSync(out, `${code}\nexports.schemaHash = ${JSON.stringify(schemaHash())};\n`);
  process.stderr.write(`compiled manifest schemas -> ${path.relative(process.cwd(), out)}\n`);
}

import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { stringify } from 'yaml';
import { HostKitError } from '../core/errors.js';
import { hostkitVersion } from '../core/version.js';
import type { PlannedHost } from '../diff/plan.js';
import { renderMarkdown } from '../diff/render/markdown.js';
import type { Style } from '../diff/render/style.js';
import { renderText } from '../diff/render/text.js';
import { describeStaleness, planOf, SAVED_PLAN_FORMAT, SAVED_PLAN_VERSION, staleness, type SavedPlan, type Staleness } from '../diff/saved-plan.js';
import { generatedSchemas } from '../manifests/schema-files.js';
import { createAjv, schemaDir } from '../manifests/schemas.js';
import type { Manifest } from '../manifests/types.js';

// The files of `hostkit plan --out FILE` and `hostkit reconcile --plan FILE`: read,
// checked against what this run targets, written. What a saved plan is and how a
// new plan differs from it: diff/saved-plan.ts.

let validator: Promise<ValidateFunction> | undefined;

function savedPlanValidator(): Promise<ValidateFunction> {
  validator ??= (async () => {
    const ajv = await createAjv();
    const dir = schemaDir();
    ajv.addSchema(generatedSchemas(dir)['plan.schema.json']);
    return ajv.compile(JSON.parse(await readFile(path.join(dir, 'saved-plan.schema.json'), 'utf8')) as object);
  })();
  return validator;
}

function invalid(file: string, why: string): HostKitError {
  return new HostKitError('PLAN_FILE_INVALID', `${file} is not a saved plan HostKit can read: ${why}. Make one with \`hostkit plan --out ${file}\`.`, {
    data: { file },
  });
}

/**
 * The saved plan in `file`, or a HostKitError naming the file: PLAN_FILE_INVALID when it cannot be
 * read or is not a saved plan, PLAN_INCOMPATIBLE when another HostKit version (or file format) made it.
 */
export async function readSavedPlan(file: string): Promise<SavedPlan> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new HostKitError('PLAN_FILE_INVALID', `cannot read the saved plan ${file}: ${(cause as Error).message}`, { data: { file }, cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw invalid(file, `not JSON (${(cause as Error).message})`);
  }
  const head = (typeof value === 'object' && value !== null ? value : {}) as Partial<Record<keyof SavedPlan, unknown>>;
  if (head.format !== SAVED_PLAN_FORMAT) throw invalid(file, `its "format" is ${JSON.stringify(head.format)}, not "${SAVED_PLAN_FORMAT}"`);
  const ours = hostkitVersion();
  if (head.formatVersion !== SAVED_PLAN_VERSION || head.hostkitVersion !== ours) {
    throw new HostKitError(
      'PLAN_INCOMPATIBLE',
      `${file} was saved by HostKit ${String(head.hostkitVersion)} (saved-plan format ${String(head.formatVersion)}); this is HostKit ${ours} (format ${SAVED_PLAN_VERSION}). A saved plan is applied by the HostKit version that made it: make a new plan with this one.`,
      { data: { file, hostkitVersion: head.hostkitVersion, formatVersion: head.formatVersion } },
    );
  }
  const validate = await savedPlanValidator();
  if (!validate(value)) {
    const first = validate.errors?.[0];
    throw invalid(file, `${first?.instancePath || '/'} ${first?.message ?? 'is invalid'} (schema/saved-plan.schema.json)`);
  }
  return value as SavedPlan;
}

/** Written whole or not at all: a plan cut short by a full disk must not read as a plan. */
export async function writeSavedPlan(file: string, saved: SavedPlan): Promise<void> {
  const temp = `${file}.tmp-${process.pid}`;
  await writeFile(temp, JSON.stringify(saved, null, 2) + '\n');
  await rename(temp, file);
}

/** A plan for another host is refused before the host is read. */
export function assertPlanFor(saved: SavedPlan, file: string, hostName: string): void {
  if (saved.host === hostName) return;
  throw new HostKitError(
    'PLAN_WRONG_HOST',
    `${file} is a plan for host ${saved.host}; this run is for host ${hostName} (--host, or this machine's hostname). Nothing was applied.`,
    { data: { file, planHost: saved.host, host: hostName } },
  );
}

/** PLAN_STALE, naming what differs: nothing of the plan was applied. */
export function staleError(file: string, s: Staleness, repository: string): HostKitError {
  return new HostKitError(
    'PLAN_STALE',
    `The saved plan ${file} is stale: ${describeStaleness(s, repository)}. Nothing was applied. Make a new plan (hostkit plan --out ${file}) and review it.`,
    { data: { file, ...s } },
  );
}

/** The engine's approve hook for `reconcile --plan`: throws PLAN_STALE unless the new plan is the saved one. */
export function approveSaved(saved: SavedPlan, file: string, repository: string) {
  return (planned: PlannedHost, repo: { manifests: readonly Manifest[] }): void => {
    const stale = staleness(saved, planned, repo.manifests);
    if (stale) throw staleError(file, stale, repository);
  };
}

/**
 * `--plan FILE --dry-run`: the saved plan as it was saved, and whether an apply of it would go
 * ahead (current) or be refused (stale, and why). JSON and YAML: { file, current, stale?, plan }.
 */
export function renderSavedCheck(
  saved: SavedPlan,
  file: string,
  stale: Staleness | undefined,
  o: { output: string; style: Style; verbose: boolean; repository: string },
): string {
  if (o.output === 'json' || o.output === 'yaml') {
    const doc = {
      file,
      current: stale === undefined,
      createdAt: saved.createdAt,
      host: saved.host,
      commit: saved.commit,
      ...(stale ? { stale } : {}),
      plan: saved.plan,
    };
    return o.output === 'json' ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc);
  }
  const made = `made ${saved.createdAt} at commit ${saved.commit.slice(0, 12)}`;
  const verdict = stale
    ? o.style.red(`The saved plan ${file} (${made}) is stale: ${describeStaleness(stale, o.repository)}. \`hostkit reconcile --plan ${file}\` refuses it.`)
    : o.style.green(`The saved plan ${file} (${made}) is current: \`hostkit reconcile --plan ${file}\` applies exactly these changes.`);
  const plan = planOf(saved);
  return o.output === 'markdown' ? `${renderMarkdown(plan)}\n${verdict}\n` : `${renderText(plan, { style: o.style, verbose: o.verbose })}\n${verdict}\n`;
}

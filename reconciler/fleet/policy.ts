// The rollout policy (`kind: Rollout`, schema/rollout.schema.json), kept in
// .hostkit/rollout.yaml of the config repository: the manifest loader skips
// .hostkit/, so the policy is read here, at the commit being rolled out.
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ValidateFunction } from 'ajv';
import { error, type Diagnostic } from '../core/diagnostics.js';
import { durationMs } from '../core/duration.js';
import { parseManifest, toLoaded } from '../manifests/load.js';
import { createAjv, schemaDir } from '../manifests/schemas.js';
import { describeErrors } from '../manifests/validate.js';

/** Where the policy lives in the config repository. */
export const ROLLOUT_FILE = '.hostkit/rollout.yaml';

/** A number of hosts, or a share of the wave's hosts. */
export type Amount = { count: number } | { percent: number };

export interface Wave {
  /** 1-based, as reports and messages name it. */
  number: number;
  name: string;
  hosts: string[];
  matchLabels?: Record<string, string>;
  /** Batch size as a share of the wave's hosts; undefined: the whole wave at once. */
  batchPercent?: number;
  maxFailures: Amount;
  bakeMs: number;
}

export interface RolloutPolicy {
  name: string;
  waves: Wave[];
}

interface RawWave {
  name?: string;
  hosts?: string[];
  selector?: { matchLabels: Record<string, string> };
  batch?: string;
  maxFailures?: number | string;
  bake?: string;
}

export type PolicyResult = { ok: true; policy: RolloutPolicy } | { ok: false; diagnostics: Diagnostic[] };

let validator: Promise<ValidateFunction> | undefined;

async function rolloutValidator(): Promise<ValidateFunction> {
  validator ??= (async () => {
    const ajv = await createAjv();
    return ajv.compile(JSON.parse(await readFile(path.join(schemaDir(), 'rollout.schema.json'), 'utf8')) as object);
  })();
  return validator;
}

/** Parse and validate a rollout policy; problems name file, line and field. */
export async function parseRollout(file: string, bytes: Uint8Array): Promise<PolicyResult> {
  const parsed = parseManifest({ file, bytes });
  if (parsed.diagnostics.length > 0) return { ok: false, diagnostics: parsed.diagnostics };
  if (parsed.documents.length !== 1) {
    return { ok: false, diagnostics: [error('one document expected', `the rollout policy must be one document, found ${parsed.documents.length}`, { file })] };
  }
  const doc = toLoaded(parsed.documents[0]!);
  const validate = await rolloutValidator();
  if (!validate(doc.value)) return { ok: false, diagnostics: describeErrors(validate.errors ?? [], doc, doc.value) };
  const raw = doc.value as { metadata: { name: string }; spec: { waves: RawWave[] } };
  const waves = raw.spec.waves.map((w, i): Wave => {
    return {
      number: i + 1,
      name: w.name ?? `wave-${i + 1}`,
      hosts: w.hosts ?? [],
      ...(w.selector ? { matchLabels: w.selector.matchLabels } : {}),
      ...(w.batch ? { batchPercent: Number(w.batch.slice(0, -1)) } : {}),
      maxFailures: amount(w.maxFailures ?? 0),
      bakeMs: w.bake ? durationMs(w.bake) : 0,
    };
  });
  return { ok: true, policy: { name: raw.metadata.name, waves } };
}

function amount(value: number | string): Amount {
  return typeof value === 'number' ? { count: value } : { percent: Number(value.slice(0, -1)) };
}

/**
 * The policy at `commit` of a git directory (the agent's mirror), or undefined
 * when the commit has none (every host deploys at once). An invalid policy is a
 * HostKit error value the caller reports: nothing is rolled out under it.
 */
export async function readRolloutAt(gitdir: string, commit: string): Promise<PolicyResult | undefined> {
  const git = await import('isomorphic-git');
  let blob: Uint8Array;
  try {
    ({ blob } = await git.readBlob({ fs, gitdir, oid: commit, filepath: ROLLOUT_FILE }));
  } catch (cause) {
    if ((cause as { code?: string }).code === 'NotFoundError') return undefined;
    throw cause;
  }
  return parseRollout(ROLLOUT_FILE, blob);
}

// Holds on a release (`hostkit rollback --project P --to ID`), kept in
// STATE/safety.json beside quarantined commits and paused projects
// (apply/quarantine.ts stores them): the words every command uses for one, and
// the one rule of when a hold still binds a plan.
import type { HoldEntry } from '../../apply/quarantine.js';
import { holdDigest, type HeldSpec } from './records.js';

export { heldRelease, holdRelease, releaseHold, type HoldEntry } from '../../apply/quarantine.js';

/** What a hold means and what ends it, in one line (`hostkit runs`, `hostkit resume`). */
export function holdText(h: HoldEntry): string {
  return `held: project ${h.project} on release ${h.release} since ${h.at} (rollback --to); a commit that changes its source or \`hostkit resume\` releases it`;
}

/**
 * Whether `hold` still binds the project whose release spec is `spec`: while the
 * spec's source, build, keep and shared fields are as when it was held, the
 * release driver desires the held release; once a commit changes any of them the
 * hold is over (an apply then removes it with releaseHold; a plan only reads).
 */
export function holdBinds(hold: HoldEntry | undefined, spec: HeldSpec): hold is HoldEntry {
  return hold !== undefined && hold.specDigest === holdDigest(spec);
}

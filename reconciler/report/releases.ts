// Which release each project with a source serves, for the agent's report
// (status/HOST.json and .md) and its commit statuses. Read from the host after
// the run (the `current` link and its marker), not from the plan: a run that
// rolled back names the release that serves again, not the one it tried.
import { servingRelease } from '../drivers/release/records.js';
import type { ReconcileOutcome } from '../engine.js';
import type { Host } from '../hosts/types.js';

/** A project's current release as a report names it; no `id` before its first release. */
export interface ReportRelease {
  project: string;
  id?: string;
  commit?: string;
  archiveSha256?: string;
}

/** The projects with a source in the run's plan (a `release/NAME` each), sorted; none when the manifests were invalid. */
export function sourceProjects(outcome: ReconcileOutcome): string[] {
  if (outcome.stage === 'invalid') return [];
  const projects = outcome.planned.plan.changes.filter((c) => c.kind === 'release' && c.project !== undefined).map((c) => c.project!);
  return [...new Set(projects)].sort();
}

/** What `current` serves for each of `projects`: file reads only (readlink, one marker, the switch history). */
export async function currentReleases(host: Host, stateDirectory: string, projects: readonly string[]): Promise<ReportRelease[]> {
  return Promise.all(
    projects.map(async (project) => {
      const r = await servingRelease(host, stateDirectory, project);
      return {
        project,
        ...(r ? { id: r.id } : {}),
        ...(r?.commit ? { commit: r.commit } : {}),
        ...(r?.archiveSha256 ? { archiveSha256: r.archiveSha256 } : {}),
      };
    }),
  );
}

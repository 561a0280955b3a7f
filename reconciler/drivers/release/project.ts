// The release part of expanding a Project (drivers/kinds.ts PROJECT_PARTS: after the
// account, directory, files, env file and database parts, before the commands and
// units): a project with `spec.source` gets one `release/NAME` resource; its units
// and lifecycle commands then run in /srv/NAME/current (unless
// spec.service.workingDirectory says otherwise), take the release as an input, and
// a static site serves from inside it.
import { durationMs } from '../../core/duration.js';
import { stringEnv, UNIT_PREFIX } from '../../manifests/primitive.js';
import type { ProjectPart } from '../manifest-types.js';
import { currentLink } from './layout.js';
import type { ReleaseSpec } from './spec.js';

export const DEFAULT_KEEP = 5;
/** A build step's time unless it says otherwise. */
export const BUILD_TIMEOUT_MS = 15 * 60 * 1000;

export const projectRelease: ProjectPart = {
  name: 'release',
  expand(x) {
    const spec = x.project.spec;
    if (!spec.source) return;
    const service = spec.service;
    const release: ReleaseSpec = {
      project: x.name,
      user: x.user,
      group: x.user,
      source: spec.source,
      build: (spec.build ?? []).map((b) => ({
        command: b.command,
        environment: stringEnv(b.environment),
        timeoutMs: b.timeout ? durationMs(b.timeout) : BUILD_TIMEOUT_MS,
      })),
      keep: spec.releases?.keep ?? DEFAULT_KEEP,
      shared: spec.shared ?? [],
      // A build runs under the service's isolation profile (with the network): writable where the service may write.
      isolation: {
        profile: service?.isolation?.profile ?? 'web-service',
        writablePaths: service?.isolation?.writablePaths ?? [x.workingDirectory],
        network: service?.isolation?.network ?? 'any',
      },
      webReadable: x.webRoot !== undefined,
      restarts: [
        ...(service?.command ? [`${UNIT_PREFIX}${x.name}.service`] : []),
        ...(spec.workers ?? []).map((w) => `${UNIT_PREFIX}${x.name}-${w.name}.service`),
      ],
      ...(spec.deploy?.strategy === 'blue-green' && service?.command ? { switchWithNginx: true as const } : {}),
    };
    x.ids.release = x.add<ReleaseSpec>('release', x.name, release, x.at('/spec/source'), { dependsOn: [x.ids.account, x.ids.directory] });
    if (!service?.workingDirectory) x.workingDirectory = currentLink(x.name);
    if (x.webRoot?.inRelease) x.ids.webRoot = x.ids.release;
    x.reads.push(currentLink(x.name));
  },
};

import type { Location } from '../../core/diagnostics.js';
import { resourceId } from '../../core/resource.js';
import { projectRoots, within } from '../../manifests/host-policy.js';
import { WEB_GROUP } from '../../manifests/primitive.js';
import type { ProjectExpansion, ProjectPart } from '../manifest-types.js';
import type { DirectorySpec } from './spec.js';

// The project's working directory (the paths its service may write checked too),
// and a static site's web root when it is HostKit's to create.
export const projectDirectory: ProjectPart = {
  name: 'directory',
  expand(x) {
    const spec = x.project.spec;
    const dir = x.workingDirectory;
    if (x.runs) {
      x.checkPath(dir, x.at(spec.service?.workingDirectory ? '/spec/service/workingDirectory' : '/metadata/name'));
      (spec.service?.isolation?.writablePaths ?? []).forEach((p, i) => x.checkPath(p, x.at(`/spec/service/isolation/writablePaths/${i}`)));
      x.ids.directory = x.add<DirectorySpec>('directory', dir, { path: dir, owner: x.user, ...webAccess(dir, x.webRoot?.path, x.user) }, x.origin, {
        dependsOn: [x.ids.account],
      });
    }
    if (x.webRoot !== undefined && !x.webRoot.inRelease) {
      const webRoot = addWebRoot(x, x.webRoot.path, x.webRoot.origin);
      if (webRoot !== undefined) x.ids.webRoot = webRoot;
    }
  },
};

/**
 * A static site's web root under the project's own paths is HostKit's to create,
 * readable by nginx's group (owned by the project's user when something of the
 * project runs, so it can write there; else by root). Elsewhere it is the
 * operator's: the site only checks that it exists (see expandForHost).
 */
function addWebRoot(x: ProjectExpansion, root: string, origin: Location): string | undefined {
  if (!projectRoots(x.name, x.host.policy).some((r) => within(root, r))) return undefined;
  if (x.runs && root === x.workingDirectory) return resourceId('directory', root); // planned as the working directory
  const spec: DirectorySpec = { path: root, owner: x.runs ? x.user : 'root', group: WEB_GROUP, mode: 0o750 };
  return x.add<DirectorySpec>('directory', root, spec, origin, { dependsOn: x.runs ? [x.ids.account, x.ids.directory] : [] });
}

/** The working directory's group and mode: nginx reads a web root that is the directory, and passes through one inside it. */
function webAccess(dir: string, root: string | undefined, user: string): { group: string; mode: number } {
  if (root === dir) return { group: WEB_GROUP, mode: 0o750 };
  // nginx is not in the project's group: others may traverse to the web root, not list.
  if (root !== undefined && within(root, dir)) return { group: user, mode: 0o751 };
  return { group: user, mode: 0o750 };
}

import type { ProjectPart } from '../manifest-types.js';
import type { AccountSpec } from './spec.js';

// The user a project runs as, at home in its working directory. Two projects
// that run as one user share it (the same settings merge).
export const projectAccount: ProjectPart = {
  name: 'account',
  expand(x) {
    if (!x.runs) return;
    const user = x.user;
    x.ids.account = x.add<AccountSpec>(
      'account',
      user,
      { user, group: user, home: x.workingDirectory, shell: '/usr/sbin/nologin', groups: [] },
      x.at(x.project.spec.user ? '/spec/user' : '/metadata/name'),
      { shared: true },
    );
  },
};

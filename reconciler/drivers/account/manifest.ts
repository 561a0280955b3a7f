import { error } from '../../core/diagnostics.js';
import { within } from '../../manifests/host-policy.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import type { AccountSpec } from './spec.js';

/** Groups whose membership is root-equivalent or reads what others own. */
export const PRIVILEGED_GROUPS = new Set(['root', 'sudo', 'wheel', 'adm', 'disk', 'shadow', 'docker', 'lxd', 'systemd-journal']);

/** An Account manifest's spec as written. */
export interface AccountManifestSpec {
  user?: string;
  home?: string;
  shell?: string;
  groups?: string[];
}

// A system user and its group; the same user declared twice with the same settings is one account.
export const accountPrimitive: PrimitiveDefinition<'Account', AccountManifestSpec> = {
  kind: 'Account',
  schema: {
    title: 'A system user and its group',
    properties: {
      user: { $ref: 'common.schema.json#/$defs/userName' },
      home: { $ref: 'common.schema.json#/$defs/absolutePath' },
      shell: { $ref: 'common.schema.json#/$defs/absolutePath' },
      groups: { type: 'array', maxItems: 64, items: { type: 'string', $ref: 'common.schema.json#/$defs/userName' }, uniqueItems: true },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const user = s.user ?? m.name;
    x.add<AccountSpec>(
      'account',
      user,
      { user, group: user, home: s.home ?? '/nonexistent', shell: s.shell ?? '/usr/sbin/nologin', groups: s.groups ?? [] },
      x.origin,
      { shared: true },
    );
  },

  policy(m, c) {
    const room = c.project;
    const s = m.value.spec;
    const user = s.user ?? m.name;
    if (room && user !== room.user)
      c.refuse('account-owner', `account "${user}" is not project ${room.project}'s own user "${room.user}"`, s.user ? '/spec/user' : '/metadata/name');
    if (s.home === '/' || (s.home !== undefined && within(s.home, '/root'))) {
      c.report(error('home not allowed', `rule account-home: home ${s.home} belongs to the system; give the account a home of its own`, c.at('/spec/home')));
    } else if (s.home) c.path(s.home, '/spec/home', 'home');
    (s.groups ?? []).forEach((g, i) => {
      if (room && g !== room.user) {
        const why = PRIVILEGED_GROUPS.has(g)
          ? `membership of "${g}" is root-equivalent or reads what others own`
          : `group "${g}" is not project ${room.project}'s own`;
        c.refuse('account-group', why, `/spec/groups/${i}`);
      }
    });
  },
};

import path from 'node:path';
import { error } from '../../core/diagnostics.js';
import { within } from '../../manifests/host-policy.js';
import type { PrimitiveDefinition } from '../manifest-types.js';
import { KEY_PATTERN, keyProblem, SUDO_COMMAND_PATTERN } from './login.js';
import type { AccountSpec, AuthorizedKeysSpec, SudoersSpec } from './spec.js';

/** Groups whose membership is root-equivalent or reads what others own. */
export const PRIVILEGED_GROUPS = new Set(['root', 'sudo', 'wheel', 'adm', 'disk', 'shadow', 'docker', 'lxd', 'systemd-journal']);

/** An Account manifest's spec as written. */
export interface AccountManifestSpec {
  user?: string;
  home?: string;
  shell?: string;
  groups?: string[];
  authorizedKeys?: string[];
  sudo?: { commands: string[]; runAs?: string; password?: boolean }[];
}

/** Where HostKit writes an account's sudo rules (sudo reads every file there without a `.` or a trailing `~`). */
export const SUDOERS_DIR = '/etc/sudoers.d';

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
      authorizedKeys: {
        type: 'array',
        description:
          'OpenSSH public keys (type, base64, optional comment; no options) written to HOME/.ssh/authorized_keys, which HostKit then owns: the list replaces the file. Host-level only; needs a home.',
        maxItems: 256,
        uniqueItems: true,
        items: { type: 'string', maxLength: 17000, pattern: KEY_PATTERN },
      },
      sudo: {
        type: 'array',
        description: 'sudo rules written to /etc/sudoers.d/hostkit-USER once visudo -cf accepts them. Host-level only.',
        maxItems: 64,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['commands'],
          properties: {
            commands: {
              type: 'array',
              description: 'Absolute paths (any arguments), or ALL.',
              minItems: 1,
              maxItems: 64,
              uniqueItems: true,
              items: { type: 'string', maxLength: 1024, pattern: SUDO_COMMAND_PATTERN },
            },
            runAs: { $ref: 'common.schema.json#/$defs/userName', description: 'The user the commands run as (default root).' },
            password: { type: 'boolean', description: "Whether sudo asks for the caller's password (default true; false: NOPASSWD)." },
          },
        },
      },
    },
  },

  expand(m, x) {
    const s = m.value.spec;
    const user = s.user ?? m.name;
    const home = s.home ?? '/nonexistent';
    const account = x.add<AccountSpec>('account', user, { user, group: user, home, shell: s.shell ?? '/usr/sbin/nologin', groups: s.groups ?? [] }, x.origin, {
      shared: true,
    });
    // Login access: a resource of its own each, after the account (and the directories, by rank).
    if (s.authorizedKeys) {
      const keys: AuthorizedKeysSpec = { user, group: user, home, path: path.posix.join(home, '.ssh/authorized_keys'), keys: s.authorizedKeys };
      x.add<AuthorizedKeysSpec>('authorizedkeys', user, keys, x.at('/spec/authorizedKeys'), { shared: true, dependsOn: [account] });
    }
    if (s.sudo) {
      const rules = s.sudo.map((r) => ({ commands: r.commands, runAs: r.runAs ?? 'root', password: r.password ?? true }));
      const fieldOrigins = Object.fromEntries(s.sudo.map((_, i) => [`rules/${i}`, x.at(`/spec/sudo/${i}`)]));
      x.add<SudoersSpec>('sudoers', user, { user, path: `${SUDOERS_DIR}/hostkit-${user}`, rules }, x.at('/spec/sudo'), {
        shared: true,
        dependsOn: [account],
        fieldOrigins,
      });
    }
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
    // A login (even for its own user, whose shell may be nologin: port forwarding to every loopback
    // service needs no shell) or a sudo rule reaches past the project's sandbox: host-level only.
    if (room && s.authorizedKeys)
      c.refuse('account-login', `SSH keys give account "${user}" a login on the host, outside project ${room.project}'s sandbox`, '/spec/authorizedKeys');
    if (room && s.sudo) c.refuse('account-sudo', `sudo rules for account "${user}" reach past what project ${room.project} owns`, '/spec/sudo');
    if (s.authorizedKeys && (s.home === undefined || s.home === '/nonexistent')) {
      c.report(
        error(
          'login needs a home',
          `account ${user} has authorizedKeys but no home; set spec.home (its .ssh directory lives there)`,
          c.at('/spec/authorizedKeys'),
        ),
      );
    }
    (s.authorizedKeys ?? []).forEach((key, i) => {
      const problem = keyProblem(key);
      if (problem) c.report(error('not a public key', `authorizedKeys[${i}] of account ${user}: ${problem}`, c.at(`/spec/authorizedKeys/${i}`)));
    });
  },
};

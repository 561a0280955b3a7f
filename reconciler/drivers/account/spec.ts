// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a system user and its primary group (manifests: Account, and each project's user).

export interface AccountSpec {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
}

// Login access (manifest kind Account, host-level only): the keys sshd accepts for the account, one file.
export interface AuthorizedKeysSpec {
  user: string;
  group: string;
  home: string;
  /** HOME/.ssh/authorized_keys. */
  path: string;
  /** OpenSSH public key lines (type, base64, optional comment), in the manifest's order. */
  keys: string[];
}

/** One sudo rule: these commands (absolute paths, or ALL), as that user, with or without the caller's password. */
export interface SudoRule {
  commands: string[];
  runAs: string;
  password: boolean;
}

// The account's sudo rules, in /etc/sudoers.d/hostkit-USER (manifest kind Account, host-level only).
export interface SudoersSpec {
  user: string;
  /** /etc/sudoers.d/hostkit-USER. */
  path: string;
  rules: SudoRule[];
}

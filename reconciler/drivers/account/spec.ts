// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a system user and its primary group (manifests: Account, and each project's user).

export interface AccountSpec {
  user: string;
  group: string;
  home: string;
  shell: string;
  groups: string[];
}

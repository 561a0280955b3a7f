// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a directory with owner, group and mode (modes are numbers, e.g. 0o755).

export interface DirectorySpec {
  path: string;
  owner: string;
  group: string;
  mode: number;
}

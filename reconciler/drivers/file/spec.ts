// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a file with fixed content (modes are numbers, e.g. 0o644).

export interface FileSpec {
  path: string;
  content: string;
  owner: string;
  group: string;
  mode: number;
}

// What manifests expand into for this kind, defaults applied (a plan compares it with the host): kernel parameters in one file of /etc/sysctl.d.
export interface SysctlSpec {
  /** /etc/sysctl.d/FILE. */
  path: string;
  /** Kernel parameter (dotted, as `sysctl` names it) -> value, in the manifest's order. */
  parameters: Record<string, string>;
}

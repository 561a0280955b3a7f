// What manifests expand into for this kind, defaults applied (a plan compares it with the host): the host's one firewall table.

export interface FirewallSpec {
  input: 'drop' | 'accept';
  ssh: false | { port: number; from: string[] };
  openings: { port: number; protocol: 'tcp' | 'udp'; from: string[]; for: string }[];
}

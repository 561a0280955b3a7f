// What a Project with `deploy.strategy: blue-green` expands into, defaults applied (a plan compares it with the host):
// one `deploy/NAME` resource that runs its service as two instances and points nginx at one of them.
import type { UnitSpec } from '../spec.js';

export type Color = 'blue' | 'green';

export interface DeploySpec {
  project: string;
  /** The service as the restart strategy would run it (`hk-NAME.service`); each instance is this with its own port and directory. */
  service: UnitSpec;
  /** blue serves on the declared port, green on the second one. */
  ports: Record<Color, number>;
  /** Where the instances listen (the service's bind, or 127.0.0.1). */
  address: string;
  /** How the idle instance is found healthy on its own port before nginx switches to it. */
  health: { http?: { path: string; expectStatus: number; bodyContains?: string }; timeoutMs: number; retries: number };
  /** How long the old instance keeps running after the switch, for requests still in flight on it. */
  drainMs: number;
  /** The project has a source: each instance runs from its own release directory (/srv/NAME/releases/ID). */
  releases: boolean;
}

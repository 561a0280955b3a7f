// What manifests expand into for this kind, defaults applied (a plan compares it with the host): a systemd service and its timer.
import type { Limits, Restart } from '../../manifests/types.js';

export interface UnitSpec {
  unit: string;
  description: string;
  command: string[];
  user: string;
  group: string;
  workingDirectory?: string;
  environmentFile?: string;
  environment: Record<string, string>;
  restart: Restart;
  type: 'simple' | 'oneshot';
  limits: Limits;
  isolation: { profile: 'none' | 'web-service' | 'strict'; writablePaths: string[]; network: 'any' | 'loopback-only' };
  /** Files the service reads: their content hash is part of the unit, so a change restarts it. */
  reads: string[];
}

export interface TimerSpec {
  unit: string;
  service: string;
  /** One OnCalendar= line each (a cron line restricting both day fields needs two). */
  onCalendar: string[];
  schedule: string;
  persistent: boolean;
}

import { silentLogger } from '../../reconciler/core/log.js';
import { Redactor, SecretResolver } from '../../reconciler/core/secrets.js';
import type { DriverContext } from '../../reconciler/drivers/types.js';
import type { Host } from '../../reconciler/hosts/types.js';

/** A driver context for unit tests: silent logs, secrets from `env` only (and host files). */
export function driverContext(host: Host, options: { env?: NodeJS.ProcessEnv; mode?: 'plan' | 'apply'; redactor?: Redactor } = {}): DriverContext {
  return {
    host,
    hostManifest: { apiVersion: 'hostkit.dev/v1', kind: 'Host', metadata: { name: 'test-1' }, spec: {} },
    stateDirectory: '/var/lib/hostkit',
    mode: options.mode ?? 'apply',
    log: silentLogger(),
    fileDigests: new Map(),
    warnings: [],
    secrets: new SecretResolver({ host, redactor: options.redactor ?? new Redactor(), env: options.env ?? {} }),
  };
}

import { resourceId } from '../../core/resource.js';
import { ENV_DIRECTORY, pgName, stringEnv } from '../../manifests/primitive.js';
import type { ProjectPart } from '../manifest-types.js';
import type { EnvFileSpec } from './spec.js';

// The service's environment, its secrets and the database URL, in
// /etc/hostkit/env/NAME.env: every project but a static site without a service has one.
export const projectEnvFile: ProjectPart = {
  name: 'env file',
  expand(x) {
    const spec = x.project.spec;
    if (spec.runtime === 'static' && spec.service === undefined) return;
    const envFile = `${ENV_DIRECTORY}/${x.name}.env`;
    const environment = stringEnv(spec.service?.environment);
    if (spec.service?.port !== undefined) {
      // blue-green: each instance's unit sets its own PORT (drivers/systemd/deploy), which an env file would override.
      if (spec.deploy?.strategy !== 'blue-green') environment.PORT ??= String(spec.service.port);
      environment.BIND ??= spec.service.bind ?? '127.0.0.1';
    }
    const envSpec: EnvFileSpec = { path: envFile, owner: 'root', group: x.user, mode: 0o640, environment, secrets: { ...(spec.service?.secrets ?? {}) } };
    if (spec.database) {
      const role = spec.database.role ?? pgName(x.name);
      const database = spec.database.name ?? pgName(x.name);
      envSpec.derivedSecrets = {
        [spec.database.urlEnv ?? 'DATABASE_URL']: {
          template: `postgresql://${role}:{secret}@127.0.0.1:${x.host.spec.postgresql?.port ?? 5432}/${database}`,
          secret: spec.database.password,
        },
      };
    }
    x.environmentFile = envFile;
    x.reads.push(envFile);
    x.ids.envFiles.push(
      x.add<EnvFileSpec>('envfile', envFile, envSpec, x.at('/spec/service'), { dependsOn: [x.ids.account, resourceId('directory', ENV_DIRECTORY)] }),
    );
  },
};

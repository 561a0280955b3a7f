// One agent of the simulated fleet, in its own process: the agent exactly as
// `hostkit agent --config FILE` assembles it (git source, report writer,
// rollout gate, notifications, webhook server), on a LocalHost re-rooted into
// ROOT (File manifests only). Prints `HOSTKIT-FLEET-AGENT ready URL` on stdout
// once started; stops on SIGTERM after the run in progress.
// node dist/test/support/fleet-agent.js CONFIG ROOT
import { loadAgentConfig } from '../../reconciler/agent/config.js';
import { assembleAgent } from '../../reconciler/commands/agent.js';
import { createLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { LocalHost } from '../../reconciler/hosts/local.js';

const [configFile, root] = process.argv.slice(2) as [string, string];
const loaded = await loadAgentConfig(configFile);
if (!loaded.ok) {
  process.stderr.write(`invalid configuration: ${JSON.stringify(loaded.diagnostics)}\n`);
  process.exit(2);
}
const redactor = new Redactor();
const log = createLogger({ level: loaded.config.logLevel, redactor, format: 'json' });
const assembled = await assembleAgent(loaded.config, { host: new LocalHost({ root }), log, redactor });
await assembled.start();
process.stdout.write(`HOSTKIT-FLEET-AGENT ready ${assembled.server?.url ?? '-'}\n`);
await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
await assembled.stop();
process.exit(0);

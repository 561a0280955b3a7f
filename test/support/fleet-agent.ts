// Agents of the simulated fleet, in a process of their own: each exactly as
// `hostkit agent --config FILE` assembles it (git source, report writer,
// rollout gate, notifications, webhook server), on a LocalHost re-rooted into
// its ROOT (File manifests only). The test gives each agent its own process;
// the benchmark packs several into one to spare memory. Prints
// `HOSTKIT-FLEET-AGENT ready HOST URL` on stdout for each once started; stops
// on SIGTERM after the runs in progress.
// node dist/test/support/fleet-agent.js CONFIG ROOT [CONFIG ROOT ...]
import { loadAgentConfig } from '../../reconciler/agent/config.js';
import { assembleAgent, type AssembledAgent } from '../../reconciler/commands/agent.js';
import { createLogger } from '../../reconciler/core/log.js';
import { Redactor } from '../../reconciler/core/secrets.js';
import { LocalHost } from '../../reconciler/hosts/local.js';

const args = process.argv.slice(2);
const agents: AssembledAgent[] = [];
for (let i = 0; i + 1 < args.length; i += 2) {
  const [configFile, root] = [args[i]!, args[i + 1]!];
  const loaded = await loadAgentConfig(configFile);
  if (!loaded.ok) {
    process.stderr.write(`invalid configuration ${configFile}: ${JSON.stringify(loaded.diagnostics)}\n`);
    process.exit(2);
  }
  const redactor = new Redactor();
  const log = createLogger({ level: loaded.config.logLevel, redactor, format: 'json' });
  const assembled = await assembleAgent(loaded.config, { host: new LocalHost({ root }), log, redactor });
  await assembled.start();
  agents.push(assembled);
  process.stdout.write(`HOSTKIT-FLEET-AGENT ready ${loaded.config.host} ${assembled.server?.url ?? '-'}\n`);
}
await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
await Promise.all(agents.map((a) => a.stop()));
process.exit(0);

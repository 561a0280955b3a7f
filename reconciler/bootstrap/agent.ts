// Step 4: the packaged agent unit enabled and started (or restarted), and
// followed until this invocation has logged the end of its first run: a
// bootstrap that returns has an agent that fetched the repository and ran.
import { setTimeout as sleep } from 'node:timers/promises';
import { AGENT_UNIT } from '../agent/unit.js';
import { HostKitError } from '../core/errors.js';
import { describeExec, type Host } from '../hosts/types.js';
import { unitState } from './observe.js';

export interface FirstRun {
  invocation: string;
  /** `applied 1a2b3c4 (2 changes)`, `converged at start-up on 1a2b3c4 (no-changes)`. */
  summary: string;
}

interface AgentLine {
  msg?: string;
  commit?: string;
  result?: string;
  changes?: number;
  state?: string;
  err?: string;
}

const POLL_MS = 500;

// The agent's log messages (agent.ts) that end its first run, and what each says.
const FIRST_RUN: Record<string, (l: AgentLine) => string> = {
  reconciled: (l) =>
    l.result === 'applied' || l.result === 'no-changes'
      ? `${l.result} ${short(l.commit)}${l.changes ? ` (${l.changes} change${l.changes === 1 ? '' : 's'})` : ''}`
      : `${l.result} ${short(l.commit)} (the agent runs; its report on the report branch and journalctl -u ${AGENT_UNIT} say why)`,
  'converged at start-up': (l) => `converged at start-up on ${short(l.commit)} (${l.result})`,
  'held by rollout': (l) => `held by the rollout at ${short(l.commit)} (${l.state})`,
  'only report files changed; not reconciling': (l) => `nothing to reconcile at ${short(l.commit)} (only report files changed)`,
};
// The messages that say the first run could not happen.
const FAILED = new Set(['fetch failed', 'run failed']);

function short(commit: string | undefined): string {
  return (commit ?? '?').slice(0, 7);
}

/** The JSON lines one invocation of the unit logged (journald tags each with the invocation). */
async function invocationLog(host: Host, invocation: string): Promise<AgentLine[]> {
  const r = await host.exec('journalctl', [`_SYSTEMD_INVOCATION_ID=${invocation}`, '-o', 'cat', '--no-pager'], { timeoutMs: 30_000 });
  const lines: AgentLine[] = [];
  for (const text of r.stdout.split('\n')) {
    if (!text.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(text) as AgentLine);
    } catch {
      // a line cut by the journal's size limit: not one of the messages looked for
    }
  }
  return lines;
}

/** The unit's last journal lines (systemd's own included), for a failure's message. */
async function journalTail(host: Host, scrub: (text: string) => string): Promise<string> {
  const r = await host.exec('journalctl', ['-u', AGENT_UNIT, '-n', '20', '-o', 'short-iso', '--no-pager'], { timeoutMs: 30_000 }).catch(() => undefined);
  return scrub(r?.stdout.trim() || '(no journal lines)');
}

function agentFailed(host: Host, why: string, journal: string): HostKitError {
  return new HostKitError('BOOTSTRAP_AGENT_FAILED', `${AGENT_UNIT} on ${host.name} ${why.replace(/\.+$/, '')}. Its last journal lines:\n${journal}`, {
    data: { host: host.name },
  });
}

/**
 * Enables and starts (or restarts) the unit, then waits for the end of its
 * first run. On failure (the unit failed or restarted, the run could not
 * fetch, no run within `agentTimeoutMs`) throws BOOTSTRAP_AGENT_FAILED with
 * the unit's last journal lines; the unit is left as systemd has it (enabled,
 * and restarting itself on failure), so fixing the cause and running bootstrap
 * again is enough.
 */
export async function startAgent(
  host: Host,
  what: { enable: boolean; action: 'start' | 'restart' | 'none' },
  o: { agentTimeoutMs: number; scrub: (text: string) => string },
): Promise<FirstRun> {
  const systemctl = async (args: string[]) => {
    const r = await host.exec('systemctl', args, { timeoutMs: 360_000 });
    if (r.exitCode !== 0) throw agentFailed(host, `could not be ${args[0]}ed (${describeExec('systemctl', args, r)})`, await journalTail(host, o.scrub));
  };
  if (what.enable) await systemctl(['enable', AGENT_UNIT]);
  if (what.action !== 'none') await systemctl([what.action, AGENT_UNIT]);
  const started = await unitState(host);
  const deadline = Date.now() + o.agentTimeoutMs;
  for (;;) {
    const log = await invocationLog(host, started.invocation);
    const failed = log.find((l) => l.msg !== undefined && FAILED.has(l.msg));
    if (failed) throw agentFailed(host, `could not run: ${failed.msg}: ${o.scrub(failed.err ?? '')}`, await journalTail(host, o.scrub));
    const done = log.find((l) => l.msg !== undefined && l.msg in FIRST_RUN);
    if (done) return { invocation: started.invocation, summary: FIRST_RUN[done.msg!]!(done) };
    const now = await unitState(host);
    if (now.activeState !== 'active' || now.invocation !== started.invocation || now.restarts > started.restarts) {
      throw agentFailed(host, `stopped before its first run ended (now ${now.activeState}, ${now.restarts} restarts)`, await journalTail(host, o.scrub));
    }
    if (Date.now() > deadline) throw agentFailed(host, `logged no first run within ${Math.round(o.agentTimeoutMs / 1000)} s`, await journalTail(host, o.scrub));
    await sleep(POLL_MS);
  }
}

import type { ExecCall, FakeHost } from '../../reconciler/hosts/fake.js';
import { BOOT_LINK, BOOT_UNIT_PATH } from '../../reconciler/drivers/nftables/boot.js';
import type { Statement, Table } from '../../reconciler/drivers/nftables/model.js';
import { REPLACE_HEADER, renderTable } from '../../reconciler/drivers/nftables/render.js';

// nft -j output for a table, in the shape nft 1.0.6 prints (see parse.spec.ts for real samples).
export function toNftJson(table: Table): unknown {
  const match = (left: unknown, right: unknown, op = '==') => ({ match: { op, left, right } });
  const expr = (s: Statement): unknown => {
    switch (s.kind) {
      case 'ct-state':
        return match({ ct: { key: 'state' } }, s.states.length === 1 ? s.states[0] : s.states, 'in');
      case 'iif':
        return match({ meta: { key: 'iif' } }, s.name);
      case 'saddr': {
        const [addr, len] = s.network.split('/');
        return match({ payload: { protocol: s.family, field: 'saddr' } }, len === undefined ? addr : { prefix: { addr, len: Number(len) } });
      }
      case 'dport':
        return match({ payload: { protocol: s.protocol, field: 'dport' } }, s.port);
      case 'icmp-type':
        return match({ payload: { protocol: s.protocol, field: 'type' } }, { set: s.types });
      case 'verdict':
        return { [s.verdict]: null };
      case 'other':
        return JSON.parse(s.json) as unknown;
    }
  };
  let handle = 1;
  const items: unknown[] = [{ metainfo: { version: '1.0.6', json_schema_version: 1 } }, { table: { family: 'inet', name: 'hostkit', handle: 9 } }];
  for (const chain of table.chains) {
    const base = chain.base ? { type: chain.base.type, hook: chain.base.hook, prio: chain.base.priority, policy: chain.base.policy } : {};
    items.push({ chain: { family: 'inet', table: 'hostkit', name: chain.name, handle: handle++, ...base } });
    for (const rule of chain.rules) {
      items.push({
        rule: {
          family: 'inet',
          table: 'hostkit',
          chain: chain.name,
          handle: handle++,
          ...(rule.comment ? { comment: rule.comment } : {}),
          expr: rule.statements.map(expr),
        },
      });
    }
  }
  return { nftables: items };
}

/**
 * nft and the revert timer, simulated: a live table (or none), nft -f / -c on
 * transactions this driver renders (known tables) or restores, anything else a
 * syntax error; systemd-run arms a timer that fire() runs.
 */
export class FakeFirewall {
  live: Table | undefined;
  armed: { file: string; onActive: string } | undefined;
  failLoad = false;
  readonly host: FakeHost;
  private readonly known = new Map<string, Table>();

  constructor(host: FakeHost, live?: Table) {
    this.host = host;
    this.live = live;
    if (live) this.know(live);
    host.onExec((call) => this.exec(call));
  }

  know(table: Table): void {
    this.known.set(renderTable(table), table);
  }

  // The table a transaction leaves, or an nft-style error.
  private interpret(text: string): { table: Table | undefined } | { error: string } {
    const body = text
      .split('\n')
      .filter((l) => !l.startsWith('#'))
      .join('\n');
    if (!body.startsWith(REPLACE_HEADER)) return { error: '/dev/stdin:1:1-5: Error: syntax error, unexpected junk' };
    const rest = body.slice(REPLACE_HEADER.length);
    if (rest === '') return { table: undefined };
    const table = this.known.get(rest);
    return table ? { table } : { error: '/dev/stdin:16:13-17: Error: Service out of range' };
  }

  fire(): void {
    const armed = this.armed!;
    this.armed = undefined;
    const result = this.interpret(this.host.text(armed.file)!);
    if ('table' in result) this.live = result.table;
  }

  private exec(call: ExecCall) {
    const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' });
    const fail = (stderr: string, exitCode = 1) => ({ exitCode, stdout: '', stderr });
    const args = call.args.join(' ');
    if (call.file === 'nft') {
      if (args === '-j list table inet hostkit')
        return this.live ? ok(JSON.stringify(toNftJson(this.live))) : fail('Error: No such file or directory\nlist table inet hostkit');
      if (args === 'list table inet hostkit') return this.live ? ok(renderTable(this.live)) : fail('Error: No such file or directory\nlist table inet hostkit');
      const [flag, f, file] = call.args[0] === '-c' ? ['-c', call.args[1], call.args[2]] : ['', call.args[0], call.args[1]];
      if (f !== '-f' || file === undefined) return fail(`unexpected nft ${args}`);
      const result = this.interpret(file === '-' ? (call.input ?? '') : (this.host.text(file) ?? ''));
      if ('error' in result) return fail(result.error);
      if (flag === '-c') return ok();
      if (this.failLoad) return fail('Error: Could not process rule: No buffer space available');
      this.live = result.table;
      return ok();
    }
    if (call.file === 'systemctl' && call.args[0] === 'is-active') return this.armed ? ok('active\n') : { exitCode: 3, stdout: 'inactive\n', stderr: '' };
    // enable/disable make and remove the .wants/ link (a file here: the fake has no symlinks).
    if (call.file === 'systemctl' && call.args[0] === 'enable') {
      if (this.host.text(BOOT_UNIT_PATH) === undefined) return fail('Failed to enable unit: Unit file hostkit-firewall.service does not exist.');
      this.host.seedFile(BOOT_LINK, '');
      return ok();
    }
    if (call.file === 'systemctl' && call.args[0] === 'disable') {
      void this.host.remove(BOOT_LINK);
      return ok();
    }
    if (call.file === 'systemctl' && call.args[0] === 'stop') {
      const was = this.armed;
      this.armed = undefined;
      return was ? ok() : fail('Failed to stop hostkit-nft-revert.timer: Unit hostkit-nft-revert.timer not loaded.', 5);
    }
    if (call.file === 'systemd-run') {
      if (this.armed) return fail('Failed to start transient timer unit: Unit hostkit-nft-revert.timer was already loaded or has a fragment file.');
      const onActive = call.args.find((a) => a.startsWith('--on-active='))!.slice('--on-active='.length);
      this.armed = { file: call.args[call.args.length - 1]!, onActive };
      return ok();
    }
    return undefined;
  }
}

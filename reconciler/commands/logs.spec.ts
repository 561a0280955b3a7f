import { describe, expect, it } from 'vitest';
import { declaredOn } from '../../test/support/operate.js';
import { FakeHost } from '../hosts/fake.js';
import {
  afterCursorArgs,
  belongs,
  journalArgs,
  lifecycleUnitsIn,
  parseEntries,
  parseLines,
  pollLogs,
  readLogs,
  renderLogLine,
  selectUnits,
  toLogLine,
  type LogSelection,
} from './logs.js';
import { unitChoices } from './operate.js';

async function shopChoices() {
  const { manifests, resources } = await declaredOn();
  return unitChoices(manifests, resources, 'shop');
}

const worker: LogSelection = { project: 'shop', units: ['hk-shop-mailer.service'], lifecycle: false };
const lifecycle: LogSelection = { project: 'shop', units: [], lifecycle: true };
const LIFECYCLE_UNIT = 'hostkit-command-shop-0123456789.service';

describe('reconciler/commands/logs', () => {
  describe('selectUnits: --unit against what the project declares', () => {
    it.each([
      [
        undefined,
        ['hk-shop.service', 'hk-shop-mailer.service', 'hk-shop-cleanup.timer', 'hk-shop-cleanup.service', 'hk-shop-export.service', 'hk-shop-export.timer'],
        true,
      ],
      ['service', ['hk-shop.service'], false],
      ['worker/mailer', ['hk-shop-mailer.service'], false],
      ['timer/cleanup', ['hk-shop-cleanup.timer', 'hk-shop-cleanup.service'], false],
      ['unit/shop-export', ['hk-shop-export.service', 'hk-shop-export.timer'], false],
      ['lifecycle', [], true],
    ])('--unit %s', async (unit, units, withLifecycle) => {
      expect(selectUnits('shop', await shopChoices(), unit)).toEqual({ project: 'shop', units, lifecycle: withLifecycle });
    });

    it.each(['worker/nope', 'timer/mailer', 'mailer', 'hk-shop.service', 'worker/'])('--unit %s is refused, listing the valid choices', async (unit) => {
      expect(() => selectUnits('shop', [], unit)).toThrow(/declares no service, worker, timer or lifecycle command/);
      const choices = await shopChoices();
      expect(() => selectUnits('shop', choices, unit)).toThrow(
        `Project shop declares no ${JSON.stringify(unit)}; --unit takes one of: service, worker/mailer, timer/cleanup, unit/shop-export, lifecycle`,
      );
    });
  });

  it.each([
    [undefined, 100],
    ['0', 0],
    ['5', 5],
  ])('-n %s is %d lines', (text, lines) => {
    expect(parseLines(text)).toBe(lines);
  });

  it.each(['-1', '5x', '', '1e3', 'all'])('-n %j is refused', (text) => {
    expect(() => parseLines(text)).toThrow(/-n expects a whole number of lines/);
  });

  describe('journalArgs: one argument each, the units and systemd lines about them', () => {
    it("a worker's lines, and systemd's about it", () => {
      expect(journalArgs(worker, [], { lines: 5 })).toEqual([
        '--no-pager',
        '--output=json',
        '--output-fields=MESSAGE,PRIORITY,_PID,_SYSTEMD_UNIT,UNIT',
        '--lines=5',
        '--',
        '_SYSTEMD_UNIT=hk-shop-mailer.service',
        '+',
        '_PID=1',
        'UNIT=hk-shop-mailer.service',
      ]);
    });

    it('a --since with spaces stays one argument; following adds --follow', () => {
      const args = journalArgs(worker, [], { lines: 10, since: '1 hour ago; rm -rf /', follow: true })!;
      expect(args).toContain('--since=1 hour ago; rm -rf /');
      expect(args.indexOf('--follow')).toBeLessThan(args.indexOf('--'));
    });

    it('lifecycle: the transient units found in the journal; none found yet means nothing to read', () => {
      expect(journalArgs(lifecycle, [], { lines: 10 })).toBeUndefined();
      expect(journalArgs(lifecycle, [LIFECYCLE_UNIT], { lines: 10 })?.slice(-5)).toEqual([
        '--',
        `_SYSTEMD_UNIT=${LIFECYCLE_UNIT}`,
        '+',
        '_PID=1',
        `UNIT=${LIFECYCLE_UNIT}`,
      ]);
    });

    it('following with lifecycle commands: all of systemd lines after a cursor (a new lifecycle unit may start)', () => {
      expect(journalArgs(lifecycle, [], { lines: 'all', follow: true, allOfSystemd: true, afterCursor: 's=abc;i=1' })).toEqual([
        '--no-pager',
        '--output=json',
        '--output-fields=MESSAGE,PRIORITY,_PID,_SYSTEMD_UNIT,UNIT',
        '--lines=all',
        '--after-cursor=s=abc;i=1',
        '--follow',
        '--',
        '_PID=1',
      ]);
    });
  });

  describe('belongs: by the fields journald sets, never by what a process writes', () => {
    it.each([
      ["the worker's own line", { _SYSTEMD_UNIT: 'hk-shop-mailer.service', _PID: '42', MESSAGE: 'sent' }, worker, true],
      ['systemd about the worker', { _SYSTEMD_UNIT: 'init.scope', _PID: '1', UNIT: 'hk-shop-mailer.service', MESSAGE: 'Started' }, worker, true],
      ['another unit', { _SYSTEMD_UNIT: 'hk-shop.service', _PID: '42' }, worker, false],
      ['another unit claiming UNIT= (not PID 1)', { _SYSTEMD_UNIT: 'hk-blog.service', _PID: '42', UNIT: 'hk-shop-mailer.service' }, worker, false],
      ['systemd about another unit', { _PID: '1', UNIT: 'hk-shop.service' }, worker, false],
      ['systemd about a lifecycle unit of shop', { _PID: '1', UNIT: LIFECYCLE_UNIT }, lifecycle, true],
      ["a lifecycle unit's own line", { _SYSTEMD_UNIT: LIFECYCLE_UNIT, _PID: '7' }, lifecycle, true],
      ['a lifecycle unit of project shop-api', { _PID: '1', UNIT: 'hostkit-command-shop-api-0123456789.service' }, lifecycle, false],
      ['a health command (no project)', { _PID: '1', UNIT: 'hostkit-command-0123456789.service' }, lifecycle, false],
      ['a lifecycle unit when only the worker is asked', { _PID: '1', UNIT: LIFECYCLE_UNIT }, worker, false],
      ['two UNIT= values', { _PID: '1', UNIT: ['hk-shop-mailer.service', 'hk-other.service'] }, worker, false],
    ])('%s', (_, entry, selection, expected) => {
      expect(belongs(entry, selection)).toBe(expected);
    });
  });

  it('a line: time, unit, who wrote it; control characters cannot reach the terminal', () => {
    const line = toLogLine({
      __REALTIME_TIMESTAMP: '1795000000123456',
      _SYSTEMD_UNIT: 'hk-shop-mailer.service',
      _PID: '42',
      PRIORITY: '6',
      MESSAGE: 'sent \u001b[31mred\u001b[0m',
    });
    expect(line).toEqual({ time: '2026-11-18T11:06:40.123Z', unit: 'hk-shop-mailer.service', pid: 42, priority: 6, message: 'sent \u001b[31mred\u001b[0m' });
    expect(renderLogLine(line)).toBe('2026-11-18T11:06:40.123Z hk-shop-mailer.service: sent \\x1b[31mred\\x1b[0m');
    // systemd's own line about a unit; a message journald keeps as bytes.
    const about = toLogLine({ __REALTIME_TIMESTAMP: '1795000000000000', _PID: '1', UNIT: 'hk-shop.service', MESSAGE: [104, 105] });
    expect(renderLogLine(about)).toBe('2026-11-18T11:06:40.000Z hk-shop.service (systemd): hi');
  });

  it("parses journalctl's output: the selection's lines, and where the output ended (the last entry's cursor, kept or not)", () => {
    const entry = (cursor: string, fields: Record<string, unknown>) =>
      JSON.stringify({ __CURSOR: cursor, __REALTIME_TIMESTAMP: '1795000000000000', ...fields });
    const out = [
      entry('c1', { _SYSTEMD_UNIT: 'hk-shop-mailer.service', _PID: '42', MESSAGE: 'one' }),
      'not json',
      entry('c2', { _SYSTEMD_UNIT: 'hk-other.service', _PID: '43', MESSAGE: 'foreign' }),
      '',
    ];
    const parsed = parseEntries(out, worker);
    expect(parsed.lines.map((l) => l.message)).toEqual(['one']);
    expect(parsed.cursor).toBe('c2');
    expect(parseEntries([], worker)).toEqual({ lines: [] });
  });

  it('reads through the host: journalctl with an argument array; lifecycle units found by their name', async () => {
    const host = new FakeHost();
    host.onExec((c) =>
      c.file === 'journalctl' && c.args.includes('--field=UNIT')
        ? {
            exitCode: 0,
            stdout: ['hk-shop.service', 'hostkit-command-shop-api-0123456789.service', LIFECYCLE_UNIT, 'hostkit-command-0123456789.service'].join('\n'),
            stderr: '',
          }
        : undefined,
    );
    expect(await lifecycleUnitsIn(host, 'shop')).toEqual([LIFECYCLE_UNIT]);
    host.onExec((c) =>
      c.file === 'journalctl' && c.args.includes('--since=yesterday-ish') ? { exitCode: 1, stdout: '', stderr: 'Failed to parse timestamp' } : undefined,
    );
    await expect(readLogs(host, ['--since=yesterday-ish'])).rejects.toMatchObject({
      code: 'JOURNAL_READ_FAILED',
      message: expect.stringContaining('Failed to parse timestamp'),
    });
  });

  describe('pollLogs: a follow over SSH, where commands do not stream', () => {
    const entry = (cursor: string, message: string) =>
      JSON.stringify({ __CURSOR: cursor, __REALTIME_TIMESTAMP: '1795000000000000', _SYSTEMD_UNIT: 'hk-shop-mailer.service', _PID: '42', MESSAGE: message });
    const args = journalArgs(worker, [], { lines: 2, follow: true })!;

    it('the entries after a cursor: all of them, after it, never --follow', () => {
      expect(afterCursorArgs(args, 'c9')).toEqual([
        '--no-pager',
        '--output=json',
        '--output-fields=MESSAGE,PRIORITY,_PID,_SYSTEMD_UNIT,UNIT',
        '--lines=all',
        '--after-cursor=c9',
        '--',
        '_SYSTEMD_UNIT=hk-shop-mailer.service',
        '+',
        '_PID=1',
        'UNIT=hk-shop-mailer.service',
      ]);
      expect(afterCursorArgs(afterCursorArgs(args, 'c9'), 'c10').filter((a) => a.startsWith('--after-cursor='))).toEqual(['--after-cursor=c10']);
    });

    it('prints the tail, then only what came after, round after round, until stopped', async () => {
      const host = new FakeHost();
      const journal = [entry('c1', 'one'), entry('c2', 'two'), entry('c3', 'three')];
      host.onExec((c) => {
        if (c.file !== 'journalctl') return undefined;
        const after = c.args.find((a) => a.startsWith('--after-cursor='))?.slice('--after-cursor='.length);
        const lines = c.args.find((a) => a.startsWith('--lines='))!.slice('--lines='.length);
        const from = after ? journal.findIndex((e) => e.includes(`"${after}"`)) + 1 : lines === 'all' ? 0 : journal.length - Number(lines);
        return { exitCode: 0, stdout: journal.slice(from).join('\n') + '\n', stderr: '' };
      });
      const stop = new AbortController();
      const printed: string[] = [];
      const done = pollLogs(host, args, (text) => printed.push(...parseEntries([text], worker).lines.map((l) => l.message)), {
        intervalMs: 5,
        signal: stop.signal,
      });
      await new Promise((resolve) => setTimeout(resolve, 30));
      journal.push(entry('c4', 'four'));
      await new Promise((resolve) => setTimeout(resolve, 30));
      stop.abort();
      expect(await done).toBe(0);
      expect(printed).toEqual(['two', 'three', 'four']);
      const calls = host.calls.filter((c) => c.file === 'journalctl');
      expect(calls.length).toBeGreaterThan(2);
      expect(calls.every((c) => !c.args.includes('--follow'))).toBe(true);
    });
  });
});

import { describe, expect, it } from 'vitest';
import type { ApplyEvent } from '../../apply/progress.js';
import { createProgress, REDRAW_MS, type ProgressClock } from './progress.js';
import { COLOR, PLAIN } from './style.js';

// A clock the test moves by hand: `advance` fires the registered ticks as a timer would.
function fakeClock(): ProgressClock & { advance(ms: number, every?: number): void; running(): number } {
  let now = 0;
  const ticks = new Set<() => void>();
  return {
    now: () => now,
    every(_ms, tick) {
      ticks.add(tick);
      return () => void ticks.delete(tick);
    },
    advance(ms, every = 10) {
      for (let t = 0; t < ms; t += every) {
        now += every;
        for (const tick of [...ticks]) tick();
      }
    },
    running: () => ticks.size,
  };
}

function fakeStream(columns?: number) {
  const chunks: string[] = [];
  return { chunks, text: () => chunks.join(''), write: (s: string) => void chunks.push(s), ...(columns ? { columns } : {}) };
}

// What an apply that fails at its second change and rolls the first back reports.
const FAILED_RUN: ApplyEvent[] = [
  { type: 'step-start', at: 0, id: 'file/srv/app/app.conf', action: 'update' },
  { type: 'step-end', at: 0, id: 'file/srv/app/app.conf', action: 'update', ok: true, ms: 12 },
  { type: 'step-start', at: 0, id: 'unit/app.service', action: 'create' },
  { type: 'step-end', at: 0, id: 'unit/app.service', action: 'create', ok: true, ms: 40 },
  { type: 'step-start', at: 0, id: 'unit', action: 'settle' },
  { type: 'step-end', at: 0, id: 'unit', action: 'settle', ok: false, ms: 2_345 },
  { type: 'rollback-start', at: 0, failed: 'unit/app.service', changes: 2 },
  { type: 'step-start', at: 0, id: 'unit/app.service', action: 'create', rollback: true },
  { type: 'step-end', at: 0, id: 'unit/app.service', action: 'create', rollback: true, ok: true, ms: 5 },
  { type: 'step-start', at: 0, id: 'file/srv/app/app.conf', action: 'update', rollback: true },
  { type: 'step-end', at: 0, id: 'file/srv/app/app.conf', action: 'update', rollback: true, ok: true, ms: 1 },
  { type: 'step-start', at: 0, id: 'unit', action: 'settle', rollback: true },
  { type: 'step-end', at: 0, id: 'unit', action: 'settle', rollback: true, ok: true, ms: 310 },
  { type: 'rollback-end', at: 0, ok: true, ms: 320 },
];

const ESC = '\u001b';

describe('reconciler/diff/render/progress', () => {
  it('plain: a line as each step starts and one as it ends, the rollback marked, no carriage return and no escape code', () => {
    const out = fakeStream();
    const progress = createProgress(out, { live: false, style: PLAIN, clock: fakeClock() });
    for (const e of FAILED_RUN) progress.event(e);
    progress.close();
    expect(out.text()).toBe(
      [
        'start  update   file/srv/app/app.conf',
        'done   update   file/srv/app/app.conf (0.0s)',
        'start  create   unit/app.service',
        'done   create   unit/app.service (0.0s)',
        'start  settle   unit',
        'failed settle   unit (2.3s)',
        'rolling back: unit/app.service failed; undoing 2 change(s), newest first',
        'start  rollback create   unit/app.service',
        'done   rollback create   unit/app.service (0.0s)',
        'start  rollback update   file/srv/app/app.conf',
        'done   rollback update   file/srv/app/app.conf (0.0s)',
        'start  rollback settle   unit',
        'done   rollback settle   unit (0.3s)',
        'rolled back in 0.3s',
        '',
      ].join('\n'),
    );
    expect(out.text()).not.toContain('\r');
    expect(out.text()).not.toContain(ESC);
  });

  it('plain with colour: the result and the rollback are coloured, the lines otherwise the same', () => {
    const out = fakeStream();
    const progress = createProgress(out, { live: false, style: COLOR });
    for (const e of FAILED_RUN) progress.event(e);
    const lines = out.text().split('\n');
    expect(lines[1]).toBe(`${COLOR.green('done  ')} update   file/srv/app/app.conf (0.0s)`);
    expect(lines[5]).toBe(`${COLOR.red('failed')} settle   unit (2.3s)`);
    expect(lines[6]).toBe(COLOR.yellow('rolling back: unit/app.service failed; undoing 2 change(s), newest first'));
    expect(lines[7]).toBe(`start  ${COLOR.yellow('rollback ')}create   unit/app.service`);
  });

  it('live: the start line is drawn, redrawn in place with the seconds so far at most 10 times a second, then replaced by the end line', () => {
    const out = fakeStream(80);
    const clock = fakeClock();
    const progress = createProgress(out, { live: true, style: PLAIN, clock });
    progress.event({ type: 'step-start', at: 0, id: 'certificate', action: 'settle' });
    expect(out.chunks).toEqual(['⠋ settle   certificate']);

    clock.advance(2_500); // a tick every 10 ms
    const redraws = out.chunks.slice(1);
    expect(redraws.length).toBeGreaterThan(2);
    expect(redraws.length).toBeLessThanOrEqual(2_500 / REDRAW_MS);
    for (const r of redraws) expect(r).toMatch(/^\r[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] settle {3}certificate( \ds)?$/);
    expect(redraws.at(-1)).toMatch(/ 2s$/);
    expect(redraws.some((r) => r.endsWith(' 1s'))).toBe(true);
    expect(redraws.some((r) => r.endsWith('certificate'))).toBe(true); // no seconds in the first second

    progress.event({ type: 'step-end', at: 0, id: 'certificate', action: 'settle', ok: true, ms: 2_512 });
    expect(out.chunks.at(-1)).toBe('\r✓ settle   certificate (2.5s)\n');
    expect(clock.running()).toBe(0); // no redraw after its end
    expect(out.text()).not.toContain(ESC);
  });

  it('live: a shorter redraw is padded over the longer one, a failed step and the rollback are marked, and a long id is cut to the width', () => {
    const out = fakeStream(40);
    const clock = fakeClock();
    const progress = createProgress(out, { live: true, style: PLAIN, clock });
    progress.event({ type: 'step-start', at: 0, id: 'command/migrate-app-database-schema', action: 'create' });
    expect(out.chunks[0]).toBe('⠋ create   command/migrate-app-databas…');
    expect(out.chunks[0]).toHaveLength(39);
    progress.event({ type: 'step-end', at: 0, id: 'command/migrate-app-database-schema', action: 'create', ok: false, ms: 900 });
    expect(out.chunks[1]).toBe('\r✗ create   command/migrate-app-databas…\n');
    progress.event({ type: 'rollback-start', at: 0, failed: 'command/migrate', changes: 1 });
    expect(out.chunks[2]).toBe('↩ rolling back: command/migrate failed…\n');
    progress.event({ type: 'step-start', at: 0, id: 'file/a', action: 'create', rollback: true });
    progress.event({ type: 'step-end', at: 0, id: 'file/a', action: 'create', rollback: true, ok: true, ms: 0 });
    expect(out.chunks.slice(3)).toEqual(['⠋ rollback create   file/a', '\r✓ rollback create   file/a (0.0s)\n']);
  });

  it('live: a log line written meanwhile stands on its own line; the step is drawn again below it', () => {
    const out = fakeStream(80);
    const clock = fakeClock();
    const progress = createProgress(out, { live: true, style: PLAIN, clock });
    progress.event({ type: 'step-start', at: 0, id: 'unit/app.service', action: 'update' });
    progress.interrupt();
    expect(out.chunks.at(-1)).toBe(`\r${' '.repeat('⠋ update   unit/app.service'.length)}\r`);
    out.write('{"level":40,"msg":"a warning"}\n');
    clock.advance(10);
    expect(out.chunks.at(-1)).toBe('\r⠋ update   unit/app.service'); // drawn again at once, not a redraw later
    progress.close();
    expect(out.chunks.at(-1)).toBe('\n');
    expect(clock.running()).toBe(0);
  });

  it('live with colour: the marks are coloured', () => {
    const out = fakeStream(80);
    const progress = createProgress(out, { live: true, style: COLOR, clock: fakeClock() });
    progress.event({ type: 'step-start', at: 0, id: 'file/a', action: 'create' });
    progress.event({ type: 'step-end', at: 0, id: 'file/a', action: 'create', ok: true, ms: 3 });
    expect(out.chunks.at(-1)).toBe(`\r${COLOR.green('✓')} create   file/a (0.0s)\n`);
  });

  it('every line passes the scrubber', () => {
    const out = fakeStream();
    const progress = createProgress(out, { live: false, style: PLAIN, scrub: (s) => s.replace('hunter2', '(redacted)') });
    progress.event({ type: 'step-start', at: 0, id: 'file/hunter2', action: 'create' });
    expect(out.text()).toBe('start  create   file/(redacted)\n');
  });
});

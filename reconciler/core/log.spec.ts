import { describe, expect, it } from 'vitest';
import { logFormat, textLine } from './log.js';

describe('reconciler/core/log', () => {
  it('renders a JSON event as one readable line, fields quoted only where needed', () => {
    const json = JSON.stringify({ level: 50, time: 1, resource: 'health/shop', error: 'GET / answered 404', msg: 'apply failed; rolling back' });
    expect(textLine(json + '\n')).toBe('hostkit: error: apply failed; rolling back (resource=health/shop error="GET / answered 404")\n');
    expect(textLine(JSON.stringify({ level: 40, time: 1, msg: 'waiting' }))).toBe('hostkit: warning: waiting\n');
    expect(textLine(JSON.stringify({ level: 30, time: 1, msg: 'x', n: 3, ids: ['a', 'b'] }))).toBe('hostkit: info: x (n=3 ids="[\\"a\\",\\"b\\"]")\n');
  });

  it('passes anything that is not a JSON event through as it is', () => {
    expect(textLine('not json\n')).toBe('not json\n');
  });

  it('is text on a terminal, JSON elsewhere, and HOSTKIT_LOG_FORMAT decides over both', () => {
    expect(logFormat(2, {}, true)).toBe('text');
    expect(logFormat(2, {}, false)).toBe('json');
    expect(logFormat(2, { HOSTKIT_LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormat(2, { HOSTKIT_LOG_FORMAT: 'text' }, false)).toBe('text');
    expect(logFormat(2, { HOSTKIT_LOG_FORMAT: 'xml' }, false)).toBe('json');
  });
});

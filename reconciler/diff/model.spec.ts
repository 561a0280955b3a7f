import { describe, expect, it } from 'vitest';
import { error } from '../core/diagnostics.js';
import type { Resource } from '../core/resource.js';
import { changeBase, checkOps, findOp, hasOp, refusedChange, type Change } from './model.js';

type Op = { op: 'write' } | { op: 'remove-drop-ins'; dropIns: string[] } | { op: 'restart' };

const resource: Resource<{ path: string }> = {
  id: 'file/srv/a',
  kind: 'file',
  name: '/srv/a',
  spec: { path: '/srv/a' },
  dependsOn: [],
  origin: { file: 'a.yaml' },
};

function change(action: Change['action'], ops: Op[]): Change<unknown, unknown, unknown, Op> {
  return { ...changeBase(resource), action, fields: [], ops, disruptive: false };
}

describe('reconciler/diff/model', () => {
  it('hasOp and findOp read the operations, findOp with their data', () => {
    const c = change('update', [{ op: 'write' }, { op: 'remove-drop-ins', dropIns: ['override.conf'] }]);
    expect(hasOp(c, 'write')).toBe(true);
    expect(hasOp(c, 'restart')).toBe(false);
    expect(findOp(c, 'remove-drop-ins')?.dropIns).toEqual(['override.conf']);
    expect(findOp(c, 'restart')).toBeUndefined();
  });

  it('checkOps: a pending change carries operations, a noop or unsupported one none; anything else is a driver bug', () => {
    for (const action of ['create', 'update', 'delete'] as const) expect(checkOps(change(action, [{ op: 'write' }])).action).toBe(action);
    for (const action of ['noop', 'unsupported'] as const) expect(checkOps(change(action, [])).action).toBe(action);
    expect(() => checkOps(change('update', []))).toThrow('the file driver planned update of file/srv/a with 0 operation(s)');
    expect(() => checkOps(change('noop', [{ op: 'restart' }]))).toThrow('the file driver planned noop of file/srv/a with 1 operation(s)');
  });

  it('refusedChange: a noop with no fields and no operations, its error or its reason saying why', () => {
    const refusal = error('path is not a file', '/srv/a exists on the host as a directory', resource.origin);
    const refused = refusedChange({ ...changeBase(resource), disruptive: true }, refusal, { path: '/srv/a' }, { type: 'directory' });
    expect(refused).toMatchObject({ action: 'noop', fields: [], ops: [], disruptive: false, diagnostics: [refusal] });
    expect(refused.desired).toEqual({ path: '/srv/a' });
    expect(refused.observed).toEqual({ type: 'directory' });
    const byReason = refusedChange(changeBase(resource), { reason: 'not rendered (see the error)' });
    expect(byReason).toMatchObject({ action: 'noop', ops: [], reason: 'not rendered (see the error)', diagnostics: [] });
    expect('desired' in byReason || 'observed' in byReason).toBe(false);
    expect(checkOps(refused)).toBe(refused);
  });
});

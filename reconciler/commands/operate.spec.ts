import { describe, expect, it } from 'vitest';
import { declaredOn } from '../../test/support/operate.js';
import { HostKitError } from '../core/errors.js';
import { projectsOn, requireProject, unitChoices } from './operate.js';

describe('reconciler/commands/operate', () => {
  it('unit choices come from the expanded manifests: service, each worker, each timer (both units), Unit primitives, lifecycle', async () => {
    const { manifests, resources } = await declaredOn();
    expect(unitChoices(manifests, resources, 'shop')).toEqual([
      { choice: 'service', role: 'service', units: ['hk-shop.service'] },
      { choice: 'worker/mailer', role: 'worker', units: ['hk-shop-mailer.service'] },
      { choice: 'timer/cleanup', role: 'timer', units: ['hk-shop-cleanup.timer', 'hk-shop-cleanup.service'] },
      { choice: 'unit/shop-export', role: 'unit', units: ['hk-shop-export.service', 'hk-shop-export.timer'] },
      { choice: 'lifecycle', role: 'lifecycle', units: [] },
    ]);
    // A static site runs nothing; a project placed elsewhere is not on this host.
    expect(unitChoices(manifests, resources, 'blog')).toEqual([]);
    expect(projectsOn(resources)).toEqual(['bad', 'blog', 'shop']);
  });

  it('an unknown project is refused, naming the projects on the host', () => {
    expect(() => requireProject('shop', ['blog', 'shop'], 'h')).not.toThrow();
    const refused = (() => {
      try {
        requireProject('elsewhere', ['blog', 'shop'], 'h');
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(refused).toBeInstanceOf(HostKitError);
    expect(refused).toMatchObject({ code: 'UNKNOWN_PROJECT', message: 'No project "elsewhere" is placed on host h; projects there: blog, shop' });
  });
});

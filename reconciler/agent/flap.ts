/**
 * Healing back-off for resources that keep drifting: something on the host
 * (a person, a package script, a cron job) keeps changing them. The first heal
 * is immediate; each further heal within `windowMs` of the previous one waits
 * twice as long as the last (from `baseMs` up to `maxMs`), so the agent
 * reports the fight instead of restarting a service in a loop.
 */
export class FlapGuard {
  private readonly state = new Map<string, { count: number; lastHeal: number; until: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly windowMs: number;

  constructor(options: { baseMs?: number; maxMs?: number; windowMs?: number } = {}) {
    this.baseMs = options.baseMs ?? 5 * 60_000;
    this.maxMs = options.maxMs ?? 6 * 3_600_000;
    this.windowMs = options.windowMs ?? 3_600_000;
  }

  allowed(id: string, now: number): boolean {
    const s = this.state.get(id);
    return !s || now >= s.until;
  }

  healed(id: string, now: number): void {
    const s = this.state.get(id);
    const count = s && now - s.lastHeal <= this.windowMs ? s.count + 1 : 1;
    const wait = count < 2 ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** (count - 2));
    this.state.set(id, { count, lastHeal: now, until: now + wait });
  }

  /** Resources whose healing is paused, and until when. */
  backingOff(now: number): { id: string; until: number }[] {
    return [...this.state].filter(([, s]) => s.until > now).map(([id, s]) => ({ id, until: s.until }));
  }

  /** Forget resources that no longer drift (so a later, unrelated drift heals at once). */
  settle(drifting: ReadonlySet<string>, now: number): void {
    for (const [id, s] of this.state) if (!drifting.has(id) && now - s.lastHeal > this.windowMs) this.state.delete(id);
  }
}

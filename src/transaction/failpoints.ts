/**
 * Failpoints let tests crash or fail the process at named places (step boundaries, inside long steps).
 * Off unless IMGBASED_FAILPOINTS is set, e.g. `before:create-layer` (SIGKILL the process there) or
 * `after:write-base=error` (throw there instead). Names: `before:<step id>`, `after:<step id>`, `during:<step id>`.
 */
import { FailedError } from '../errors';

export type FailpointAction = 'crash' | 'error';

export class Failpoints {
  private readonly points: ReadonlyMap<string, FailpointAction>;

  constructor(spec: string | undefined) {
    const points = new Map<string, FailpointAction>();
    for (const raw of (spec ?? '').split(',')) {
      const item = raw.trim();
      if (!item) continue;
      const [name, action] = item.split('=');
      if (!name || (action !== undefined && action !== 'crash' && action !== 'error')) {
        throw new Error(`bad failpoint "${item}" (expected NAME or NAME=crash|error)`);
      }
      points.set(name, action ?? 'crash');
    }
    this.points = points;
  }

  static fromEnv(env: NodeJS.ProcessEnv = process.env): Failpoints {
    return new Failpoints(env['IMGBASED_FAILPOINTS']);
  }

  get enabled(): boolean {
    return this.points.size > 0;
  }

  hit(name: string): void {
    const action = this.points.get(name);
    if (action === 'crash') process.kill(process.pid, 'SIGKILL');
    if (action === 'error') throw new FailedError(`failpoint ${name}`);
  }
}

/**
 * Rebooting the host through systemd-logind, respecting its inhibitors. Used only after the daemon decided a reboot
 * is wanted and allowed (src/automatic/policy.ts: no running VMs).
 *
 * logind lets root reboot past a blocking inhibitor, so the daemon asks first (ListInhibitors) and refuses itself:
 * a host that vdsm or an administrator's `systemd-inhibit` holds up must not be rebooted by an automatic update.
 */
import * as dbus from 'dbus-next';
import { FailedError } from '../errors';

const LOGIN1 = { destination: 'org.freedesktop.login1', path: '/org/freedesktop/login1', interface: 'org.freedesktop.login1.Manager' };

export interface Rebooter {
  /** Holders of blocking shutdown inhibitors, as "who (why)". */
  blockingInhibitors(): Promise<string[]>;
  /** Ask for the reboot; resolves once it is requested (the host goes down afterwards). */
  reboot(): Promise<void>;
}

/** Pick the blocking shutdown inhibitors out of logind's ListInhibitors reply (a(ssssuu): what, who, why, mode, uid, pid). */
export function blockingShutdownInhibitors(reply: unknown): string[] {
  if (!Array.isArray(reply)) throw new FailedError('logind ListInhibitors: unexpected reply');
  const out: string[] = [];
  for (const row of reply as unknown[]) {
    if (!Array.isArray(row) || row.length < 4) continue;
    const [what, who, why, mode] = row as unknown[];
    if (typeof what !== 'string' || typeof mode !== 'string') continue;
    if (mode === 'block' && what.split(':').includes('shutdown')) out.push(`${String(who)} (${String(why)})`);
  }
  return out;
}

export class LogindRebooter implements Rebooter {
  constructor(private readonly bus: dbus.MessageBus) {}

  private async call(member: string, signature: string, body: unknown[]): Promise<unknown[]> {
    try {
      const reply = await this.bus.call(new dbus.Message({ ...LOGIN1, member, signature, body }));
      return reply?.body ?? [];
    } catch (e) {
      const why = e instanceof dbus.DBusError ? `${e.type}: ${e.text}` : e instanceof Error ? e.message : String(e);
      throw new FailedError(`systemd-logind ${member} failed: ${why}`, { cause: e });
    }
  }

  async blockingInhibitors(): Promise<string[]> {
    const [rows] = await this.call('ListInhibitors', '', []);
    return blockingShutdownInhibitors(rows);
  }

  async reboot(): Promise<void> {
    // interactive = false: never prompt; root is allowed by logind's polkit defaults.
    await this.call('Reboot', 'b', [false]);
  }
}

/**
 * Unit states from systemd over D-Bus (org.freedesktop.systemd1): GetUnit, then the unit's ActiveState. A unit that
 * is not loaded counts as "inactive" (as `systemctl is-active` says).
 */
import * as dbus from 'dbus-next';
import type { UnitStates } from '../boot/gates';
import { FailedError } from '../errors';

const SYSTEMD1 = { destination: 'org.freedesktop.systemd1', path: '/org/freedesktop/systemd1', interface: 'org.freedesktop.systemd1.Manager' };

export class SystemdUnits implements UnitStates {
  constructor(private readonly bus: dbus.MessageBus) {}

  async activeState(unit: string): Promise<string> {
    let unitPath: unknown;
    try {
      const reply = await this.bus.call(new dbus.Message({ ...SYSTEMD1, member: 'GetUnit', signature: 's', body: [unit] }));
      unitPath = reply?.body[0];
    } catch (e) {
      if (e instanceof dbus.DBusError && e.type === 'org.freedesktop.systemd1.NoSuchUnit') return 'inactive';
      throw new FailedError(`systemd GetUnit(${unit}) failed: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (typeof unitPath !== 'string') throw new FailedError(`systemd GetUnit(${unit}): unexpected reply`);
    const reply = await this.bus.call(new dbus.Message({
      destination: SYSTEMD1.destination, path: unitPath, interface: 'org.freedesktop.DBus.Properties', member: 'Get',
      signature: 'ss', body: ['org.freedesktop.systemd1.Unit', 'ActiveState'],
    }));
    const v: unknown = reply?.body[0];
    const value = v instanceof dbus.Variant ? (v.value as unknown) : v;
    if (typeof value !== 'string') throw new FailedError(`systemd ${unit}: ActiveState is not a string`);
    return value;
  }
}

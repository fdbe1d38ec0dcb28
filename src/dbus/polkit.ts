/**
 * Per-call authorization with polkit's CheckAuthorization on the caller's UNIQUE bus name. A caller that has
 * vanished, an error from polkit, or a challenge without interaction are all "denied".
 */
import type { MessageBus } from 'dbus-next';
import { Variant } from 'dbus-next';
import { NotAuthorizedError } from '../errors';
import type { Logger } from '../log';

/** AllowUserInteraction: lets an authentication agent ask the administrator (auth_admin_keep on a console). */
const ALLOW_USER_INTERACTION = 1;

export interface Authorizer {
  check(sender: string, actionId: string): Promise<void>;
}

interface AuthorityIface {
  CheckAuthorization(
    subject: [string, Record<string, Variant>], actionId: string, details: Record<string, string>, flags: number, cancellationId: string,
  ): Promise<unknown>;
}

function isAuthorityIface(v: unknown): v is AuthorityIface {
  return typeof v === 'object' && v !== null && typeof (v as Record<string, unknown>)['CheckAuthorization'] === 'function';
}

export class PolkitAuthorizer implements Authorizer {
  private authority: AuthorityIface | null = null;

  constructor(private readonly bus: MessageBus, private readonly log: Logger) {}

  private async iface(): Promise<AuthorityIface> {
    if (this.authority) return this.authority;
    const obj = await this.bus.getProxyObject('org.freedesktop.PolicyKit1', '/org/freedesktop/PolicyKit1/Authority');
    const iface: unknown = obj.getInterface('org.freedesktop.PolicyKit1.Authority');
    if (!isAuthorityIface(iface)) throw new NotAuthorizedError('polkit authority has no CheckAuthorization');
    this.authority = iface;
    return iface;
  }

  async check(sender: string, actionId: string): Promise<void> {
    let reply: unknown;
    try {
      const authority = await this.iface();
      reply = await authority.CheckAuthorization(
        ['system-bus-name', { name: new Variant('s', sender) }], actionId, {}, ALLOW_USER_INTERACTION, '',
      );
    } catch (e) {
      this.authority = null;
      const why = e instanceof Error ? e.message : String(e);
      this.log.warn(`polkit check of ${actionId} for ${sender} failed: ${why}`, { action: actionId, sender });
      throw new NotAuthorizedError(`not authorized for ${actionId}: polkit could not authorize the caller (${why})`);
    }
    const [authorized, challenge] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (authorized !== true) {
      throw new NotAuthorizedError(
        challenge === true
          ? `not authorized for ${actionId}: authentication is required (run as root or through an authentication agent)`
          : `not authorized for ${actionId}`,
      );
    }
  }
}

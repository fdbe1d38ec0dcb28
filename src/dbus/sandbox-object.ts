/**
 * org.ovirt.Node.Sandbox — exported only when the daemon runs in sandbox mode (absent in production, and the
 * shipped bus policy does not allow it; the sandbox bus adds src/sandbox/org.ovirt.Node.Sandbox.conf).
 * Reboot() "boots" the sandbox: the one-shot next entry if set, else the default, becomes the running layer.
 */
import { interface as dbusInterface } from 'dbus-next';
import type { Logger } from '../log';
import type { CallContext } from './call';
import { callContext } from './call';
import { mapped } from './errors';

const { Interface } = dbusInterface;

export const SANDBOX_IFACE = 'org.ovirt.Node.Sandbox';

export class SandboxObject extends Interface {
  constructor(private readonly reboot: (call: CallContext) => Promise<string>, private readonly log: Logger) {
    super(SANDBOX_IFACE);
  }

  Reboot(msg: unknown): Promise<string> {
    return mapped(this.log, 'Reboot', () => this.reboot(callContext(msg)));
  }
}

SandboxObject.configureMembers({ methods: { Reboot: { inSignature: '', outSignature: 's' } } });

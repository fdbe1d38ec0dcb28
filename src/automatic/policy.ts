/**
 * The automatic update policy as pure decisions (rpm-ostreed's AutomaticUpdatePolicy, plus a maintenance window and
 * the running-VMs guard). The daemon gathers the facts, asks here what to do, and does it.
 *
 *   none   nothing at all
 *   check  look for a newer image (ImageDir) or image-update package (UpdateRepo); report it (UpdateAvailable /
 *          AvailableVersion, the log)
 *   stage  check, then upgrade: the new layer boots next time
 *   apply  stage, then reboot into it — only if no virtual machine runs (and libvirt can tell), and no shutdown
 *          inhibitor blocks it; otherwise the layer stays staged and the transaction's history says why
 *
 * stage and apply only start inside the maintenance window (unless the caller says not to respect it); outside it
 * they behave like check.
 */
import type { AutomaticUpdatePolicy } from '../dbus/api';

export type TriggerDecision =
  | { readonly action: 'nothing'; readonly reason: string }
  | { readonly action: 'report'; readonly reason: string }
  | { readonly action: 'upgrade'; readonly reboot: boolean };

export interface TriggerFacts {
  readonly mode: AutomaticUpdatePolicy;
  /** NVR of the newest image (ImageDir) or image-update package (UpdateRepo) newer than every base, or null. */
  readonly update: string | null;
  readonly insideWindow: boolean;
  readonly respectWindow: boolean;
  /** The window's text, for messages ("" = any time). */
  readonly window: string;
}

export function decideTrigger(f: TriggerFacts): TriggerDecision {
  if (f.mode === 'none') return { action: 'nothing', reason: 'the automatic update policy is "none"' };
  if (f.update === null) return { action: 'nothing', reason: 'no image newer than every base in the image directory or the update repository' };
  if (f.mode === 'check') return { action: 'report', reason: `update available: ${f.update}` };
  if (f.respectWindow && !f.insideWindow) {
    return { action: 'report', reason: `update available: ${f.update}; not ${f.mode === 'apply' ? 'applied' : 'staged'}: outside the maintenance window "${f.window}"` };
  }
  return { action: 'upgrade', reboot: f.mode === 'apply' };
}

/** What the guard knows about virtual machines (the VirtualMachines property). */
export interface VmFacts {
  readonly available: boolean;
  readonly running: readonly string[];
  readonly message: string;
}

export type RebootDecision = { readonly reboot: true } | { readonly reboot: false; readonly why: string };

/**
 * Whether a reboot the daemon was asked for (apply policy, rollback with reboot) may happen now.
 * `inhibitors`: who holds a blocking shutdown inhibitor ("who: why").
 */
export function decideReboot(vms: VmFacts, inhibitors: readonly string[]): RebootDecision {
  if (!vms.available) {
    return { reboot: false, why: `libvirt cannot tell whether virtual machines run (${vms.message}); not rebooting` };
  }
  if (vms.running.length > 0) {
    const n = vms.running.length;
    return { reboot: false, why: `${n} virtual machine${n === 1 ? '' : 's'} running (${vms.running.join(', ')}); not rebooting` };
  }
  if (inhibitors.length > 0) return { reboot: false, why: `shutdown is inhibited by ${inhibitors.join('; ')}; not rebooting` };
  return { reboot: true };
}

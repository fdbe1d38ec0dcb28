/**
 * Typed errors. Every user-facing error carries the D-Bus error name it maps to, a stable code and an optional hint.
 * Anything that is not an ImgbasedError is a programmer error and becomes org.ovirt.Node.Error.Failed at the edge.
 */
export const ERROR_PREFIX = 'org.ovirt.Node.Error.';

export type ErrorCode =
  | 'InvalidArgument'
  | 'InvalidName'
  | 'NotAuthorized'
  | 'Busy'
  | 'NotFound'
  | 'NoSpace'
  | 'VerificationFailed'
  | 'NotNewer'
  | 'Cancelled'
  | 'VMsRunning'
  | 'ToolFailed'
  | 'Failed';

/** D-Bus error suffix per code (several codes may share a D-Bus name). */
const DBUS_NAME: Record<ErrorCode, string> = {
  InvalidArgument: 'InvalidArgument',
  InvalidName: 'InvalidArgument',
  NotAuthorized: 'NotAuthorized',
  Busy: 'Busy',
  NotFound: 'NotFound',
  NoSpace: 'NoSpace',
  VerificationFailed: 'VerificationFailed',
  NotNewer: 'NotNewer',
  Cancelled: 'Cancelled',
  VMsRunning: 'VMsRunning',
  ToolFailed: 'Failed',
  Failed: 'Failed',
};

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
}

export class ImgbasedError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, opts: ErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = opts.hint;
  }

  get dbusName(): string {
    return ERROR_PREFIX + DBUS_NAME[this.code];
  }
}

export class InvalidArgumentError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('InvalidArgument', message, opts);
  }
}

/** A name (NVR, layer, LV) that does not parse or is not a valid LV name. */
export class InvalidNameError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('InvalidName', message, opts);
  }
}

export class NotAuthorizedError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('NotAuthorized', message, opts);
  }
}

export class NotFoundError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('NotFound', message, opts);
  }
}

export class BusyError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('Busy', message, opts);
  }
}

export class NoSpaceError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('NoSpace', message, opts);
  }
}

export class VerificationFailedError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('VerificationFailed', message, opts);
  }
}

/** The image's NVR is not newer than every installed base (and allow-downgrade was not given). */
export class NotNewerError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('NotNewer', message, opts);
  }
}

export class CancelledError extends ImgbasedError {
  constructor(message = 'The transaction was cancelled', opts?: ErrorOptions) {
    super('Cancelled', message, opts);
  }
}

/** A reboot was refused: virtual machines run on this host, or libvirt cannot tell whether they do. */
export class VMsRunningError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('VMsRunning', message, opts);
  }
}

/** An external tool (lvcreate, mount, mkfs, …) failed; carries its argv, exit status and stderr. */
export class ToolError extends ImgbasedError {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number | null, stderr: string, opts?: ErrorOptions) {
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    super('ToolFailed', `${argv[0] ?? '?'} failed (exit ${exitCode ?? 'signal'}): ${tail || 'no output'}`, opts);
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

export class FailedError extends ImgbasedError {
  constructor(message: string, opts?: ErrorOptions) {
    super('Failed', message, opts);
  }
}

/** Map anything thrown to (D-Bus name, message). Non-ImgbasedError values become Error.Failed. */
export function toDbusError(err: unknown): { name: string; message: string } {
  if (err instanceof ImgbasedError) return { name: err.dbusName, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { name: ERROR_PREFIX + 'Failed', message: `Internal error: ${message}` };
}

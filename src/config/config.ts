/**
 * /etc/imgbased/imgbased.conf — INI like rpm-ostreed.conf. Unknown sections or keys are errors (named, with the line),
 * never silently ignored. Missing file = defaults.
 *
 *   [Storage]
 *   Backend=lvm            # lvm | dir
 *   VolumeGroup=onn        # lvm: default = the VG tagged imgbased:vg
 *   ThinPool=pool00        # lvm: default = the thin pool tagged imgbased:pool
 *   DirPool=/var/lib/imgbased/pool   # dir backend: the pool directory
 *   [Upgrade]
 *   ImageDir=/var/lib/imgbased/images
 *   UpdateRepo=                  # a dnf repository (baseurl: file://, http://, https://) to look for updates in; empty = none
 *   UpdatePackage=ovirt-node-ng-image-update   # the image-update package asked for in UpdateRepo
 *   RequireSignature=true
 *   KeepBases=2
 *   WriteMethod=auto       # auto | tree | blocks | delta
 *   MetadataMarginMiB=64
 *   AutomaticUpdatePolicy=none   # none | check | stage | apply (SetAutomaticUpdatePolicy overrides it, in the state dir)
 *   MaintenanceWindow=           # when automatic stage/apply may start, e.g. "Sat,Sun 02:00-05:00"; empty = any time
 *   LibvirtURI=qemu:///system    # where the running-VMs guard asks libvirt
 *   [Boot]
 *   Assessment=true        # new layers boot once on trial; CompleteBoot makes them the default
 *   RequiredUnits=         # health gate: units that must be active (space-separated), e.g. vdsmd.service
 *   RequireHealthy=true    # health gate: Check() must not be "failed"
 *   GateTimeoutSec=300     # how long the gates wait for the units to become active
 *   RebootOnFailure=false  # after a failed gate, reboot into the last good layer (only when no VM runs)
 */
import { promises as fs } from 'node:fs';
import type { MaintenanceWindow } from '../automatic/window';
import { ANY_TIME, parseMaintenanceWindow } from '../automatic/window';
import type { AutomaticUpdatePolicy } from '../dbus/api';
import { AUTOMATIC_UPDATE_POLICIES } from '../dbus/api';
import { InvalidArgumentError } from '../errors';

export type WriteMethod = 'auto' | 'tree' | 'blocks' | 'delta';

export interface Config {
  readonly backend: 'lvm' | 'dir';
  readonly volumeGroup: string | null;
  readonly thinPool: string | null;
  readonly dirPool: string;
  readonly imageDir: string;
  /** A dnf repository's baseurl to look for image-update packages in; null = none (docs/UPDATES.md). */
  readonly updateRepo: string | null;
  /** The image-update package's name in updateRepo. */
  readonly updatePackage: string;
  readonly requireSignature: boolean;
  readonly keepBases: number;
  readonly writeMethod: WriteMethod;
  readonly metadataMarginBytes: number;
  readonly automaticUpdatePolicy: AutomaticUpdatePolicy;
  readonly maintenanceWindow: MaintenanceWindow;
  readonly libvirtUri: string;
  readonly bootAssessment: boolean;
  readonly requiredUnits: readonly string[];
  readonly requireHealthy: boolean;
  readonly gateTimeoutSec: number;
  readonly rebootOnFailure: boolean;
}

export const DEFAULT_CONFIG: Config = {
  backend: 'lvm',
  volumeGroup: null,
  thinPool: null,
  dirPool: '/var/lib/imgbased/pool',
  imageDir: '/var/lib/imgbased/images',
  updateRepo: null,
  updatePackage: 'ovirt-node-ng-image-update',
  requireSignature: true,
  keepBases: 2,
  writeMethod: 'auto',
  metadataMarginBytes: 64 * 1024 * 1024,
  automaticUpdatePolicy: 'none',
  maintenanceWindow: ANY_TIME,
  libvirtUri: 'qemu:///system',
  bootAssessment: true,
  requiredUnits: [],
  requireHealthy: true,
  gateTimeoutSec: 300,
  rebootOnFailure: false,
};

/** A systemd unit name (name.type, no path, no spaces or control characters). */
const UNIT_NAME = /^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|device|swap|path|timer|slice|scope|automount)$/;

type Setter = (c: Mutable<Config>, value: string, where: string) => void;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function bool(value: string, where: string): boolean {
  if (/^(true|yes|1|on)$/i.test(value)) return true;
  if (/^(false|no|0|off)$/i.test(value)) return false;
  throw new InvalidArgumentError(`${where}: expected true or false, got "${value}"`);
}

function int(value: string, where: string, min: number, max: number): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InvalidArgumentError(`${where}: expected a whole number from ${min} to ${max}, got "${value}"`);
  }
  return Number(value);
}

function absPath(value: string, where: string): string {
  if (!value.startsWith('/')) throw new InvalidArgumentError(`${where}: expected an absolute path, got "${value}"`);
  return value;
}

const KEYS: Record<string, Record<string, Setter>> = {
  Storage: {
    Backend: (c, v, w) => {
      if (v !== 'lvm' && v !== 'dir') throw new InvalidArgumentError(`${w}: Backend must be lvm or dir, got "${v}"`);
      c.backend = v;
    },
    VolumeGroup: (c, v) => {
      c.volumeGroup = v || null;
    },
    ThinPool: (c, v) => {
      c.thinPool = v || null;
    },
    DirPool: (c, v, w) => {
      c.dirPool = absPath(v, w);
    },
  },
  Upgrade: {
    ImageDir: (c, v, w) => {
      c.imageDir = absPath(v, w);
    },
    UpdateRepo: (c, v, w) => {
      if (v !== '' && !/^(file:\/\/\/|https?:\/\/[^/\s]+)[^\s]*$/.test(v)) {
        throw new InvalidArgumentError(`${w}: UpdateRepo must be a repository URL (file:///…, http://…, https://…) or empty, got "${v}"`);
      }
      c.updateRepo = v || null;
    },
    UpdatePackage: (c, v, w) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(v)) throw new InvalidArgumentError(`${w}: UpdatePackage must be a package name, got "${v}"`);
      c.updatePackage = v;
    },
    RequireSignature: (c, v, w) => {
      c.requireSignature = bool(v, w);
    },
    KeepBases: (c, v, w) => {
      c.keepBases = int(v, w, 1, 100);
    },
    WriteMethod: (c, v, w) => {
      if (v !== 'auto' && v !== 'tree' && v !== 'blocks' && v !== 'delta') {
        throw new InvalidArgumentError(`${w}: WriteMethod must be auto, tree, blocks or delta, got "${v}"`);
      }
      c.writeMethod = v;
    },
    MetadataMarginMiB: (c, v, w) => {
      c.metadataMarginBytes = int(v, w, 0, 1 << 20) * 1024 * 1024;
    },
    AutomaticUpdatePolicy: (c, v, w) => {
      const policy = AUTOMATIC_UPDATE_POLICIES.find((p) => p === v);
      if (!policy) throw new InvalidArgumentError(`${w}: AutomaticUpdatePolicy must be one of ${AUTOMATIC_UPDATE_POLICIES.join(', ')}, got "${v}"`);
      c.automaticUpdatePolicy = policy;
    },
    MaintenanceWindow: (c, v, w) => {
      try {
        c.maintenanceWindow = parseMaintenanceWindow(v);
      } catch (e) {
        throw new InvalidArgumentError(`${w}: ${e instanceof Error ? e.message : String(e)}`);
      }
    },
    LibvirtURI: (c, v, w) => {
      if (!/^[a-z][a-z0-9+.-]*:\/\//.test(v)) throw new InvalidArgumentError(`${w}: LibvirtURI must be a libvirt URI like qemu:///system, got "${v}"`);
      c.libvirtUri = v;
    },
  },
  Boot: {
    Assessment: (c, v, w) => {
      c.bootAssessment = bool(v, w);
    },
    RequiredUnits: (c, v, w) => {
      const units = v.split(/\s+/).filter(Boolean);
      const badUnit = units.find((u) => !UNIT_NAME.test(u));
      if (badUnit !== undefined) throw new InvalidArgumentError(`${w}: "${badUnit}" is not a unit name like vdsmd.service`);
      c.requiredUnits = units;
    },
    RequireHealthy: (c, v, w) => {
      c.requireHealthy = bool(v, w);
    },
    GateTimeoutSec: (c, v, w) => {
      c.gateTimeoutSec = int(v, w, 0, 86400);
    },
    RebootOnFailure: (c, v, w) => {
      c.rebootOnFailure = bool(v, w);
    },
  },
};

export function parseConfig(text: string, file = 'imgbased.conf'): Config {
  const c: Mutable<Config> = { ...DEFAULT_CONFIG };
  let section: string | null = null;
  for (const [i, rawLine] of text.split('\n').entries()) {
    const line = rawLine.trim();
    const where = `${file}:${i + 1}`;
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec?.[1]) {
      if (!KEYS[sec[1]]) {
        throw new InvalidArgumentError(`${where}: unknown section [${sec[1]}] (known: ${Object.keys(KEYS).join(', ')})`);
      }
      section = sec[1];
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 1) throw new InvalidArgumentError(`${where}: expected Key=Value, got "${line}"`);
    if (!section) throw new InvalidArgumentError(`${where}: "${line}" comes before any [Section]`);
    const key = line.slice(0, eq).trim();
    const setter = KEYS[section]?.[key];
    if (!setter) {
      throw new InvalidArgumentError(`${where}: unknown key ${key} in [${section}] (known: ${Object.keys(KEYS[section] ?? {}).join(', ')})`);
    }
    setter(c, line.slice(eq + 1).trim(), where);
  }
  return c;
}

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_CONFIG };
    throw e;
  }
  return parseConfig(text, file);
}

import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_CONFIG, loadConfig, parseConfig } from '../../src/config/config';
import { InvalidArgumentError } from '../../src/errors';

describe('imgbased.conf', () => {
  it('parses every key', () => {
    const c = parseConfig(`# comment
[Storage]
Backend=dir
DirPool=/srv/pool
VolumeGroup=onn
ThinPool=pool00

[Upgrade]
ImageDir=/srv/images
UpdateRepo=file:///srv/repo
UpdatePackage=my-image-update
RequireSignature=no
KeepBases=3
WriteMethod=blocks
MetadataMarginMiB=16
AutomaticUpdatePolicy=stage
MaintenanceWindow=Sat,Sun  02:00-05:00
LibvirtURI=qemu+unix:///system?socket=/run/libvirt/libvirt-sock

[Boot]
Assessment=no
RequiredUnits=vdsmd.service  libvirtd.service
RequireHealthy=false
GateTimeoutSec=60
RebootOnFailure=yes
`);
    expect(c).toEqual({
      backend: 'dir', dirPool: '/srv/pool', volumeGroup: 'onn', thinPool: 'pool00', imageDir: '/srv/images', updateRepo: 'file:///srv/repo', updatePackage: 'my-image-update', requireSignature: false,
      keepBases: 3, writeMethod: 'blocks', metadataMarginBytes: 16 * 1024 * 1024, automaticUpdatePolicy: 'stage',
      maintenanceWindow: { text: 'Sat,Sun 02:00-05:00', spans: [expect.objectContaining({ start: 120, end: 300 })] },
      libvirtUri: 'qemu+unix:///system?socket=/run/libvirt/libvirt-sock',
      bootAssessment: false, requiredUnits: ['vdsmd.service', 'libvirtd.service'], requireHealthy: false, gateTimeoutSec: 60,
      rebootOnFailure: true,
    });
  });

  it.each([
    ['[Nope]\n', /unknown section \[Nope\]/],
    ['[Upgrade]\nKeepBase=2\n', /imgbased.conf:2: unknown key KeepBase in \[Upgrade\]/],
    ['KeepBases=2\n', /before any \[Section\]/],
    ['[Upgrade]\nKeepBases=0\n', /from 1 to 100/],
    ['[Upgrade]\nRequireSignature=maybe\n', /true or false/],
    ['[Storage]\nBackend=zfs\n', /lvm or dir/],
    ['[Storage]\nDirPool=relative\n', /absolute path/],
    ['[Upgrade]\njunk\n', /Key=Value/],
    ['[Upgrade]\nAutomaticUpdatePolicy=always\n', /imgbased.conf:2: AutomaticUpdatePolicy must be one of none, check, stage, apply/],
    ['[Upgrade]\nMaintenanceWindow=tonight\n', /imgbased.conf:2: MaintenanceWindow "tonight"/],
    ['[Upgrade]\nLibvirtURI=/var/run/libvirt\n', /LibvirtURI must be a libvirt URI/],
    ['[Boot]\nRequiredUnits=vdsmd.service ../etc/passwd\n', /imgbased.conf:2: "..\/etc\/passwd" is not a unit name/],
    ['[Boot]\nGateTimeoutSec=-1\n', /from 0 to 86400/],
    ['[Upgrade]\nUpdateRepo=/srv/repo\n', /imgbased.conf:2: UpdateRepo must be a repository URL/],
    ['[Upgrade]\nUpdateRepo=ftp://mirror/repo\n', /UpdateRepo must be a repository URL/],
    ['[Upgrade]\nUpdatePackage=a b\n', /UpdatePackage must be a package name/],
  ])('rejects %p with a named error and the line', (text, msg) => {
    expect(() => parseConfig(text)).toThrow(InvalidArgumentError);
    expect(() => parseConfig(text)).toThrow(msg);
  });

  it('uses defaults when the file is missing', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-conf-'));
    try {
      expect(await loadConfig(path.join(dir, 'missing.conf'))).toEqual(DEFAULT_CONFIG);
    } finally {
      await fs.rm(dir, { recursive: true });
    }
  });
});

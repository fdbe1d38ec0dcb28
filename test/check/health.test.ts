import type { HealthFacts } from '../../src/check/health';
import { evaluateHealth } from '../../src/check/health';
import { parseMountinfo } from '../../src/system/mountinfo';

const healthy: HealthFacts = {
  backendKind: 'lvm',
  pool: { sizeBytes: 100, freeBytes: 60, dataPercent: 40, metadataPercent: 10, autoextendThreshold: 70 },
  layers: ['n-1-1+1', 'n-2-1+1'],
  entryBootIds: ['n-1-1+1', 'n-2-1+1'],
  defaultLayer: 'n-2-1+1',
  varMountOptions: ['rw', 'discard'],
  rootMountOptions: ['rw', 'discard'],
  volumesDiscard: [{ name: '/var/log', discard: true }],
  unfinishedTransactions: [],
};

describe('health report', () => {
  it('is OK on a healthy host', () => {
    const r = evaluateHealth(healthy);
    expect(r.status).toBe('ok');
    expect(r.results.every((x) => x.status === 'ok')).toBe(true);
  });

  it.each([
    [{ pool: { ...healthy.pool, dataPercent: 85 } }, 'warn', /available space in thinpool/],
    [{ pool: { ...healthy.pool, metadataPercent: 96 } }, 'failed', /metadata usage/],
    [{ pool: { ...healthy.pool, autoextendThreshold: 100 } }, 'warn', /auto-extend/],
    [{ varMountOptions: null }, 'failed', /separate \/var/],
    [{ rootMountOptions: ['rw'] }, 'warn', /discard on \//],
    [{ entryBootIds: ['n-2-1+1'] }, 'failed', /every layer has a boot entry/],
    [{ entryBootIds: [...healthy.entryBootIds, 'gone-1-1+1'] }, 'failed', /every boot entry has a layer/],
    [{ defaultLayer: null }, 'failed', /default boot entry/],
    [{ unfinishedTransactions: ['t1'] }, 'failed', /unfinished transactions/],
  ] as Array<[Partial<HealthFacts>, string, RegExp]>)('flags %p', (over, status, name) => {
    const r = evaluateHealth({ ...healthy, ...over });
    expect(r.status).toBe(status);
    expect(r.results.find((x) => x.status !== 'ok')?.name).toMatch(name);
  });

  it('parses mountinfo including escapes and super options', () => {
    const [m] = parseMountinfo('36 35 98:0 / /mnt/my\\040var rw,noatime master:1 - ext4 /dev/mapper/onn-var rw,discard\n');
    expect(m).toEqual({ mountPoint: '/mnt/my var', options: ['rw', 'noatime', 'rw', 'discard'], fsType: 'ext4', source: '/dev/mapper/onn-var' });
  });
});

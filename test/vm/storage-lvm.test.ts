/**
 * The storage contract suite (test/storage/contract.ts) against the real lvm backend: a fresh VG + thin pool on the
 * guest's blank virtio disk per filesystem type. The pool starts with lvcreate's small default metadata, so
 * markLayout() really grows it to 1 GiB and attaches the imgbased-pool profile (the contract expects threshold 70).
 */
import { LvmBackend } from '../../src/storage/lvm';
import { describeStorageContract } from '../storage/contract';
import { GiB, MiB, makeVg } from './lvm-fixture';

for (const fsType of ['ext4', 'xfs'] as const) {
  describeStorageContract(
    'lvm',
    async () => {
      const fx = await makeVg({ vg: `contract_${fsType}`, poolBytes: 4 * GiB });
      return {
        backend: new LvmBackend({ vg: fx.vg, pool: fx.pool, mountRoot: fx.mountRoot }),
        cleanup: fx.cleanup,
      };
    },
    // xfsprogs 6 refuses filesystems below 300 MB
    { fsType, sizeBytes: 512 * MiB },
  );
}

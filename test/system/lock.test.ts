import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { acquireHostLock, formatLock, isStale, parseLock, processStartTime, UNREADABLE, type LockFacts } from '../../src/system/lock';

const BOOT_A = '0c2e4a8e-6d1f-4b5a-9c3e-1f2a3b4c5d6e';
const BOOT_B = 'f1e2d3c4-b5a6-4978-8695-a4b3c2d1e0f9';

describe('host lock: who owns it (pure)', () => {
  it('parses the current format, the old one, and refuses garbage', () => {
    expect(parseLock(`42 ${BOOT_A} 7011035 imgbased daemon\n`)).toEqual({ pid: 42, bootId: BOOT_A, startTime: '7011035', owner: 'imgbased daemon' });
    expect(parseLock('42 imgbased daemon\n')).toEqual({ pid: 42, bootId: null, startTime: null, owner: 'imgbased daemon' });
    expect(parseLock('42\n')?.owner).toBe('another process');
    expect(parseLock('42 - - imgbased daemon\n')).toEqual({ pid: 42, bootId: null, startTime: null, owner: 'imgbased daemon' });
    for (const bad of ['', '\n', 'x y', '-3 a', '0 a', '4.5 a']) expect(parseLock(bad)).toBeNull();
    const o = { pid: 7, bootId: BOOT_B, startTime: '12', owner: 'imgbased recover' };
    expect(parseLock(formatLock(o))).toEqual(o);
  });

  it('is stale when the host booted since, the pid is free, or the pid is another process', () => {
    const lock = { pid: 424, bootId: BOOT_A, startTime: '5000', owner: 'imgbased daemon' };
    const facts: LockFacts = { bootId: BOOT_A, bootTimeMs: 1_000, lockMtimeMs: 2_000, startTimeOfPid: '5000' };
    expect(isStale(lock, facts)).toBe(false);
    // the power-cut case: after a reboot, some other process got pid 424
    expect(isStale(lock, { ...facts, bootId: BOOT_B, startTimeOfPid: '4100' })).toBe(true);
    expect(isStale(lock, { ...facts, bootId: BOOT_B, startTimeOfPid: '5000' })).toBe(true);
    expect(isStale(lock, { ...facts, startTimeOfPid: null })).toBe(true);
    expect(isStale(lock, { ...facts, startTimeOfPid: '5001' })).toBe(true);
    // a process of another security domain: its stat cannot be read, so it is assumed to be the owner in this boot
    expect(isStale(lock, { ...facts, startTimeOfPid: UNREADABLE })).toBe(false);
    expect(isStale(lock, { ...facts, bootId: BOOT_B, startTimeOfPid: UNREADABLE })).toBe(true);
    // this process cannot tell the boot id: the start time decides, else the lock file's age
    expect(isStale(lock, { ...facts, bootId: null })).toBe(false);
    expect(isStale(lock, { ...facts, bootId: null, startTimeOfPid: '17' })).toBe(true);
    expect(isStale(lock, { ...facts, bootId: null, startTimeOfPid: UNREADABLE, lockMtimeMs: 500 })).toBe(true);
    // old format: only the file's age tells a previous boot's lock
    const old = { pid: 424, bootId: null, startTime: null, owner: 'imgbased' };
    expect(isStale(old, facts)).toBe(false);
    expect(isStale(old, { ...facts, lockMtimeMs: 500 })).toBe(true);
    expect(isStale(old, { ...facts, startTimeOfPid: null })).toBe(true);
    expect(isStale(null, facts)).toBe(true);
  });
});

describe('host lock: the real lock file', () => {
  let dir: string;
  let bootId: string;
  let myStart: string;
  beforeAll(async () => {
    bootId = (await fs.readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
    myStart = (await processStartTime(process.pid)) ?? '';
    expect(myStart).toMatch(/^\d+$/);
  });
  beforeEach(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'imgbased-lock-'));
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  const lockFile = (): string => path.join(dir, 'lock');

  it('records pid, boot id and start time; a second taker is refused with the owner named; release frees it', async () => {
    const lock = await acquireHostLock(dir, 'imgbased daemon');
    expect(await fs.readFile(lockFile(), 'utf8')).toBe(`${process.pid} ${bootId} ${myStart} imgbased daemon\n`);
    await expect(acquireHostLock(dir, 'imgbased (offline tool)')).rejects.toThrow(`imgbased daemon (pid ${process.pid}) is changing this host`);
    await lock.release();
    await expect(fs.access(lockFile())).rejects.toThrow(/ENOENT/);
    await (await acquireHostLock(dir, 'x')).release();
  });

  it('takes over a lock from before a reboot even when its pid is alive now (the power-cut case)', async () => {
    // the previous boot's daemon had the pid that this process has now
    const other = bootId === BOOT_A ? BOOT_B : BOOT_A;
    await fs.writeFile(lockFile(), `${process.pid} ${other} ${myStart} imgbased daemon\n`);
    const lock = await acquireHostLock(dir, 'imgbased daemon');
    expect(parseLock(await fs.readFile(lockFile(), 'utf8'))?.bootId).toBe(bootId);
    await lock.release();
  });

  it('takes over a lock whose pid now belongs to another process, a lock of a gone pid, and an unreadable lock', async () => {
    await fs.writeFile(lockFile(), `${process.pid} ${bootId} ${Number(myStart) + 1} imgbased daemon\n`);
    await (await acquireHostLock(dir, 'a')).release();
    await fs.writeFile(lockFile(), `999999 ${bootId} 1 imgbased daemon\n`);
    await (await acquireHostLock(dir, 'b')).release();
    await fs.writeFile(lockFile(), ''); // a cut while the lock was being written
    await (await acquireHostLock(dir, 'c')).release();
  });

  it('old-format locks: refused while the pid lives in this boot, taken over when written before the boot', async () => {
    await fs.writeFile(lockFile(), `${process.pid} imgbased daemon\n`);
    await expect(acquireHostLock(dir, 'x')).rejects.toThrow('imgbased daemon (pid');
    await fs.utimes(lockFile(), new Date(1000), new Date(1000));
    await (await acquireHostLock(dir, 'x')).release();
  });

  it('release leaves a lock that another process took over', async () => {
    const lock = await acquireHostLock(dir, 'mine');
    await fs.writeFile(lockFile(), `999998 ${bootId} 1 someone else\n`);
    await lock.release();
    expect(await fs.readFile(lockFile(), 'utf8')).toContain('someone else');
  });
});

import { EXIT } from '../../../src/cli/nodectl/client';
import { FAILED_HINT, transactionFailure } from '../../../src/cli/nodectl/follow';

describe('transactionFailure: what nodectl says when a followed transaction ends without success', () => {
  it('a failure without a hint of its own points at the history and the daemon log (exit 1)', () => {
    const e = transactionFailure('t42', 'org.ovirt.Node.Error.Failed', 'rsync exited with 23');
    expect([e.message, e.exitCode, e.hint]).toEqual(['rsync exited with 23', EXIT.failed, FAILED_HINT]);
    expect(FAILED_HINT).toMatch(/nodectl --json history --limit 1.*journalctl -u imgbased/);
  });

  it('a failure with a hint of its own keeps it', () => {
    const e = transactionFailure('t42', 'org.ovirt.Node.Error.NoSpace', 'the thin pool has 1.0 GiB free, 3.2 GiB needed');
    expect([e.exitCode, e.hint]).toEqual([EXIT.failed, 'free space with "nodectl cleanup" or extend the thin pool']);
  });

  it('a cancelled transaction exits 130 without a failure hint; an empty message names the transaction', () => {
    const c = transactionFailure('t42', 'org.ovirt.Node.Error.Cancelled', '');
    expect([c.message, c.exitCode, c.hint]).toEqual(['transaction t42 was cancelled', EXIT.cancelled, undefined]);
    expect(transactionFailure('t7', 'org.ovirt.Node.Error.Failed', '').message).toBe('transaction t7 failed');
  });
});

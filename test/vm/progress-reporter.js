// Jest reporter for the VM tier: one line per finished test as it happens (the default reporter prints a file's
// results only when the whole file is done, which under software emulation can be minutes of silence).
class VmProgressReporter {
  constructor() {
    this.t0 = Date.now();
  }
  stamp() {
    return `[${((Date.now() - this.t0) / 1000).toFixed(1).padStart(6)}s]`;
  }
  onTestFileStart(test) {
    process.stderr.write(`${this.stamp()} FILE ${test.path.replace(/^.*\/dist\//, 'dist/')}\n`);
  }
  onTestCaseResult(_test, r) {
    const mark = r.status === 'passed' ? 'ok  ' : r.status === 'failed' ? 'FAIL' : r.status;
    const ms = r.duration ?? 0;
    process.stderr.write(`${this.stamp()} ${mark} ${r.fullName} (${(ms / 1000).toFixed(1)}s)\n`);
  }
}
module.exports = VmProgressReporter;

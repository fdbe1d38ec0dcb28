/** @type {import('jest').Config} */
// Jest config of the VM tier: runs INSIDE the guest on the JS that `tsc -p tsconfig.build.json` compiled on the host.
// No ts-jest and no babel (transform: {}): transpiling under software emulation would dominate the run time.
const path = require('node:path');
module.exports = {
  rootDir: path.resolve(__dirname, '../..'),
  roots: ['<rootDir>/dist/test/vm'],
  testMatch: ['<rootDir>/dist/test/vm/**/*.test.js'],
  testEnvironment: 'node',
  transform: {},
  // the guest's /tmp is a tmpfs; the 9p share is slow to crawl: keep jest's haste map small
  cacheDirectory: '/tmp/jest-vm',
  watchman: false,
  reporters: ['default', '<rootDir>/test/vm/progress-reporter.js'],
  testTimeout: 600000,
  slowTestThreshold: 60,
};

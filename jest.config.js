/** @type {import('jest').Config} */
// TypeScript is type-checked by `tsc` before jest runs (isolatedModules: ts-jest only transpiles).
const tsJest = ['ts-jest', { diagnostics: false }];
module.exports = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': tsJest },
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '/dist/', '<rootDir>/test/vm/'],
  testTimeout: 120000,
};

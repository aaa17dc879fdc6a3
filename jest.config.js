/** Jest: ts-jest transpiles lib/ and test/ directly (type checking runs once, in `npm test`, via tsc). */
module.exports = {
  testEnvironment: '<rootDir>/test/helpers/jest-env-realm.js',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  testTimeout: 120000,
};

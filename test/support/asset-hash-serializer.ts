/**
 * Jest snapshot serializer: replaces asset hashes (S3 keys of bundled handlers and of user assets)
 * with a placeholder, so an SDK or esbuild bump does not churn the committed snapshots.
 */
const HASH = /[0-9a-f]{64}/g;

module.exports = {
  test: (val: unknown) => typeof val === 'string' && HASH.test(val) && (HASH.lastIndex = 0) === 0,
  serialize: (val: string) => JSON.stringify(val.replace(HASH, 'HASH')),
};

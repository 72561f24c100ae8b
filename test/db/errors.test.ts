import postgres from 'postgres';
import { describe, expect, it } from 'vitest';
import { DatabaseUnavailable, isRetryableDbError, sqlState } from '../../src/db/errors.js';

describe('sqlState', () => {
  it("reads a database error's code: a SQLSTATE, or a failed connection's code; nothing else", () => {
    const refused = Object.assign(new Error('check violation'), { code: '23514' });
    expect(sqlState(refused)).toBe('23514');
    expect(sqlState(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    expect(sqlState(new Error('no code'))).toBeUndefined();
    expect(sqlState(Object.assign(new Error('a number'), { code: 1 }))).toBeUndefined();
    expect(sqlState({ code: '23514' })).toBeUndefined(); // not an error
    expect(sqlState(undefined)).toBeUndefined();
    expect(postgres.PostgresError).toBeTypeOf('function'); // src/v1/stats/queries.ts relies on it
  });

  it('classifies by it: connection trouble and lost conflicts are retryable, a constraint is not', () => {
    expect(isRetryableDbError(Object.assign(new Error(), { code: '08006' }))).toBe(true);
    expect(isRetryableDbError(Object.assign(new Error(), { code: '40P01' }))).toBe(true);
    expect(isRetryableDbError(Object.assign(new Error(), { code: 'CONNECTION_CLOSED' }))).toBe(true);
    expect(isRetryableDbError(new DatabaseUnavailable('late'))).toBe(true);
    expect(isRetryableDbError(Object.assign(new Error(), { code: '23514' }))).toBe(false);
    expect(isRetryableDbError(new Error('no code'))).toBe(false);
  });
});

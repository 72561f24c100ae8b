import { describe, expect, it } from 'vitest';
import { type Clock, DatabaseNotReachableError, waitForDatabase } from '../../src/db/connect.js';
import { silentLogger } from '../../src/log.js';

/** A clock that moves only when slept on, and a database that refuses until `upAtMs`. */
function fakeStart(upAtMs = Infinity) {
  let nowMs = 0;
  const attemptsAtMs: number[] = [];
  const clock: Clock = {
    now: () => nowMs,
    sleep: async (ms) => {
      nowMs += ms;
    },
  };
  const attempt = async () => {
    attemptsAtMs.push(nowMs);
    if (nowMs < upAtMs) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  };
  return { clock, attempt, attemptsAtMs, now: () => nowMs };
}

describe('waiting for the database at start', () => {
  it('gives up at DATABASE_CONNECT_TIMEOUT_MS, its last attempt at the deadline, never a pause past it', async () => {
    const f = fakeStart();
    const waiting = waitForDatabase('postgres://unused', 2000, silentLogger, f);
    await expect(waiting).rejects.toThrow(DatabaseNotReachableError);
    await expect(waiting).rejects.toThrow(
      'the database was not reachable within DATABASE_CONNECT_TIMEOUT_MS=2000 (5 attempts over 2 s): connect ECONNREFUSED',
    );
    // 0.25 s doubling; the fifth pause (2 s from 1.75 s) is cut short at the deadline.
    expect(f.attemptsAtMs).toEqual([0, 250, 750, 1750, 2000]);
    expect(f.now()).toBe(2000);
  });

  it('backs off up to 5 s between attempts and connects once the database is up', async () => {
    const f = fakeStart(20_000);
    await waitForDatabase('postgres://unused', 60_000, silentLogger, f);
    expect(f.attemptsAtMs).toEqual([0, 250, 750, 1750, 3750, 7750, 12_750, 17_750, 22_750]);
  });

  it('tries once with DATABASE_CONNECT_TIMEOUT_MS=0, and fails at once on an error a retry cannot cure', async () => {
    const once = fakeStart();
    await expect(waitForDatabase('postgres://unused', 0, silentLogger, once)).rejects.toThrow('(1 attempt over 0 s)');
    expect(once.attemptsAtMs).toEqual([0]);
    const wrongPassword = fakeStart();
    const attempt = async () => {
      wrongPassword.attemptsAtMs.push(wrongPassword.now());
      throw Object.assign(new Error('password authentication failed for user "headcount"'), { code: '28P01' });
    };
    await expect(
      waitForDatabase('postgres://unused', 60_000, silentLogger, { clock: wrongPassword.clock, attempt }),
    ).rejects.toThrow('the database refused the connection: password authentication failed');
    expect(wrongPassword.attemptsAtMs).toEqual([0]);
  });
});

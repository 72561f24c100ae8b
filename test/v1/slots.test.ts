import { describe, expect, it } from 'vitest';
import { HttpError } from '../../src/http/errors.js';
import { Slots } from '../../src/v1/slots.js';

const refusal = async (p: Promise<unknown>): Promise<{ status: number; code: string; retryAfter?: string }> => {
  const err = await p.then(
    () => {
      throw new Error('expected a refusal');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(HttpError);
  const e = err as HttpError;
  return { status: e.status, code: e.code, retryAfter: e.headers['Retry-After'] };
};

describe('slots for running reads', () => {
  it('refuses a key beyond its share with 429 and everyone beyond the total with 503, both with Retry-After', async () => {
    const slots = new Slots('stats queries', 'stats_busy', { maxConcurrent: 3, maxConcurrentPerKey: 2 }, 0, 7);
    const a1 = await slots.acquire('a');
    await slots.acquire('a');
    expect(await refusal(slots.acquire('a'))).toEqual({ status: 429, code: 'too_many_concurrent', retryAfter: '7' });
    await slots.acquire('b');
    expect(await refusal(slots.acquire('c'))).toEqual({ status: 503, code: 'stats_busy', retryAfter: '7' });
    a1();
    a1(); // a second call gives nothing back twice
    const c = await slots.acquire('c');
    expect(await refusal(slots.acquire('d'))).toMatchObject({ status: 503 });
    c();
  });

  it('hands a freed slot to the first waiter that fits, and refuses one that waited too long', async () => {
    const slots = new Slots('exports', 'exports_busy', { maxConcurrent: 2, maxConcurrentPerKey: 1 }, 200, 1);
    const a = await slots.acquire('a');
    const b = await slots.acquire('b');
    const waitingA = slots.acquire('a'); // does not fit until a's slot is back
    const waitingC = slots.acquire('c');
    b();
    // c fits in b's slot; a still holds its share.
    const c = await waitingC;
    a();
    const a2 = await waitingA;
    a2();
    c();
    const late = slots.acquire('x');
    const x1 = await late;
    const y = await slots.acquire('y');
    expect(await refusal(slots.acquire('z'))).toMatchObject({ status: 503, code: 'exports_busy' });
    x1();
    y();
  });
});

import { describe, expect, it } from 'vitest';
import { ByteBudget } from '../../src/http/budget.js';
import { UnavailableError } from '../../src/http/errors.js';

const settled = async (p: Promise<unknown>): Promise<'pending' | 'done' | 'failed'> =>
  Promise.race([p.then(() => 'done' as const, () => 'failed' as const), new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);

describe('ByteBudget', () => {
  it('charges a request only what it has grown to, so a slow body leaves room for others', async () => {
    const budget = new ByteBudget(1000, 50, 1);
    const slow = budget.reserve();
    await slow.growTo(1); // declared much more, sent a byte
    const other = budget.reserve();
    expect(await settled(other.growTo(500))).toBe('done');
    expect(budget.held).toBe(501);
  });

  it('caps one request at its share', async () => {
    const budget = new ByteBudget(1000, 50, 1);
    const r = budget.reserve();
    await r.growTo(10_000);
    expect(r.bytes).toBe(500);
  });

  it('never makes the oldest request wait, so partly received bodies cannot hold each other up', async () => {
    const budget = new ByteBudget(1000, 10_000, 1, Infinity);
    const oldest = budget.reserve();
    const younger = budget.reserve();
    await oldest.growTo(400);
    await younger.growTo(600);
    const stuck = younger.growTo(900);
    expect(await settled(stuck)).toBe('pending');
    expect(await settled(oldest.growTo(1000))).toBe('done');
    oldest.release();
    expect(await settled(stuck)).toBe('done');
    expect(budget.held).toBe(900);
  });

  it('serves waiters oldest first when room is released', async () => {
    const budget = new ByteBudget(1000, 10_000, 1, Infinity);
    const holder = budget.reserve();
    await holder.growTo(500);
    const first = budget.reserve();
    const second = budget.reserve();
    await first.growTo(100);
    await second.growTo(100);
    const secondMore = second.growTo(600);
    const firstMore = first.growTo(500);
    expect([await settled(firstMore), await settled(secondMore)]).toEqual(['pending', 'pending']);
    holder.release();
    expect([await settled(firstMore), await settled(secondMore)]).toEqual(['done', 'pending']);
  });

  it('answers 503 to a request that has waited maxWaitMs in all, and gives back what it held', async () => {
    const budget = new ByteBudget(1000, 30, 1, Infinity);
    const holder = budget.reserve();
    await holder.growTo(500);
    const r = budget.reserve();
    await r.growTo(100);
    await expect(r.growTo(600)).rejects.toBeInstanceOf(UnavailableError);
    r.release();
    expect(budget.held).toBe(500);
  });
});

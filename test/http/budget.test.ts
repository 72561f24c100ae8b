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

  it('lets one waiting request at a time beyond the capacity, so partly received bodies cannot hold each other up', async () => {
    const budget = new ByteBudget(1000, 10_000, 1, Infinity);
    const older = budget.reserve();
    const younger = budget.reserve();
    await older.growTo(400);
    await younger.growTo(500);
    // The budget is full of bodies that want more: the first to wait goes on, alone.
    const olderMore = older.growTo(800);
    const youngerMore = younger.growTo(900);
    expect([await settled(olderMore), await settled(youngerMore)]).toEqual(['done', 'pending']);
    expect(await settled(older.growTo(1000))).toBe('done');
    expect(budget.held).toBe(1500);
    older.release();
    expect(await settled(youngerMore)).toBe('done');
    expect(budget.held).toBe(900);
  });

  /** A budget of 1000 whose one request beyond the capacity is taken (by 200 over 900 held). */
  const fullBudget = async (maxWaitMs: number) => {
    const budget = new ByteBudget(1000, maxWaitMs, 1, Infinity);
    const holder = budget.reserve();
    await holder.growTo(900);
    await budget.reserve().growTo(200);
    return { budget, holder };
  };

  it('serves waiters oldest first when room is released', async () => {
    const { budget, holder } = await fullBudget(10_000);
    const first = budget.reserve();
    const second = budget.reserve();
    const secondMore = second.growTo(500);
    const firstMore = first.growTo(500);
    expect([await settled(firstMore), await settled(secondMore)]).toEqual(['pending', 'pending']);
    holder.release();
    expect([await settled(firstMore), await settled(secondMore)]).toEqual(['done', 'pending']);
  });

  it('answers 503 to a request that has waited maxWaitMs in all, and gives back what it held', async () => {
    const { budget } = await fullBudget(30);
    const r = budget.reserve();
    await expect(r.growTo(600)).rejects.toBeInstanceOf(UnavailableError);
    r.release();
    expect(budget.held).toBe(1100);
  });
});

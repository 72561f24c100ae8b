/**
 * npm run bench: what headcount costs per durable event, against what a user would run
 * instead, measured in the same run: a bare node:http server, Koa + @koa/router with no
 * work, and seed 000's architecture (nginx + ngx_lua + Redis PFADD). Load comes from wrk
 * (bench/wrk.lua); CPU per request from /proc. Then the read path. See docs/benchmarks.md.
 * BENCH_QUICK=1: everything small, about 3 minutes. BENCH_PHASES=dimensions: the volume
 * (every dimension filled) and the dimension phases only (issue 19's targets); core: all
 * but those; cost: only the write's cost and the batch ingest (issue 22's loop); citus:
 * only the service on a local Citus cluster beside one PostgreSQL (issue 21).
 *
 * Each phase is a function of bench/phases/ taking the stack it measures (BenchContext)
 * and what earlier phases found, and returning its own figures; main runs them in order.
 */
import os from 'node:os';
import type { MigrateOptions } from '../src/db/migrate.js';
import { floorDay } from '../src/time.js';
import { stopChild } from './service.js';
import { ensureWrk } from './wrk.js';
import { measureAccuracy } from './phases/accuracy.js';
import { measureBatchIngest } from './phases/batch.js';
import { measureCitus } from './phases/citus.js';
import { type BenchContext, describeMachine, progress, readSettings, type Settings } from './phases/context.js';
import { measureCost } from './phases/cost.js';
import { measureDimensionIngest } from './phases/dims-ingest.js';
import { measureDimensionQueries } from './phases/dims-queries.js';
import { reportDimensions } from './phases/dims-results.js';
import { measureDimensionStorage } from './phases/dims-storage.js';
import { measureReadAfterWrite } from './phases/read-after-write.js';
import { measureReadPath } from './phases/read-path.js';
import { reportResults } from './phases/results.js';
import { startReferences, startStack, stopStack } from './phases/stack.js';
import { measureVolume, seedVolume, type Volume } from './phases/volume.js';

const env = process.env;

function announce(settings: Settings, machine: string): void {
  console.log(`headcount benchmark${settings.quick ? ' (QUICK: BENCH_QUICK=1, everything small)' : ''}: ${machine}`);
  console.log(`settings: ${JSON.stringify(settings)}`);
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other tenants of the machine)`,
  );
}

async function main(): Promise<void> {
  const steps = progress(); // the steps' clock starts here, before wrk's install
  const settings = readSettings(env);
  const machine = describeMachine();
  announce(settings, machine);
  if (!(await ensureWrk())) {
    console.log('npm run bench needs wrk: install the Debian package wrk');
    process.exit(2);
  }

  if (settings.phases === 'citus') {
    // Clusters of its own (one PostgreSQL, a Citus cluster), not the run's stack.
    await measureCitus(settings, steps);
    return;
  }
  const ctx = await startStack(settings, steps, {
    pgPort: Number(env.BENCH_PG_PORT ?? 54339),
    storageMode: (env.STORAGE_MODE as MigrateOptions['storageMode'] | undefined) ?? 'auto',
  });
  const core = settings.phases !== 'dimensions';
  const dimensions = settings.phases !== 'core';
  const today = floorDay(Date.now());
  if (core) {
    const refs = await startReferences(ctx.progress);
    const cost = await measureCost(ctx, refs);
    await refs.stop();
    const batchIngest = await measureBatchIngest(ctx);
    await stopChild(ctx.service2.child);
    if (settings.phases === 'cost') {
      // Only what a write costs (issue 22's loop): no read path, no volume.
      await reportResults(ctx, { machine, cost, batchIngest, latency: [], currentHourEvents: 0, accuracy: [], volumeEvents: 0 });
      await stopStack(ctx);
      return;
    }

    const readPath = await measureReadPath(ctx, today);
    const accuracy = await measureAccuracy(ctx, today);
    const readAfterWrite = await measureReadAfterWrite(ctx, today, accuracy.days);
    const volume = await seedVolume(ctx, today, accuracy.days);
    const volumeLatency = await measureVolume(ctx, today, volume);

    await reportResults(ctx, {
      machine,
      cost,
      batchIngest,
      latency: [...readPath.latency, readAfterWrite.row, ...volumeLatency],
      readAfterWrite: readAfterWrite.result,
      currentHourEvents: readPath.currentHourEvents,
      accuracy: accuracy.rows,
      volumeEvents: volume?.events ?? 0,
    });
    if (dimensions && volume) await measureDimensions(ctx, machine, today, volume);
  } else {
    await stopChild(ctx.service2.child);
    const volume = await seedVolume(ctx, today, []);
    if (volume) await measureDimensions(ctx, machine, today, volume);
  }
  await stopStack(ctx);
}

/** Issue 19's targets over the volume: storage, query latency and accuracy, then ingest (it adds events to today). */
async function measureDimensions(ctx: BenchContext, machine: string, today: number, volume: Volume): Promise<void> {
  const storage = await measureDimensionStorage(ctx);
  const queries = await measureDimensionQueries(ctx, today);
  const ingest = await measureDimensionIngest(ctx);
  reportDimensions(ctx, { machine, volume, storage, queries, ingest });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

/**
 * What the benchmark needs from the machine: Debian packages (installed when it runs as
 * root, as src/db/local-cluster.ts installs PostgreSQL's) and CPU time read from /proc,
 * so that a run measures what each request costs, not only how many there were.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { Sql } from '../src/db/client.js';

const execFileAsync = promisify(execFile);
const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Makes sure each of `files` exists, installing `packages` with apt-get when root.
 * Returns false (and says why, on one visible line) when they are missing and cannot be
 * installed here: the caller skips what needs them.
 */
export async function ensurePackages(packages: string[], files: string[], what: string): Promise<boolean> {
  if (files.every((f) => existsSync(f))) return true;
  const skip = (why: string): false => {
    console.log(`         SKIPPED ${what}: ${why} (apt-get install ${packages.join(' ')})`);
    return false;
  };
  if (!isRoot() || !existsSync('/usr/bin/apt-get')) return skip(`${packages.join(', ')} not installed and not root`);
  console.log(`         installing ${packages.join(', ')} (apt-get) for ${what}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = (): Promise<unknown> =>
    execFileAsync('apt-get', ['install', '-y', '-q', ...packages], { env, maxBuffer: 64 * 1024 * 1024 });
  try {
    await install();
  } catch {
    try {
      // A fresh machine may have no package lists yet.
      await execFileAsync('apt-get', ['update', '-q'], { env, maxBuffer: 64 * 1024 * 1024 });
      await install();
    } catch (err) {
      return skip(`apt-get failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return files.every((f) => existsSync(f)) || skip(`installed, but ${files.filter((f) => !existsSync(f)).join(', ')} missing`);
}

/** Clock ticks per second of /proc's CPU times (USER_HZ: 100 on Linux). */
export const CLOCK_TICKS = 100;

/** Busy time of the whole machine, in ticks (every CPU): all but idle and iowait. */
export function machineBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest is counted in user)
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
  return user + nice + system + irq + softirq + steal;
}

/** utime, stime, cutime, cstime of one process (every thread; children it has reaped). */
export function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0; // gone: its time is in its parent's cutime once reaped
  }
}

export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU ticks of a process and all its live descendants. A descendant that exits moves its
 * time into its parent's cutime/cstime, so the sum only grows: take it before and after.
 */
export function treeTicks(pid: number): number {
  let sum = processTicks(pid);
  for (const child of childPids(pid)) sum += treeTicks(child);
  return sum;
}

/** The pid of the backend serving `sql`'s connection (a pool of one), for processTicks. */
export const backendPid = async (sql: Sql): Promise<number> =>
  (await sql<[{ pid: number }]>`select pg_backend_pid() as pid`)[0].pid;

/** The postmaster of a cluster (first line of postmaster.pid), if it runs. */
export function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(`${dataDir}/postmaster.pid`, 'utf8').split('\n')[0]);
    return Number.isInteger(pid) && existsSync(`/proc/${pid}`) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** A set of processes whose CPU a run accounts separately. */
export interface Accounted {
  [name: string]: number | undefined;
}

export interface CpuSnapshot {
  machine: number;
  parts: Record<string, number>;
}

export function cpuSnapshot(parts: Accounted): CpuSnapshot {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(parts)) if (pid !== undefined) out[name] = treeTicks(pid);
  return { machine: machineBusyTicks(), parts: out };
}

/** Ticks spent between two snapshots, whole machine and per part. */
export function cpuSpent(a: CpuSnapshot, b: CpuSnapshot): CpuSnapshot {
  const parts: Record<string, number> = {};
  for (const name of Object.keys(b.parts)) parts[name] = b.parts[name]! - (a.parts[name] ?? 0);
  return { machine: b.machine - a.machine, parts };
}

/**
 * Waits until process `pid` and its descendants (a cluster's postmaster) are quiet: at
 * most `quietTicks` of CPU over a window of `windowMs`, or `maxMs` have passed. Returns
 * the ticks each accounted part spent meanwhile: the tail of the work a round set off (a
 * roller draining its queue, autovacuum, a checkpoint's writes), which a measurement that
 * stops with its load would leave to whatever runs next.
 */
export async function settle(
  pid: number,
  parts: Accounted,
  opts: { windowMs?: number; quietTicks?: number; maxMs?: number } = {},
): Promise<{ parts: Record<string, number>; waitedMs: number }> {
  const windowMs = opts.windowMs ?? 500;
  const quietTicks = opts.quietTicks ?? 2;
  const maxMs = opts.maxMs ?? 30_000;
  const start = performance.now();
  const first = cpuSnapshot(parts);
  let last = treeTicks(pid);
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = treeTicks(pid);
    const busy = now - last;
    last = now;
    if (busy <= quietTicks || performance.now() - start >= maxMs) break;
  }
  return { parts: cpuSpent(first, cpuSnapshot(parts)).parts, waitedMs: performance.now() - start };
}

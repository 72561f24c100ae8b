/**
 * Closed-loop load with wrk (C, one event loop per thread: it saturates a bare node:http
 * server that autocannon could not), plus what the run cost in CPU: the whole machine's
 * busy time from /proc/stat, wrk's own (its shell's cutime once it has exited), and the
 * parts named by the caller (service process tree, PostgreSQL) from /proc/<pid>/stat.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { type Accounted, CLOCK_TICKS, cpuSnapshot, cpuSpent, ensurePackages } from './system.js';

export const WRK = '/usr/bin/wrk';
const SCRIPT = path.resolve('bench/wrk.lua');

export const ensureWrk = (): Promise<boolean> => ensurePackages(['wrk'], [WRK], 'wrk, the load generator');

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Answers that were not 2xx/3xx. */
  non2xx: number;
  cpu: {
    /** Microseconds of CPU per request: the whole machine's busy time less wrk's. */
    machineLessWrkUs: number;
    /** wrk's own CPU per request (µs). */
    wrkUs: number;
    /** Each accounted part's CPU per request (µs). */
    parts: Record<string, number>;
    /** What is left: the machine less wrk and the parts (this bench's own process, other tenants). */
    otherUs: number;
    /** Each part's and wrk's busy share of one core during the run (1 = one core saturated). */
    coreShare: Record<string, number>;
  };
}

/**
 * `wrk -t<threads> -c<connections> -d<durationS>s` with bench/wrk.lua in `mode`
 * (collect, analytics, events <n>). `account` names the processes whose CPU is split out.
 */
export async function wrk(opts: {
  url: string;
  connections: number;
  durationS: number;
  threads?: number;
  mode: string[];
  account?: Accounted;
}): Promise<WrkResult> {
  const threads = opts.threads ?? 1;
  const args = [
    `-t${threads}`,
    `-c${opts.connections}`,
    `-d${opts.durationS}s`,
    '--timeout',
    '10s',
    '-s',
    SCRIPT,
    opts.url,
    '--',
    ...opts.mode,
  ];
  // The shell waits for wrk and then prints its own /proc stat: fields cutime and cstime
  // then hold wrk's whole CPU time, threads included, which /proc/<wrk>/stat can no
  // longer show once wrk has exited.
  const shell = `${WRK} "$@"; rc=$?; echo "WRK_SHELL_STAT $(cat /proc/$$/stat)"; exit $rc`;
  const before = cpuSnapshot(opts.account ?? {});
  const wallStart = performance.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', shell, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(stdout) : reject(new Error(`wrk ${args.join(' ')} exited with ${code}:\n${stdout}${stderr}`)),
    );
  });
  const wallS = (performance.now() - wallStart) / 1000;
  const spent = cpuSpent(before, cpuSnapshot(opts.account ?? {}));
  const json = /WRK_JSON (\{.*\})/.exec(out)?.[1];
  const shellStat = /WRK_SHELL_STAT (.*)/.exec(out)?.[1];
  if (!json || !shellStat) throw new Error(`could not read wrk's output:\n${out}`);
  const r = JSON.parse(json) as Record<string, number>;
  const f = shellStat.slice(shellStat.lastIndexOf(')') + 2).split(' ');
  const wrkTicks = Number(f[13]) + Number(f[14]);
  const requests = r.requests!;
  const perRequestUs = (ticks: number): number => (requests > 0 ? ((ticks / CLOCK_TICKS) * 1e6) / requests : NaN);
  const parts: Record<string, number> = {};
  const coreShare: Record<string, number> = { wrk: wrkTicks / CLOCK_TICKS / wallS };
  let partsTicks = 0;
  for (const [name, ticks] of Object.entries(spent.parts)) {
    parts[name] = perRequestUs(ticks);
    coreShare[name] = ticks / CLOCK_TICKS / wallS;
    partsTicks += ticks;
  }
  coreShare.machine = spent.machine / CLOCK_TICKS / wallS;
  const durationS = r.durationUs! / 1e6;
  return {
    requests,
    durationS,
    requestsPerSec: requests / durationS,
    p50Ms: r.p50Us! / 1000,
    p90Ms: r.p90Us! / 1000,
    p99Ms: r.p99Us! / 1000,
    maxMs: r.maxUs! / 1000,
    errors: r.connect! + r.read! + r.write! + r.timeout!,
    non2xx: r.status!,
    cpu: {
      machineLessWrkUs: perRequestUs(spent.machine - wrkTicks),
      wrkUs: perRequestUs(wrkTicks),
      parts,
      otherUs: perRequestUs(spent.machine - wrkTicks - partsTicks),
      coreShare,
    },
  };
}

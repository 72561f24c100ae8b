import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** Debian's docker-compose (no engine needed) validates and renders the file. */
const hasDockerCompose = (() => {
  try {
    execFileSync('docker-compose', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasDockerCompose)
  console.log('docker-compose.yml: not validated, docker-compose is not installed (apt-get install docker-compose)');

// The run's summary lists this suite as skipped where docker-compose is absent.
describe.skipIf(!hasDockerCompose)('docker-compose.yml (docker-compose config)', () => {
  // An empty env file: a developer's own .env must not decide the outcome.
  const noEnvFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'headcount-compose-')), 'empty.env');
  fs.writeFileSync(noEnvFile, '');
  afterAll(() => fs.rmSync(path.dirname(noEnvFile), { recursive: true, force: true }));
  const config = (env: Record<string, string>) =>
    run('docker-compose', ['-f', 'docker-compose.yml', '--env-file', noEnvFile, 'config'], {
      env: { PATH: process.env.PATH, ...env },
    });

  it('is valid, pins a Community timescaledb-ha image, checks the database over TCP and publishes on loopback', async () => {
    const { stdout } = await config({ POSTGRES_PASSWORD: 'from-dot-env' });
    expect(stdout).toMatch(/image: timescale\/timescaledb-ha:pg17\.\d+-ts2\.\d+\.\d+\n/);
    expect(stdout).not.toContain('-oss');
    expect(stdout).toMatch(/- pg_isready\n\s+- -h\n\s+- 127\.0\.0\.1/);
    expect(stdout).toContain('TIMESCALEDB_TELEMETRY: "off"');
    expect(stdout).toContain('TS_TUNE_MEMORY:');
    expect(stdout).toContain('TS_TUNE_NUM_CPUS:');
    expect(stdout).toContain('shm_size:');
    expect(stdout.match(/restart: unless-stopped/g)).toHaveLength(2);
    expect(stdout).toContain('- 127.0.0.1:8080:8080');
    expect(stdout).toContain('DATABASE_URL: postgres://headcount:from-dot-env@db:5432/headcount');
  });

  it('refuses to start without POSTGRES_PASSWORD, saying where to set it', async () => {
    await expect(config({})).rejects.toMatchObject({ stderr: expect.stringContaining('set POSTGRES_PASSWORD in .env') });
  });
});

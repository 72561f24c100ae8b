import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/db.js';
import { startServer } from '../helpers/server.js';

/** `npm run migrate -- <args>` on `databaseUrl`: its exit code and what it wrote. */
async function migrateCli(databaseUrl: string, args: string[]): Promise<{ code: unknown; output: string }> {
  const child = spawn(process.execPath, [path.resolve('dist/cli/migrate.js'), ...args], {
    env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  return { code, output };
}

describe('npm run migrate', () => {
  it('refuses to go down while a service is connected to the database, unless --force', async () => {
    const db = await createTestDatabase('postgres');
    try {
      const applied = async () => (await db.sql`select count(*)::int as n from pgmigrations`)[0]?.n as number;
      const before = await applied();
      const server = await startServer({ DATABASE_URL: db.url });
      try {
        const refused = await migrateCli(db.url, ['down']);
        expect(refused.code).toBe(1);
        expect(refused.output).toMatch(/a service is connected to the database \(\d+ sessions?: headcount from /);
        expect(refused.output).toContain('stop it first, or give --force');
        expect(await applied()).toBe(before);

        const forced = await migrateCli(db.url, ['down', '--force']);
        expect(forced).toMatchObject({ code: 0 });
        expect(await applied()).toBe(before - 1);
      } finally {
        server.child.kill('SIGTERM');
        await server.exited;
      }
      // The service gone, down needs no --force (the test's own sessions are not a service).
      expect(await migrateCli(db.url, ['down'])).toMatchObject({ code: 0 });
      expect(await applied()).toBe(before - 2);
    } finally {
      await db.drop();
    }
  });
});

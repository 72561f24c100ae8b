import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { psqlInvocation } from '../../src/db/psql.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

describe('npm run psql', () => {
  it('moves the password from the URL to PGPASSWORD, keeping the rest of the URL', () => {
    const { args, env } = psqlInvocation('postgres://headcount:p%40ss%2Fw0rd@db.example:6432/headcount?sslmode=require', [
      '-c',
      'select 1',
    ]);
    expect(args).toEqual(['postgres://headcount@db.example:6432/headcount?sslmode=require', '-c', 'select 1']);
    expect(env).toEqual({ PGPASSWORD: 'p@ss/w0rd' });
    expect(args.join(' ')).not.toContain('p%40ss');
  });

  describe('on DATABASE_URL', () => {
    let db: TestDatabase;
    beforeAll(async () => {
      db = await createTestDatabase('postgres');
    });
    afterAll(async () => db?.drop());

    it('opens psql on the configured database, authenticated by the password it was given', async () => {
      const child = spawn(process.execPath, [path.resolve('dist/cli/psql.js'), '-At', '-c', 'select current_database()'], {
        env: { PATH: process.env.PATH, DATABASE_URL: db.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise((resolve) => child.once('exit', resolve));
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout.trim()).toBe(new URL(db.url).pathname.slice(1));
    });
  });
});

import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { psqlInvocation } from '../../src/db/psql.js';
import { createTestDatabase } from '../helpers/db.js';

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

  it('opens psql on DATABASE_URL, authenticated by the password it was given', async () => {
    const db = await createTestDatabase('postgres');
    try {
      const child = spawn(process.execPath, [path.resolve('dist/cli/psql.js'), '-At', '-c', 'select current_database()'], {
        env: { PATH: process.env.PATH, DATABASE_URL: db.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      expect(await new Promise((resolve) => child.once('exit', resolve))).toBe(0);
      expect(output.trim()).toBe(new URL(db.url).pathname.slice(1));
    } finally {
      await db.drop();
    }
  });
});

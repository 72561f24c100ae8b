import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../src/v1/openapi/document.js';
import { START_NODE_FLAGS, VERSION } from '../src/version.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string; engines: { node: string } };

describe('the version', () => {
  it("is package.json's, in the OpenAPI document too", () => {
    expect(VERSION).toBe(pkg.version);
    expect(openApiDocument().info.version).toBe(pkg.version);
  });

  it('has its section in CHANGELOG.md, and so has every earlier release', () => {
    const headings = [...readFileSync('CHANGELOG.md', 'utf8').matchAll(/^## (\d+\.\d+\.\d+)\b/gm)].map((m) => m[1]);
    expect(headings[0]).toBe(pkg.version);
    expect(headings).toEqual(['0.3.0', '0.2.0', '0.1.0']);
  });

  it('asks for a Node that has what the code uses (process.loadEnvFile, util.parseEnv: 20.12)', () => {
    expect(pkg.engines.node).toBe('>=20.12');
  });

  it("runs Node with npm start's flags in the image too (the Dockerfile's CMD)", () => {
    expect(START_NODE_FLAGS).toContain('--heap-growing-percent=50');
    const cmd = /^CMD (\[.*\])$/m.exec(readFileSync('Dockerfile', 'utf8'))?.[1];
    const words = JSON.parse(cmd ?? '[]') as string[];
    expect(words).toEqual(['node', ...START_NODE_FLAGS, 'dist/server.js']);
  });
});

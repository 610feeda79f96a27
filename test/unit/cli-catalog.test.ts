// The catalog answers --version and --help without commander or any command
// module: its rows must say what the modules really declare, and running
// it must really load nothing else.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Help } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS, topHelp } from '../../src/cli/catalog.js';
import { buildProgram } from '../../src/cli/program.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const io = { stdout: () => {}, stderr: () => {} };

describe('the command catalog', () => {
  it('has one row per top-level command, with the usage commander derives from the module', async () => {
    const program = await buildProgram(io);
    const help = new Help();
    const real = program.commands.filter((c) => c.name() !== 'help');
    expect(real.map((c) => c.name()).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
    for (const row of COMMANDS) {
      const cmd = real.find((c) => c.name() === row.name)!;
      expect(help.subcommandTerm(cmd), row.name).toBe(row.term);
      expect(cmd.description(), row.name).toBe(row.description);
    }
  });

  it('lists every command in the top-level help, wrapped only when there is room', () => {
    const text = topHelp(80);
    for (const row of COMMANDS) expect(text).toContain(`  ${row.term} `);
    const wide = topHelp(300);
    expect(wide.split('\n').some((l) => l.length > 80)).toBe(true);
    const narrow = topHelp(60);
    // Too narrow to wrap descriptions beside the terms: they stay whole, as commander leaves them.
    expect(narrow).toContain(COMMANDS[4]!.description);
  });

  it('answers --version and --help without loading commander or any command module', () => {
    // CommonJS modules loaded through import (commander, bindings) show in require's cache.
    const script = `
      import { createRequire } from 'node:module';
      const { main } = await import(${JSON.stringify(path.join(ROOT, 'dist/cli/main.js'))});
      const io = { stdout: () => {}, stderr: () => {} };
      const codes = [await main(['--version'], io), await main(['--help'], io), await main(['-h'], io)];
      const loaded = Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules\\/(commander|bindings)\\//.test(k));
      console.log(JSON.stringify({ codes, loaded }));
      if (process.argv[1] === 'control') await main(['list', '--pin-dir', '/nonexistent-nstool-dir'], io);
      console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache).filter((k) => /node_modules\\/(commander|bindings)\\//.test(k)).length));
    `;
    const run = (arg: string) => {
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script, arg], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    };
    const [first, after] = run('plain');
    expect(first).toEqual({ codes: [0, 0, 0], loaded: [] });
    expect(after).toBe(0);
    // The control: running a command does load them, so the probe can see a load.
    const [, control] = run('control');
    expect(control).toBeGreaterThan(0);
  });
});

#!/usr/bin/env node
// npm's install step. The package ships prebuilt binaries (the addon and the
// nstool-spawn helper) for linux-x64 and linux-arm64 with glibc; when they run here nothing
// is built. Otherwise both are built from source with node-gyp, and when that
// cannot work (no Python, compiler or make) one message says what is missing
// and the line that installs it, instead of gyp's stack.
import { spawnSync } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const where = `${process.platform}-${process.arch}`;

function firstLine(err) {
  return String(err?.message ?? err).split('\n')[0].trim();
}

function isExecutable(p) {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function statSafe(p) {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => dir && isExecutable(path.join(dir, name)));
}

/** null when the shipped prebuild serves here, else why not. */
function prebuildProblem() {
  // Only the shipped prebuilds: a build/ left in the package is not ours to trust.
  process.env.PREBUILDS_ONLY = '1';
  let addon;
  try {
    addon = require('node-gyp-build').path(root);
  } catch {
    return `no prebuilt binary for ${where}`;
  }
  try {
    require(addon);
  } catch (err) {
    return `the prebuilt binary for ${where} does not load here (${firstLine(err)})`;
  }
  const helper = path.join(path.dirname(addon), 'nstool-spawn');
  const r = spawnSync(helper, ['--', process.execPath, 'node', '-e', ''], { stdio: 'ignore' });
  if (r.error || r.status !== 0) return `the prebuilt nstool-spawn for ${where} does not run here`;
  return null;
}

function fail(why, missing) {
  const need = missing.length ? ` (missing: ${missing.join(', ')})` : '';
  process.stderr.write(
    `nstool: cannot install: ${why}, and building it from source needs python3, make and g++${need}.\n` +
      'nstool: on Debian/Ubuntu run `apt-get install -y python3 make g++`, then install again\n',
  );
  process.exit(1);
}

const v = process.env.npm_config_build_from_source;
const fromSource = v === 'true' || v === 'nstool';
const why = fromSource ? 'a build from source was asked for' : prebuildProblem();
if (why === null) process.exit(0);

// What node-gyp will look for, so a missing tool is named up front.
const missing = [];
if (!process.env.PYTHON && !process.env.npm_config_python && !onPath('python3') && !onPath('python')) missing.push('python3');
if (!onPath('make')) missing.push('make');
const cxx = process.env.CXX?.split(' ')[0] || 'g++';
if (!(cxx.includes('/') ? isExecutable(cxx) : onPath(cxx))) missing.push('g++');
if (missing.length) fail(why, missing);

// The package's own node-gyp (a checkout), else the one npm ships.
let gyp;
try {
  gyp = [process.execPath, require.resolve('node-gyp/bin/node-gyp.js')];
} catch {
  gyp = process.env.npm_config_node_gyp ? [process.execPath, process.env.npm_config_node_gyp] : ['node-gyp'];
}
// Against the running Node's own headers when it has them: no download.
const prefix = path.resolve(path.dirname(process.execPath), '..');
const env = { ...process.env };
if (!env.npm_config_nodedir && statSafe(path.join(prefix, 'include/node/node_api.h'))) {
  env.npm_config_nodedir = prefix;
}
const r = spawnSync(gyp[0], [...gyp.slice(1), 'rebuild'], { cwd: root, stdio: 'inherit', env });
if (r.error || r.status !== 0) {
  process.stderr.write(`nstool: cannot install: ${why}, and the build from source failed (node-gyp's output above).\n`);
  process.exit(1);
}

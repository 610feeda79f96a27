#!/usr/bin/env node
// Pack-time build of the binaries the package ships (npm's prepack):
// prebuilds/<platform>-<arch>/ gets the addon, built by prebuildify against
// N-API (one file serves every Node >= 20), and the nstool-spawn helper,
// which prebuildify does not know about. Both come from a staged copy of the
// native sources, so packing never rebuilds the checkout's own build/ under
// tests that are using it. `--clean` (postpack) removes prebuilds/ again: a
// checkout builds from source, and a stale prebuild must never shadow it.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = path.join(root, 'prebuilds');
const require = createRequire(import.meta.url);

rmSync(prebuilds, { recursive: true, force: true });
if (process.argv[2] === '--clean') process.exit(0);

const platform = os.platform();
const stage = mkdtempSync(path.join(os.tmpdir(), 'nstool-prebuild-'));

/** Builds both artifacts for ARCH into prebuilds/<platform>-<arch>/; TOOLS prefixes a cross toolchain. */
async function prebuild(arch, tools = '') {
  const saved = { ...process.env };
  if (tools) Object.assign(process.env, { CC: `${tools}gcc`, CXX: `${tools}g++`, AR: `${tools}ar` });
  try {
    await new Promise((resolve, reject) => {
      prebuildify(
        { cwd: stage, out: root, arch, napi: true, targets: [process.versions.node], strip: true, stripBin: `${tools}strip`, tagLibc: true },
        (err) => (err ? reject(err) : resolve()),
      );
    });
  } finally {
    process.env = saved;
  }
  const helper = path.join(prebuilds, `${platform}-${arch}`, 'nstool-spawn');
  copyFileSync(path.join(stage, 'build/Release/nstool-spawn'), helper);
  execFileSync(`${tools}strip`, ['--strip-all', helper], { stdio: 'inherit' });
  chmodSync(helper, 0o755);
  console.error(`nstool: prebuilt ${path.relative(root, path.dirname(helper))}/ (addon and nstool-spawn)`);
}

function onPath(name) {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && existsSync(path.join(d, name)));
}

const prebuildify = require('prebuildify');
try {
  for (const f of ['package.json', 'binding.gyp', 'native']) cpSync(path.join(root, f), path.join(stage, f), { recursive: true });
  // binding.gyp asks node-addon-api for its headers; node-gyp comes from .bin.
  symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'));
  // Build against the running Node's own headers when it has them (no download).
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  if (!process.env.npm_config_nodedir && existsSync(path.join(prefix, 'include/node/node_api.h'))) {
    process.env.npm_config_nodedir = prefix;
  }

  await prebuild(os.arch());
  // linux-arm64 too where Debian's cross compiler is installed (g++-aarch64-linux-gnu).
  const cross = 'aarch64-linux-gnu-';
  if (platform === 'linux' && os.arch() === 'x64' && onPath(`${cross}g++`)) await prebuild('arm64', cross);
} finally {
  rmSync(stage, { recursive: true, force: true });
}

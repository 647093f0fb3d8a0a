#!/usr/bin/env node
'use strict';
// Builds the FUSE binding: fuse-native with fusestream's patch (patches/) and C (native/),
// against the system's libfuse. npm runs it after every install (`postinstall`), in a clone
// (`npm ci`, `npm link`) and in an installed package (`npm install -g fusestream-*.tgz`), so
// it is plain JavaScript (nothing is compiled yet when it runs) and needs no dev dependency.
//
// It builds only when something it builds from changed since the last build (a stamp beside
// the binary says what that was): `npm link` or a second install must never rebuild a working
// binding, and a rebuild that fails puts the previous binary back rather than leave none.
// `--force` builds anyway (`npm run build:binding`, after editing native/).

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs/promises');
const path = require('node:path');
const { applyPatch, parsePatch, reversePatch } = require('diff');

const PACKAGE_ROOT = path.resolve(__dirname, '..');
const NATIVE_DIR = __dirname;
const PATCH_DIR = path.join(PACKAGE_ROOT, 'patches');
const STAMP = 'fusestream-stamp.json';

class InstallError extends Error {}

async function main () {
  const force = process.argv.includes('--force');
  const fuseDir = path.dirname(require.resolve('fuse-native/package.json', { paths: [PACKAGE_ROOT] }));
  // binding.gyp (patched) takes our C from ../../native: fuse-native must sit in our own node_modules.
  if (path.resolve(fuseDir, '..', '..', 'native') !== NATIVE_DIR) {
    throw new InstallError(`fuse-native is at ${fuseDir}, not in ${path.join(PACKAGE_ROOT, 'node_modules')}, where the build expects it`);
  }
  const version = JSON.parse(await fs.readFile(path.join(fuseDir, 'package.json'), 'utf8')).version;
  const patchFile = path.join(PATCH_DIR, `fuse-native+${version}.patch`);
  const patchText = await fs.readFile(patchFile, 'utf8').catch(() => {
    throw new InstallError(`no patch for fuse-native ${version} in ${PATCH_DIR}: fusestream builds the version its lockfile names`);
  });
  const patchedNow = await applyOnce(fuseDir, patchText, patchFile);

  const stamp = await sourcesStamp(patchText);
  const binary = path.join(fuseDir, 'build', 'Release', 'fuse.node');
  if (!force && !patchedNow && await readStamp(fuseDir) === stamp && await exists(binary)) {
    log('the FUSE binding is up to date');
    return;
  }
  await rebuild(fuseDir);
  await fs.writeFile(path.join(fuseDir, 'build', STAMP), JSON.stringify({ stamp }) + '\n');
  log(`built the FUSE binding: ${binary}`);
}

/**
 * Applies the patch to fuse-native's files, unless they already carry it (a second install,
 * `npm link`); true when it changed any.
 */
async function applyOnce (fuseDir, patchText, patchFile) {
  const changes = [];
  for (const filePatch of parsePatch(patchText)) {
    const rel = filePatch.newFileName.replace(/^b\/node_modules\/fuse-native\//, '');
    const file = path.join(fuseDir, rel);
    const current = await fs.readFile(file, 'utf8');
    if (applyPatch(current, reversePatch(filePatch)) !== false) continue; // already patched
    const patched = applyPatch(current, filePatch);
    if (patched === false) {
      throw new InstallError(
        `${file} is neither fuse-native's as published nor patched with ${patchFile}: reinstall (npm ci in a clone)`
      );
    }
    changes.push({ file, patched });
  }
  // Written only once every file has patched cleanly, so a failure leaves the package as it was.
  for (const { file, patched } of changes) await fs.writeFile(file, patched);
  if (changes.length > 0) log(`patched fuse-native (${changes.length} files)`);
  return changes.length > 0;
}

/** What the binary is built from: the patch, our C, and the machine it is built for. */
async function sourcesStamp (patchText) {
  const hash = crypto.createHash('sha256').update(patchText);
  const names = (await fs.readdir(NATIVE_DIR)).filter(n => /\.[ch]$/.test(n)).sort();
  for (const name of names) hash.update(name).update(await fs.readFile(path.join(NATIVE_DIR, name)));
  hash.update(`${process.platform}-${process.arch}`);
  return hash.digest('hex');
}

async function readStamp (fuseDir) {
  try {
    return JSON.parse(await fs.readFile(path.join(fuseDir, 'build', STAMP), 'utf8')).stamp;
  } catch {
    return null;
  }
}

/** `node-gyp rebuild`, keeping the previous build aside until the new one has succeeded. */
async function rebuild (fuseDir) {
  const build = path.join(fuseDir, 'build');
  const previous = path.join(fuseDir, 'build.previous');
  await fs.rm(previous, { recursive: true, force: true });
  const hadBuild = await exists(build);
  if (hadBuild) await fs.rename(build, previous);
  const code = await run(process.execPath, [nodeGyp(), 'rebuild', ...await nodeHeaders()], fuseDir);
  if (code === 0) {
    await fs.rm(previous, { recursive: true, force: true });
    return;
  }
  await fs.rm(build, { recursive: true, force: true });
  if (hadBuild) await fs.rename(previous, build);
  const kept = hadBuild ? ' The previous build was kept.' : '';
  const needs = process.platform === 'darwin'
    ? 'macFUSE 4 or 5 and the command line tools (xcode-select --install)'
    : 'libfuse2 libfuse-dev pkg-config python3 make g++ (Debian/Ubuntu package names)';
  throw new InstallError(`building the FUSE binding failed (node-gyp exit status ${code}): it needs ${needs}.${kept}`);
}

/** npm's own node-gyp: npm names it to the scripts it runs; by hand, it sits beside npm. */
function nodeGyp () {
  if (process.env.npm_config_node_gyp) return process.env.npm_config_node_gyp;
  return path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}

/**
 * Builds against the headers of the Node.js that runs this, where they are installed beside it
 * (Debian's nodejs, Homebrew, the official tarballs), rather than have node-gyp download them:
 * that download fails offline and behind proxies, and is what broke a user's rebuild.
 */
async function nodeHeaders () {
  if (process.env.npm_config_nodedir) return [];
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return await exists(path.join(prefix, 'include', 'node', 'common.gypi')) ? [`--nodedir=${prefix}`] : [];
}

function run (command, args, cwd) {
  return new Promise(resolve => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'inherit', 'inherit'] });
    child.on('error', () => resolve(127));
    child.on('exit', code => resolve(code ?? 1));
  });
}

function exists (file) {
  return fs.access(file).then(() => true, () => false);
}

function log (message) {
  process.stderr.write(`fusestream: ${message}\n`);
}

main().catch(err => {
  log(err instanceof InstallError ? err.message : (err.stack ?? String(err)));
  process.exitCode = 1;
});

#!/usr/bin/env node
/**
 * The executable. Checks the Node.js major before loading anything else, so an
 * old runtime gets a clear message instead of an obscure import error.
 *
 * @module
 */
// The default import: a named one would fail to link on an old Node.js before the check below could say why.
import nodeModule from 'node:module';

const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
if (major < REQUIRED_MAJOR) {
  process.stderr.write(
    `kube-vertex-proxy needs Node.js ${REQUIRED_MAJOR} or newer; this is ${process.version}.\n` +
      'From a clone, run it through npm (npm start, npx kube-vertex-proxy …): the project pins Node.js 24 as a dependency.\n',
  );
  process.exit(1);
}
// Stack traces point at the TypeScript lines of the proxy's own code. The packages' source maps are not loaded: parsing every
// package's map was about 3 MiB of resident memory for frames that rarely matter (NODE_OPTIONS=--enable-source-maps, if set,
// still maps them all).
if (!process.sourceMapsEnabled) nodeModule.setSourceMapsSupport(true, { nodeModules: false, generatedCode: false });
const { run } = await import('./cli/main.js');
run(process.argv.slice(2));

'use strict';
// Loads parley_node.node, the Node-API addon over the C API, and checks it
// matches the library it loaded.

const fs = require('node:fs');
const path = require('node:path');

// PARLEY_NODE_ADDON, else beside the package's index.js, else the repository's build
// directories (the package is bindings/node of the repository; this file is in its lib/).
function addonCandidates() {
  if (process.env.PARLEY_NODE_ADDON) return [path.resolve(process.env.PARLEY_NODE_ADDON)];
  const pkg = path.join(__dirname, '..');
  const root = path.join(pkg, '..', '..');
  return [
    path.join(pkg, 'parley_node.node'),
    path.join(pkg, 'build', 'parley_node.node'),
    path.join(root, 'build', 'bindings', 'node', 'parley_node.node'),
  ];
}

function loadAddon() {
  const tried = addonCandidates();
  for (const file of tried) {
    if (fs.existsSync(file)) return require(file);
  }
  throw new Error(
    `parley: the native addon parley_node.node was not found (tried ${tried.join(', ')}). ` +
      'Build it (cmake --build build --target parley_node) or set PARLEY_NODE_ADDON to its path.');
}

const addon = loadAddon();
if (addon.versionNumber !== addon.headerVersionNumber) {
  throw new Error(`parley: the addon was built against parley.h ${addon.headerVersionNumber} ` +
    `but loaded library ${addon.version} (${addon.versionNumber}): rebuild parley_node`);
}

module.exports = addon;

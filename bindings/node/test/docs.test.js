'use strict';
// docs/node.md: every `js` code block runs as written, in a project that
// installed the package as the page says (npm install --offline PATH), and
// prints what its `// comments` after console.log(...) say.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { packageDir, repoDir } = require('./helpers');

const page = path.join(repoDir, 'docs', 'node.md');

function codeBlocks(markdown, lang) {
  const blocks = [];
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm');
  for (let m; (m = re.exec(markdown)); ) {
    const line = markdown.slice(0, m.index).split('\n').length;
    blocks.push({ code: m[1], line });
  }
  return blocks;
}

// `console.log(...);  // expected output` -> a pattern for that output
// (PORT stands for a number, "..." for anything).
function expectations(code) {
  const out = [];
  for (const line of code.split('\n')) {
    const m = line.match(/console\.log\(.*\);\s+\/\/ (.+)$/);
    if (!m) continue;
    const parts = m[1].split(/(PORT|\.\.\.)/).map((p) => {
      if (p === 'PORT') return '\\d+';
      if (p === '...') return '.*';
      return p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    });
    out.push(new RegExp(parts.join('')));
  }
  return out;
}

const blocks = codeBlocks(fs.readFileSync(page, 'utf8'), 'js');

test('docs/node.md has the quick starts', () => {
  assert.ok(blocks.length >= 3, `found ${blocks.length} js blocks`);
});

let project;
test.before(() => {
  project = fs.mkdtempSync(path.join(os.tmpdir(), 'parley-node-docs-'));
  const r = spawnSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', packageDir], {
    cwd: project,
    encoding: 'utf8',
    timeout: 120000,
  });
  assert.equal(r.status, 0, `npm install --offline ${packageDir}: ${r.stderr}`);
});
test.after(() => fs.rmSync(project, { recursive: true, force: true }));

// Built without parley-server (PARLEY_BUILD_EXAMPLES=OFF), the blocks that start one skip.
const noServer = process.env.PARLEY_WITHOUT_SERVER === '1';

for (const [i, block] of blocks.entries()) {
  const skip = noServer && block.code.includes('Server.start') && 'built without parley-server';
  test(`docs/node.md block ${i + 1} (line ${block.line})`, { skip }, () => {
    const file = path.join(project, `block${i + 1}.js`);
    fs.writeFileSync(file, block.code);
    const r = spawnSync(process.execPath, [file], { cwd: project, encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, `exit ${r.status} ${r.signal ?? ''}\n${r.stdout}\n${r.stderr}`);
    for (const expected of expectations(block.code)) {
      assert.match(r.stdout, expected, `output of block ${i + 1}:\n${r.stdout}`);
    }
  });
}

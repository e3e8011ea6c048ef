#!/usr/bin/env node
// Compile wallet/contracts/**/*.sol offline with solc-js and OpenZeppelin from node_modules.
// Writes one JSON artifact per contract (ABI, bytecode, compiler settings, source hashes) to
// the output folder (default wallet/artifacts). Deterministic: same sources, same bytes.
// Usage: node wallet/compile.js [OUT_DIR]
"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const solc = require("solc");

const SOLC_VERSION = "0.8.28"; // pinned: package.json pins the same solc-js release
const EVM_VERSION = "cancun"; // py-evm's PragueVM (embedded chain) and anvil both run it
const ROOT = path.resolve(__dirname, "..");
const SRC_DIR = path.join(__dirname, "contracts");
const OUT_DIR = path.resolve(process.argv[2] || path.join(__dirname, "artifacts"));

function fail(msg) {
  process.stderr.write(`compile: ${msg}\n`);
  process.exit(1);
}

if (!solc.version().startsWith(SOLC_VERSION + "+")) {
  fail(`solc-js ${solc.version()} found, ${SOLC_VERSION} required (run npm ci)`);
}

function listSol(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listSol(p));
    else if (e.name.endsWith(".sol")) out.push(p);
  }
  return out;
}

const sources = {};
for (const f of listSol(SRC_DIR)) {
  const key = "contracts/" + path.relative(SRC_DIR, f).split(path.sep).join("/");
  sources[key] = { content: fs.readFileSync(f, "utf8") };
}

function findImports(p) {
  const candidate = path.join(ROOT, "node_modules", p);
  if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  return { error: `import not found: ${p}` };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: EVM_VERSION,
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object", "metadata"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
const errors = (output.errors || []).filter((e) => e.severity === "error");
for (const e of output.errors || []) process.stderr.write(e.formattedMessage + "\n");
if (errors.length) fail(`${errors.length} error(s)`);

fs.mkdirSync(OUT_DIR, { recursive: true });
const written = [];
for (const [file, contracts] of Object.entries(output.contracts)) {
  if (!file.startsWith("contracts/")) continue; // only our own contracts, not OpenZeppelin's
  for (const [name, c] of Object.entries(contracts)) {
    if (!c.evm.bytecode.object) continue; // interfaces and abstract contracts
    const meta = JSON.parse(c.metadata);
    const sourceHashes = {};
    for (const [src, m] of Object.entries(meta.sources).sort()) sourceHashes[src] = m.keccak256;
    const artifact = {
      contractName: name,
      sourceName: file,
      compiler: { solc: solc.version(), evmVersion: EVM_VERSION, optimizerRuns: 200 },
      sourceHashes,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    artifact.sha256 = crypto.createHash("sha256").update(artifact.bytecode).digest("hex");
    fs.writeFileSync(path.join(OUT_DIR, `${name}.json`), JSON.stringify(artifact, null, 1) + "\n");
    written.push(name);
  }
}
process.stdout.write(`compiled ${written.sort().join(", ")} -> ${OUT_DIR}\n`);

// Normalizes probe strings with Hugging Face tokenizers' NFC/NFD/NFKC/NFKD normalizers.
// Input: one probe per line, as comma-separated decimal code points. Output: JSON lines
// {"probe": [...], "NFC": [...], "NFD": [...], "NFKC": [...], "NFKD": [...]} (code points).
// Used by gen_unicode_normalization.cpp; see docs/tokenizers.md ("Unicode tables").
//
//   node tests/parity/unicode_normalization_reference.js probes.txt > reference.jsonl
'use strict';
const fs = require('fs');
const path = require('path');
const tk = require(path.join(__dirname, '..', '..', 'node_modules', 'tokenizers'));

const probes = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter((l) => l.length > 0)
  .map((l) => l.split(',').map(Number));
const forms = { NFC: tk.nfcNormalizer(), NFD: tk.nfdNormalizer(), NFKC: tk.nfkcNormalizer(), NFKD: tk.nfkdNormalizer() };
const results = probes.map((p) => ({ probe: p }));
const CHUNK = 20000;
for (const [name, normalizer] of Object.entries(forms)) {
  for (let start = 0; start < probes.length; start += CHUNK) {
    // Probes never contain U+000A, so one call can normalize many of them at once: a newline is
    // a starter that composes with nothing.
    const chunk = probes.slice(start, start + CHUNK).map((p) => String.fromCodePoint(...p));
    const normalized = normalizer.normalizeString(chunk.join('\n')).split('\n');
    if (normalized.length !== chunk.length) throw new Error('a probe changed the line structure');
    normalized.forEach((s, k) => { results[start + k][name] = [...s].map((c) => c.codePointAt(0)); });
  }
}
process.stdout.write(results.map((r) => JSON.stringify(r)).join('\n') + '\n');

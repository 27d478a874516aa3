// llama.cpp's CPU speed on a GGUF file, measured beside ternlm-bench on the
// same machine in the same hour (these shared machines' speed swings by up
// to 2x from hour to hour, so figures from another hour do not compare).
// It drives the llama.cpp build that node-llama-cpp ships prebuilt (the
// only llama.cpp the package registries here offer), llama-bench style: a
// warm-up round, then pp (one batch of N random tokens) and tg (N one-token
// decode steps, no sampling), medians of R rounds.
//
//   npm install --prefix /tmp/nlc --ignore-scripts node-llama-cpp@3.22.1
//   NLC_DIR=/tmp/nlc node scripts/llamacpp_bench.mjs MODEL [THREADS] [TG] [PP] [ROUNDS]
//
// Use one thread: with two on a two-core machine, node's own threads take
// turns with ggml's and decode runs slower than with one (68-112 t/s
// against 186-199 on mid1024 Q4_K; docs/performance.md, session 23).
import path from "node:path";

const dir = process.env.NLC_DIR || "/tmp/nlc";
const {getLlama, LlamaLogLevel} = await import(path.join(dir, "node_modules/node-llama-cpp/dist/index.js"));
const [,, modelPath, threads = "1", nGen = "64", nPrompt = "128", rounds = "3"] = process.argv;
if (!modelPath) {
    console.error("usage: node llamacpp_bench.mjs MODEL [THREADS] [TG] [PP] [ROUNDS]");
    process.exit(2);
}
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.warn, maxThreads: +threads});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const ctx = await model.createContext({contextSize: 1024, batchSize: 512, threads: +threads});
const seq = ctx.getSequence();
const tokens = n => Array.from({length: n}, (_, i) => 100 + (i * 7919) % 20000);
const median = a => a.slice().sort((x, y) => x - y)[a.length >> 1];
const pp = [], tg = [];
for (let r = 0; r <= +rounds; ++r) { // round 0 warms up
    await seq.clearHistory();
    let t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(tokens(+nPrompt));
    const tp = (performance.now() - t0) / 1000;
    await seq.clearHistory();
    t0 = performance.now();
    for (let n = 0; n < +nGen; ++n) await seq.evaluateWithoutGeneratingNewTokens([100 + n]);
    const tt = (performance.now() - t0) / 1000;
    if (r > 0) {
        pp.push(+nPrompt / tp);
        tg.push(+nGen / tt);
    }
}
const fmt = a => `${median(a).toFixed(1)} (${Math.min(...a).toFixed(1)}-${Math.max(...a).toFixed(1)})`;
console.log(`llama.cpp cpu ${path.basename(modelPath)} threads ${threads}: pp${nPrompt} ${fmt(pp)} t/s, tg${nGen} ${fmt(tg)} t/s`);
process.exit(0);

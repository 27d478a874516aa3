// ternlm-bench — prefill (pp) and decode (tg) speed, as llama-bench reports
// it, with the memory-bandwidth roofline beside each figure.
//
//   ternlm-bench -m MODEL [-p 128] [-n 64] [-t THREADS] [-r 3] [-b cpu|vulkan] [--json] [--profile]
//   ternlm-bench --synthetic mid1024|llama1b|llama8b|bitnet2b --type q4_k -o OUT.gguf
//
// Roofline: bytes that must be read per decoded token (every matrix once,
// one row of token_embd unless it is also the output) divided by the read
// bandwidth this machine shows to a streaming kernel with the same threads.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/thread_pool.hpp"
#include "backend/cpu/vec_dot.hpp"
#ifdef TERNLM_HAVE_VULKAN
#include "backend/vulkan/bandwidth.hpp"
#include "backend/vulkan/weights.hpp"
#endif
#include "common/error.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "synthetic.hpp"

#if defined(__AVX2__)
#include <immintrin.h>
#endif

using namespace ternlm;

namespace {

struct Options {
    std::string model, synthetic, type = "q4_k", out;
    int n_prompt = 128, n_gen = 64, threads = 0, reps = 3;
    int depth = 0; // tokens already in the KV cache when pp and tg start (llama-bench's -d)
    int n_gpu_layers = -1; // -ngl: layers on the GPU (the last ones); -1 all that fit
    tern_backend backend = TERN_BACKEND_CPU;
    bool json = false;
    bool profile = false; // Vulkan: GPU time per kernel over one prefill and one decode run
};

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best-of-5 read bandwidth (GB/s) over a 1 GiB buffer, split across threads.
double measure_bandwidth(int threads) {
    const size_t n = (size_t(1) << 30) / sizeof(float);
    std::vector<float> buf(n, 1.0f);
    cpu::ThreadPool pool(threads);
    double best = 0;
    std::vector<float> sink(static_cast<size_t>(threads));
    for (int rep = 0; rep < 5; ++rep) {
        const double t0 = now_s();
        pool.run_on_all([&](int idx, int nt) {
            const size_t b = n / size_t(nt) * size_t(idx), e = idx + 1 == nt ? n : n / size_t(nt) * size_t(idx + 1);
#if defined(__AVX2__)
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t i = b; i + 32 <= e; i += 32) {
                a0 = _mm256_add_ps(a0, _mm256_load_ps(&buf[i]));
                a1 = _mm256_add_ps(a1, _mm256_load_ps(&buf[i + 8]));
                a2 = _mm256_add_ps(a2, _mm256_load_ps(&buf[i + 16]));
                a3 = _mm256_add_ps(a3, _mm256_load_ps(&buf[i + 24]));
            }
            float tmp[8];
            _mm256_storeu_ps(tmp, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
            sink[size_t(idx)] = tmp[0];
#else
            float s = 0;
            for (size_t i = b; i < e; ++i) s += buf[i];
            sink[size_t(idx)] = s;
#endif
        });
        best = std::max(best, double(n * sizeof(float)) / (now_s() - t0) / 1e9);
    }
    return best;
}

// Of a mixture of experts' matrices, the share a token uses.
double bytes_per_token(const Model &m) {
    const gguf::File &f = m.file();
    const HParams &hp = m.hparams();
    double total = 0;
    for (const auto &t : f.tensors()) {
        const bool experts = t.name.size() > 12 && t.name.compare(t.name.size() - 12, 12, "_exps.weight") == 0;
        total += double(t.nbytes) * (experts ? double(hp.n_expert_used) / double(hp.n_expert) : 1.0);
    }
    const gguf::TensorInfo *emb = f.find_tensor("token_embd.weight");
    if (emb && f.find_tensor("output.weight")) total -= double(emb->nbytes) - double(emb->nbytes) / double(emb->ne[1]);
    return total;
}

struct Stat {
    double median, lo, hi;
};
Stat stats(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return {v[v.size() / 2], v.front(), v.back()};
}

// The backend's label and its measured read bandwidth (GB/s): the CPU's with
// the bench's threads, or the Vulkan device's with a streaming kernel.
struct Device {
    std::string label;
    double bandwidth_gbs;
};
Device probe(const Model &m, int threads) {
#ifdef TERNLM_HAVE_VULKAN
    if (m.backend() == TERN_BACKEND_VULKAN) {
        vk::Device &d = m.gpu_weights()->device();
        return {"vulkan/" + d.info().name, vk::measure_read_bandwidth(d)};
    }
#endif
    return {std::string("cpu/") + cpu::isa_name(cpu::detected_isa()), measure_bandwidth(threads)};
}

// Dispatches recorded so far (Vulkan); 0 on the CPU.
uint64_t dispatch_count(const Model &m) {
#ifdef TERNLM_HAVE_VULKAN
    if (m.backend() == TERN_BACKEND_VULKAN) return m.gpu_weights()->device().dispatches();
#endif
    return 0;
}

// Vulkan --profile: one more prefill of the prompt, or one more decode run
// of n_gen tokens, with a timestamp around every dispatch, printed as GPU
// time per token by kernel and shape.
void print_profile(const Model &m, Context &ctx, const std::function<void(Context &)> &fill_depth,
                   const std::vector<int32_t> &toks, bool prefill) {
#ifdef TERNLM_HAVE_VULKAN
    if (m.backend() != TERN_BACKEND_VULKAN) return;
    vk::Device &d = m.gpu_weights()->device();
    ctx.kv_clear();
    fill_depth(ctx);
    d.clear_kernel_times();
    d.set_profiling(true);
    const double t0 = now_s();
    if (prefill)
        ctx.prefill(toks.data(), toks.size());
    else
        for (int32_t t : toks) ctx.decode_step(t);
    const double wall_ms = (now_s() - t0) * 1e3 / double(toks.size());
    d.set_profiling(false);
    const auto times = d.kernel_times();
    double gpu_ms = 0;
    for (const auto &kv : times) gpu_ms += kv.second.ms;
    std::vector<std::pair<double, std::string>> order;
    for (const auto &kv : times) order.push_back({-kv.second.ms, kv.first});
    std::sort(order.begin(), order.end());
    std::printf("\nGPU time per %s token by kernel (%zu tokens; timed %.3f ms of %.3f ms wall per token):\n",
                prefill ? "prefilled" : "decoded", toks.size(), gpu_ms / double(toks.size()), wall_ms);
    std::printf("| kernel shape | calls/token | us/token | us/call | share |\n|---|---|---|---|---|\n");
    for (const auto &o : order) {
        const vk::KernelTime &t = times.at(o.second);
        std::printf("| %s | %.1f | %.1f | %.2f | %.1f%% |\n", o.second.c_str(), double(t.calls) / double(toks.size()),
                    t.ms * 1e3 / double(toks.size()), t.ms * 1e3 / double(t.calls), 100.0 * t.ms / gpu_ms);
    }
#else
    (void)m, (void)ctx, (void)fill_depth, (void)toks, (void)prefill;
#endif
}

int run_bench(const Options &o) {
    ModelParams mp;
    mp.backend = o.backend;
    mp.n_threads = o.threads;
    mp.n_gpu_layers = o.n_gpu_layers;
    const double t_load = now_s();
    auto model = Model::load(o.model, mp);
    std::fprintf(stderr, "loaded %s in %.1f s on %s\n", o.model.c_str(), now_s() - t_load,
                 model->backend_description().c_str());
    const int threads = model->n_threads();
    ContextParams cp;
    cp.n_ctx = o.depth + std::max(o.n_prompt, o.n_gen) + 8;
    cp.n_batch = std::max({o.n_prompt, o.depth, 1});
    Context ctx(*model, cp);
    std::mt19937 rng(1);
    const int n_vocab = model->hparams().n_vocab;
    auto random_tokens = [&](int n) {
        std::vector<int32_t> t(static_cast<size_t>(n));
        for (auto &x : t) x = int32_t(rng() % uint32_t(n_vocab));
        return t;
    };
    // Each measurement starts from a cache holding `depth` tokens.
    const auto fill_depth = [&](Context &c) {
        if (o.depth > 0) c.prefill(random_tokens(o.depth).data(), size_t(o.depth));
    };
    // Warm-up, untimed: page the weights in, and run each test's shapes once,
    // so that its kernels are built, its buffers sized and the device's
    // clocks up before the first timed repetition (without it, the first
    // pp512 on the H100 ran at a tenth of the others' speed, and -r 3's
    // median sometimes fell on a slow one).
    ctx.prefill(random_tokens(std::max(o.n_prompt, 8)).data(), size_t(std::max(o.n_prompt, 8)));
    std::vector<double> pp, tg;
    uint64_t tg_dispatches = 0;
    // All of a test's repetitions together, prefill's then decode's, as
    // llama-bench runs them (taking turns, the H100's pp512 after each tg128
    // ran 3% below its figure alone).
    for (int r = 0; r < o.reps; ++r) {
        if (o.n_prompt > 0) {
            ctx.kv_clear();
            fill_depth(ctx);
            const auto toks = random_tokens(o.n_prompt);
            const double t0 = now_s();
            ctx.prefill(toks.data(), toks.size());
            pp.push_back(o.n_prompt / (now_s() - t0));
        }
    }
    if (o.n_gen > 0) { // decode's warm-up
        ctx.kv_clear();
        for (int32_t t : random_tokens(std::min(o.n_gen, 8))) ctx.decode_step(t);
    }
    for (int r = 0; r < o.reps; ++r) {
        if (o.n_gen > 0) {
            ctx.kv_clear();
            fill_depth(ctx);
            const auto toks = random_tokens(o.n_gen);
            const uint64_t d0 = dispatch_count(*model);
            const double t0 = now_s();
            for (int32_t t : toks) ctx.decode_step(t);
            tg.push_back(o.n_gen / (now_s() - t0));
            tg_dispatches = (dispatch_count(*model) - d0) / uint64_t(o.n_gen);
        }
    }
    if (o.profile && o.n_prompt > 0) print_profile(*model, ctx, fill_depth, random_tokens(o.n_prompt), true);
    if (o.profile && o.n_gen > 0) print_profile(*model, ctx, fill_depth, random_tokens(o.n_gen), false);
    // "pp512", or "pp512 @ d4096" as llama-bench names a test at depth.
    const auto test_name = [&](const char *kind, int n) {
        std::string t = kind + std::to_string(n);
        return o.depth > 0 ? t + " @ d" + std::to_string(o.depth) : t;
    };
    const Device dev = probe(*model, threads);
    const double bw = dev.bandwidth_gbs;
    const double bpt = bytes_per_token(*model);
    const double roof = bw * 1e9 / bpt;
    const std::string name = model->file().get_string("general.name", o.model);
    const char *isa = dev.label.c_str();
    if (o.json) {
        std::printf("{\"model\": \"%s\", \"backend\": \"%s\", \"threads\": %d, \"bandwidth_gbs\": %.2f, "
                    "\"bytes_per_token\": %.0f, \"roofline_tps\": %.1f, \"dispatches_per_token\": %llu, \"depth\": %d",
                    name.c_str(), isa, threads, bw, bpt, roof, (unsigned long long)tg_dispatches, o.depth);
        if (!pp.empty()) {
            const Stat s = stats(pp);
            std::printf(", \"pp%d\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f}", o.n_prompt, s.median, s.lo, s.hi);
        }
        if (!tg.empty()) {
            const Stat s = stats(tg);
            std::printf(", \"tg%d\": {\"median\": %.1f, \"min\": %.1f, \"max\": %.1f, \"roofline_share\": %.3f}", o.n_gen,
                        s.median, s.lo, s.hi, s.median / roof);
        }
        std::printf("}\n");
        return 0;
    }
    std::printf("| model | backend | threads | test | t/s (median, min-max of %d) | MB read/token | roofline t/s | share |\n",
                o.reps);
    std::printf("|---|---|---|---|---|---|---|---|\n");
    const double mb = bpt / 1e6;
    if (!pp.empty()) {
        const Stat s = stats(pp);
        std::printf("| %s | %s | %d | %s | %.1f (%.1f-%.1f) | | | |\n", name.c_str(), isa, threads,
                    test_name("pp", o.n_prompt).c_str(), s.median, s.lo, s.hi);
    }
    if (!tg.empty()) {
        const Stat s = stats(tg);
        std::printf("| %s | %s | %d | %s | %.1f (%.1f-%.1f) | %.1f | %.0f | %.0f%% |\n", name.c_str(), isa, threads,
                    test_name("tg", o.n_gen).c_str(), s.median, s.lo, s.hi, mb, roof, 100.0 * s.median / roof);
    }
    std::printf("\nread bandwidth measured on %s: %.1f GB/s", isa, bw);
    if (tg_dispatches) std::printf("; %llu dispatches per decoded token", (unsigned long long)tg_dispatches);
    std::printf("\n");
    return 0;
}

void usage() {
    std::fprintf(stderr,
                 "usage: ternlm-bench -m MODEL [-p N] [-n N] [-d DEPTH] [-t THREADS] [-r REPS] [-b cpu|vulkan|auto] [--json]\n"
                 "                    [-ngl N] [--profile]\n"
                 "       ternlm-bench --synthetic SHAPE --type TYPE -o OUT.gguf\n"
                 "shapes: mid1024 llama1b llama8b bitnet2b bitnet-moe; types: f32 f16 bf16 q8_0 q4_0 q5_0 q4_k q5_k q6_k tq1_0 tq2_0 i2_s\n");
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto val = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-m") o.model = val();
        else if (a == "-p") o.n_prompt = std::atoi(val().c_str());
        else if (a == "-n") o.n_gen = std::atoi(val().c_str());
        else if (a == "-ngl") o.n_gpu_layers = std::atoi(val().c_str());
        else if (a == "-d") o.depth = std::max(0, std::atoi(val().c_str()));
        else if (a == "-t") o.threads = std::atoi(val().c_str());
        else if (a == "-r") o.reps = std::max(1, std::atoi(val().c_str()));
        else if (a == "--json") o.json = true;
        else if (a == "--profile") o.profile = true;
        else if (a == "-b" || a == "--backend") {
            const std::string b = val();
            if (b == "cpu") o.backend = TERN_BACKEND_CPU;
            else if (b == "vulkan") o.backend = TERN_BACKEND_VULKAN;
            else if (b == "auto") o.backend = TERN_BACKEND_AUTO;
            else {
                usage();
                return 2;
            }
        }
        else if (a == "--synthetic") o.synthetic = val();
        else if (a == "--type") o.type = val();
        else if (a == "-o") o.out = val();
        else {
            usage();
            return 2;
        }
    }
    try {
        if (!o.synthetic.empty()) {
            const bench::Shape *s = bench::find_shape(o.synthetic);
            GgmlType t;
            if (!s || !type_from_name(o.type, &t) || o.out.empty()) {
                usage();
                return 2;
            }
            bench::write_synthetic(*s, t, o.out, 1234);
            return 0;
        }
        if (o.model.empty()) {
            usage();
            return 2;
        }
        return run_bench(o);
    } catch (const Failure &e) {
        std::fprintf(stderr, "ternlm-bench: %s (%s)\n", e.what(), tern_status_name(e.status()));
        return 1;
    }
}

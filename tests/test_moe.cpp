// Mixture-of-experts FFN: routing, the CPU kernel against a scalar
// reference, and models written here (bitnet-style, ternary experts).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "backend/cpu/moe.hpp"
#include "common/error.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "gguf/gguf.hpp"
#include "quant/reference.hpp"
#include "support/files.hpp"
#include "support/random_blocks.hpp"
#include "support/vulkan.hpp"
#include "support/weights.hpp"

using namespace ternlm;
using testsupport::float_bytes;
using testsupport::random_matrix_bytes;
using testsupport::weight_ref;

namespace {

std::vector<double> dequantized(const WeightRef &w) {
    std::vector<float> f(size_t(w.ne0) * size_t(w.ne1));
    for (int64_t r = 0; r < w.ne1; ++r) dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, f.data() + r * w.ne0, w.ne0);
    return std::vector<double>(f.begin(), f.end());
}

// y = W x in double.
std::vector<double> product(const WeightRef &w, const std::vector<double> &x) {
    const auto m = dequantized(w);
    std::vector<double> y(size_t(w.ne1), 0.0);
    for (int64_t r = 0; r < w.ne1; ++r)
        for (int64_t c = 0; c < w.ne0; ++c) y[size_t(r)] += m[size_t(r * w.ne0 + c)] * x[size_t(c)];
    return y;
}

// One row of the MoE FFN's output, in double (backend::MoeFfn's definition).
std::vector<double> reference_moe(const MoeFfn &moe, const float *xn_row, int64_t n_embd) {
    const std::vector<double> x(xn_row, xn_row + n_embd);
    const auto logits = product(moe.router, x);
    const int n_expert = int(logits.size());
    const double mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t e = 0; e < p.size(); ++e) sum += (p[e] = std::exp(logits[e] - mx));
    std::vector<int> order(static_cast<size_t>(n_expert));
    for (int e = 0; e < n_expert; ++e) order[size_t(e)] = e;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
    double used = 0;
    for (int j = 0; j < moe.n_used; ++j) used += p[size_t(order[size_t(j)])];
    std::vector<double> out(size_t(n_embd), 0.0);
    for (int j = 0; j < moe.n_used; ++j) {
        const int e = order[size_t(j)];
        auto g = product(moe.gate[size_t(e)], x), u = product(moe.up[size_t(e)], x);
        for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1.0 + std::exp(-g[i])) * u[i]; // silu(g) * u
        const auto d = product(moe.down[size_t(e)], g);
        for (int64_t c = 0; c < n_embd; ++c) out[size_t(c)] += p[size_t(e)] / used * d[size_t(c)];
    }
    return out;
}

} // namespace

TEST_CASE("MoE routing takes the most probable experts, ties to the lower index", "[moe]") {
    const float logits[] = {1, 3, 3, 0, /* row 2 */ -1, 2, 0.5f, 2};
    const cpu::Routing r = cpu::route(logits, 2, 4, 2);
    CHECK(r.experts == std::vector<int32_t>{1, 2, 1, 3});
    CHECK(r.weights[0] == 0.5f);
    CHECK(r.weights[1] == 0.5f);
    CHECK(r.weights[2] == 0.5f);
    const cpu::Routing one = cpu::route(logits, 2, 4, 1);
    CHECK(one.experts == std::vector<int32_t>{1, 1});
    CHECK(one.weights == std::vector<float>{1.0f, 1.0f});
}

TEST_CASE("The CPU MoE FFN matches a scalar reference", "[moe]") {
    std::mt19937 rng(31);
    const int64_t n_embd = 256, n_ff = 512;
    const int n_expert = 5, n_used = 2;
    cpu::ThreadPool pool(2);
    cpu::MatmulScratch scratch;
    cpu::MoeScratch moe_scratch;
    // F32 experts are checked closely. Quantized ones multiply 8-bit
    // activations, twice (x, then the gated activation), which moves outputs
    // by up to ~3% of the largest here; a wrong expert or weight would move
    // them by their own size.
    for (GgmlType t : {GgmlType::F32, GgmlType::TQ2_0, GgmlType::Q4_K}) {
        for (int n : {1, 7}) {
            DYNAMIC_SECTION(type_name(t) << ", " << n << " rows") {
                const auto router = random_matrix_bytes(GgmlType::F32, n_expert, n_embd, rng);
                std::vector<std::vector<uint8_t>> mats;
                MoeFfn moe;
                moe.router = weight_ref(router, GgmlType::F32, n_embd, n_expert, "router");
                moe.n_used = n_used;
                for (int e = 0; e < n_expert; ++e) {
                    mats.push_back(random_matrix_bytes(t, n_ff, n_embd, rng));
                    moe.gate.push_back(weight_ref(mats.back(), t, n_embd, n_ff, "gate"));
                    mats.push_back(random_matrix_bytes(t, n_ff, n_embd, rng));
                    moe.up.push_back(weight_ref(mats.back(), t, n_embd, n_ff, "up"));
                    mats.push_back(random_matrix_bytes(t, n_embd, n_ff, rng));
                    moe.down.push_back(weight_ref(mats.back(), t, n_ff, n_embd, "down"));
                }
                const auto xn = testsupport::random_floats(n * n_embd, rng);
                std::vector<float> x(size_t(n) * size_t(n_embd), 0.5f);
                cpu::moe_ffn(pool, moe, xn.data(), n, n_embd, x.data(), scratch, moe_scratch);
                for (int r = 0; r < n; ++r) {
                    const auto want = reference_moe(moe, xn.data() + r * n_embd, n_embd);
                    double scale = 0;
                    for (double v : want) scale = std::max(scale, std::fabs(v));
                    const double tol = (t == GgmlType::F32 ? 1e-4 : 6e-2) * scale;
                    for (int64_t c = 0; c < n_embd; ++c) {
                        INFO("row " << r << ", column " << c);
                        REQUIRE(std::fabs(double(x[size_t(r * n_embd + c)]) - 0.5 - want[size_t(c)]) <= tol);
                    }
                }
            }
        }
    }
}

namespace {

// A bitnet-style model (sub-norms, TQ2_0 matrices) whose FFN is dense, or
// a mixture of n_expert experts. Experts' matrices come from the same
// random stream as the dense FFN's, so a one-expert model holds the dense
// model's weights.
std::string write_model(const std::string &path, int n_expert, int n_used) {
    const int64_t E = 256, F = 512, V = 64, L = 2;
    const int n_head = 4, n_head_kv = 2;
    const int64_t KV = E / n_head * n_head_kv;
    std::mt19937 rng(7);
    gguf::Writer w;
    w.set_str("general.architecture", "bitnet");
    w.set_u32("bitnet.context_length", 256);
    w.set_u32("bitnet.embedding_length", uint32_t(E));
    w.set_u32("bitnet.block_count", uint32_t(L));
    w.set_u32("bitnet.feed_forward_length", uint32_t(F));
    w.set_u32("bitnet.attention.head_count", uint32_t(n_head));
    w.set_u32("bitnet.attention.head_count_kv", uint32_t(n_head_kv));
    if (n_expert > 0) {
        w.set_u32("bitnet.expert_count", uint32_t(n_expert));
        w.set_u32("bitnet.expert_used_count", uint32_t(n_used));
    }
    std::vector<std::string> vocab = {"<unk>", "<s>", "</s>"};
    while (int64_t(vocab.size()) < V) vocab.push_back("t" + std::to_string(vocab.size()));
    w.set_str("tokenizer.ggml.model", "llama");
    w.set_str_array("tokenizer.ggml.tokens", vocab);
    const GgmlType T = GgmlType::TQ2_0;
    auto matrix = [&](const std::string &name, int64_t cols, int64_t rows, int64_t count = 0) {
        std::vector<int64_t> ne = {cols, rows};
        if (count) ne.push_back(count);
        w.add_tensor_bytes(name, T, ne, random_matrix_bytes(T, rows * std::max<int64_t>(count, 1), cols, rng));
    };
    auto norm = [&](const std::string &name, int64_t n) {
        std::uniform_real_distribution<float> u(0.5f, 1.5f);
        std::vector<float> v(static_cast<size_t>(n));
        for (float &f : v) f = u(rng);
        w.add_tensor_bytes(name, GgmlType::F32, {n}, float_bytes(v));
    };
    w.add_tensor_bytes("token_embd.weight", GgmlType::F32, {E, V}, float_bytes(testsupport::random_floats(E * V, rng)));
    norm("output_norm.weight", E);
    for (int64_t i = 0; i < L; ++i) {
        const std::string p = "blk." + std::to_string(i) + ".";
        norm(p + "attn_norm.weight", E);
        matrix(p + "attn_q.weight", E, E);
        matrix(p + "attn_k.weight", E, KV);
        matrix(p + "attn_v.weight", E, KV);
        matrix(p + "attn_output.weight", E, E);
        norm(p + "attn_sub_norm.weight", E);
        norm(p + "ffn_norm.weight", E);
        norm(p + "ffn_sub_norm.weight", F);
        if (n_expert > 0) {
            w.add_tensor_bytes(p + "ffn_gate_inp.weight", GgmlType::F32, {E, n_expert},
                               float_bytes(testsupport::random_floats(E * n_expert, rng)));
            matrix(p + "ffn_gate_exps.weight", E, F, n_expert);
            matrix(p + "ffn_up_exps.weight", E, F, n_expert);
            matrix(p + "ffn_down_exps.weight", F, E, n_expert);
        } else {
            testsupport::random_floats(E, rng); // what the router would have drawn
            matrix(p + "ffn_gate.weight", E, F);
            matrix(p + "ffn_up.weight", E, F);
            matrix(p + "ffn_down.weight", F, E);
        }
    }
    w.write(path);
    return path;
}

using testsupport::TempPath;

std::vector<float> run(const Model &m, const std::vector<int32_t> &prompt, int n_decode, bool all_rows = false) {
    ContextParams cp;
    cp.n_ctx = 64;
    cp.logits_all = all_rows;
    Context c(m, cp);
    c.prefill(prompt.data(), prompt.size());
    std::vector<float> out;
    const int n_vocab = m.hparams().n_vocab;
    for (int r = 0; r < c.logits_rows(); ++r) out.insert(out.end(), c.logits_row(r), c.logits_row(r) + n_vocab);
    for (int i = 0; i < n_decode; ++i) {
        c.decode_step(int32_t(3 + i));
        out.insert(out.end(), c.logits(), c.logits() + n_vocab);
    }
    return out;
}

} // namespace

TEST_CASE("A one-expert MoE model computes what the dense model does", "[moe]") {
    TempPath dense_path("dense"), moe_path("moe1");
    write_model(dense_path.path, 0, 0);
    write_model(moe_path.path, 1, 1);
    ModelParams mp;
    mp.n_threads = 2;
    const auto dense = Model::load(dense_path.path, mp);
    const auto moe = Model::load(moe_path.path, mp);
    REQUIRE(moe->hparams().n_expert == 1);
    const std::vector<int32_t> prompt = {1, 10, 20, 30, 40};
    CHECK(run(*moe, prompt, 3) == run(*dense, prompt, 3));
}

TEST_CASE("A MoE model's batched prefill agrees with its decode steps", "[moe]") {
    TempPath path("moe4");
    write_model(path.path, 4, 2);
    ModelParams mp;
    mp.n_threads = 2;
    const auto m = Model::load(path.path, mp);
    CHECK(m->hparams().n_expert_used == 2);
    const std::vector<int32_t> prompt = {1, 11, 12, 13, 14, 15};
    // Row by row, each token routed on its own, against the batch.
    const auto batch = run(*m, prompt, 0, true);
    std::vector<float> steps;
    {
        ContextParams cp;
        cp.n_ctx = 64;
        Context c(*m, cp);
        for (int32_t t : prompt) {
            c.decode_step(t);
            steps.insert(steps.end(), c.logits(), c.logits() + m->hparams().n_vocab);
        }
    }
    REQUIRE(batch.size() == steps.size());
    double scale = 0, err = 0;
    for (size_t i = 0; i < batch.size(); ++i) {
        scale = std::max(scale, double(std::fabs(batch[i])));
        err = std::max(err, double(std::fabs(batch[i] - steps[i])));
    }
    CHECK(err <= 1e-3 * scale);
}

#ifdef TERNLM_HAVE_VULKAN
TEST_CASE("A MoE model on Vulkan computes what it does on the CPU", "[vulkan][moe]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    TempPath path("moe4v");
    write_model(path.path, 4, 2);
    ModelParams mp;
    mp.n_threads = 2;
    const auto cpu_model = Model::load(path.path, mp);
    mp.backend = TERN_BACKEND_VULKAN;
    const auto gpu_model = Model::load(path.path, mp);
    REQUIRE(gpu_model->backend() == TERN_BACKEND_VULKAN);
    const std::vector<int32_t> prompt = {1, 11, 12, 13, 14, 15};
    // Every prompt row, then decode steps (recorded once, then replayed).
    const auto want = run(*cpu_model, prompt, 4, true), got = run(*gpu_model, prompt, 4, true);
    REQUIRE(got.size() == want.size());
    double scale = 0, err = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        scale = std::max(scale, double(std::fabs(want[i])));
        err = std::max(err, double(std::fabs(got[i] - want[i])));
    }
    INFO("largest difference " << err << " of " << scale);
    CHECK(err <= 2e-4 * scale); // lavapipe: 1e-7 of it
}
#endif

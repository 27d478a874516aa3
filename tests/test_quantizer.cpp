// ternlm-quantize's library (lib/model/quantizer.cpp) and the I2_S format:
// byte equality with llama-quantize where ggml has the type, and the same
// ternary weights giving the same logits as TQ1_0, TQ2_0 and I2_S.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>
#include <vector>

#include "common/error.hpp"
#include "engine/context.hpp"
#include "engine/model.hpp"
#include "gguf/gguf.hpp"
#include "model/quantizer.hpp"
#include "support/files.hpp"
#include "support/vulkan.hpp"

using namespace ternlm;

namespace {

using TempFile = testsupport::TempPath;

std::string quantized(const std::string &in, GgmlType t, const TempFile &out) {
    QuantizeParams p;
    p.type = t;
    p.n_threads = 2;
    quantize_model(in, out.path, p);
    return out.path;
}

// Logits of every position of a fixed prompt, then 8 greedy tokens.
struct Run {
    std::vector<float> logits;
    std::vector<int32_t> tokens;
};
Run run_model(const std::string &path, tern_backend backend) {
    ModelParams mp;
    mp.backend = backend;
    auto model = Model::load(path, mp);
    ContextParams cp;
    cp.n_ctx = 64;
    Context ctx(*model, cp);
    const int32_t prompt[] = {1, 300, 17, 260, 411, 5};
    const int nv = model->hparams().n_vocab;
    Run r;
    for (int32_t t : prompt) {
        ctx.decode_step(t);
        r.logits.insert(r.logits.end(), ctx.logits(), ctx.logits() + nv);
    }
    for (int i = 0; i < 8; ++i) {
        const float *l = ctx.logits();
        int32_t best = 0;
        for (int v = 1; v < nv; ++v)
            if (l[v] > l[best]) best = v;
        r.tokens.push_back(best);
        ctx.decode_step(best);
    }
    return r;
}

} // namespace

// Q4_K and Q6_K follow llama.cpp's reference rules (no importance matrix),
// so they too give its bytes, and so its error.
TEST_CASE("ternlm-quantize writes Q8_0, Q4_0, Q4_K and Q6_K byte for byte as llama-quantize", "[quantize]") {
    for (const char *t : {"q8_0", "q4_0", "q4_k", "q6_k"}) {
        GgmlType type;
        REQUIRE(type_from_name(t, &type));
        TempFile out(std::string("llama-") + t + ".gguf");
        const auto ours = gguf::File::open(quantized(testsupport::shared_path("models/tiny256-llama-f32.gguf"), type, out));
        const auto theirs = gguf::File::open(testsupport::shared_path(std::string("models/tiny256-llama-") + t + ".gguf"));
        REQUIRE(ours->tensors().size() == theirs->tensors().size());
        for (const auto &ti : theirs->tensors()) {
            INFO(t << " tensor " << ti.name);
            const gguf::TensorInfo *mine = ours->find_tensor(ti.name);
            REQUIRE(mine);
            REQUIRE(mine->type == ti.type);
            REQUIRE(mine->nbytes == ti.nbytes);
            CHECK(std::memcmp(mine->data, ti.data, ti.nbytes) == 0);
        }
        CHECK(ours->get_int("general.file_type", -1) == theirs->get_int("general.file_type", -2));
    }
}

TEST_CASE("The same ternary weights as TQ1_0, TQ2_0 and I2_S give identical logits", "[quantize]") {
    const std::string f32 = testsupport::shared_path("models/tiny256-bitnet-f32.gguf");
    TempFile tq1("bitnet-tq1_0.gguf"), tq2("bitnet-tq2_0.gguf"), i2s("bitnet-i2_s.gguf");
    quantized(f32, GgmlType::TQ1_0, tq1);
    quantized(f32, GgmlType::TQ2_0, tq2);
    quantized(f32, GgmlType::I2_S, i2s);
    {
        const auto f = gguf::File::open(i2s.path);
        const gguf::TensorInfo *q = f->find_tensor("blk.0.attn_q.weight");
        REQUIRE(q);
        CHECK(q->type == GgmlType::I2_S);
        CHECK(q->nbytes == uint64_t(q->n_elements() / 4 + 32));
    }
    const Run a = run_model(tq2.path, TERN_BACKEND_CPU);
    const Run b = run_model(tq1.path, TERN_BACKEND_CPU);
    const Run c = run_model(i2s.path, TERN_BACKEND_CPU);
    CHECK(a.logits == b.logits); // bit for bit
    CHECK(a.logits == c.logits);
    CHECK(a.tokens == b.tokens);
    CHECK(a.tokens == c.tokens);

    // Lossless between ternary types: I2_S -> TQ2_0 is the direct TQ2_0.
    TempFile back("bitnet-i2s-tq2_0.gguf");
    quantized(i2s.path, GgmlType::TQ2_0, back);
    const auto direct = gguf::File::open(tq2.path), via = gguf::File::open(back.path);
    for (const auto &ti : direct->tensors()) {
        INFO(ti.name);
        const gguf::TensorInfo *v = via->find_tensor(ti.name);
        REQUIRE(v);
        REQUIRE(v->nbytes == ti.nbytes);
        CHECK(std::memcmp(v->data, ti.data, ti.nbytes) == 0);
    }
}

#ifdef TERNLM_HAVE_VULKAN
TEST_CASE("I2_S and TQ1_0 on Vulkan give the logits of TQ2_0 on Vulkan", "[quantize][vulkan]") {
    if (!testsupport::vulkan_device_or_fail()) return;
    const std::string f32 = testsupport::shared_path("models/tiny256-bitnet-f32.gguf");
    TempFile tq2("bitnet-vk-tq2_0.gguf"), i2s("bitnet-vk-i2_s.gguf"), tq1("bitnet-vk-tq1_0.gguf");
    quantized(f32, GgmlType::TQ2_0, tq2);
    quantized(f32, GgmlType::I2_S, i2s);
    quantized(f32, GgmlType::TQ1_0, tq1);
    // Both are held on the device as TQ2_0 (lib/backend/vulkan/layout.hpp).
    const Run a = run_model(tq2.path, TERN_BACKEND_VULKAN), c = run_model(i2s.path, TERN_BACKEND_VULKAN);
    const Run b = run_model(tq1.path, TERN_BACKEND_VULKAN);
    CHECK(a.logits == c.logits);
    CHECK(a.tokens == c.tokens);
    CHECK(a.logits == b.logits);
    CHECK(a.tokens == b.tokens);
    // And the GPU agrees with the CPU on the I2_S file within float rounding.
    const Run cpu = run_model(i2s.path, TERN_BACKEND_CPU);
    CHECK(cpu.tokens == c.tokens);
}
#endif

// Quantizing `in` to t must fail with `status`, and a message holding `text`.
void require_refused(const char *in, GgmlType t, tern_status status, const char *text) {
    TempFile out("refused.gguf");
    try {
        quantized(testsupport::shared_path(in), t, out);
        FAIL("expected an error");
    } catch (const Failure &e) {
        CHECK(e.status() == status);
        CHECK(std::string(e.what()).find(text) != std::string::npos);
    }
}

TEST_CASE("ternlm-quantize refuses what it cannot do, with clear errors", "[quantize]") {
    // llama.cpp's TQ2_0 has a scale per block: I2_S holds one per tensor.
    require_refused("models/tiny256-bitnet-tq2_0.gguf", GgmlType::I2_S, TERN_ERR_UNSUPPORTED, "one per tensor");
    require_refused("models/tiny256-llama-f32.gguf", GgmlType::Q5_K, TERN_ERR_UNSUPPORTED, "not implemented");
    require_refused("models/no-such-model.gguf", GgmlType::Q8_0, TERN_ERR_IO, "");
}

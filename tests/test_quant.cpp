// Block formats: dequantization of llama.cpp-quantized files against the F32
// weights they were made from, and the reference quantizers.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "common/fp16.hpp"
#include "gguf/gguf.hpp"
#include "quant/reference.hpp"
#include "support/files.hpp"
#include "support/random_blocks.hpp"

using namespace ternlm;

namespace {

// Relative RMS error of a dequantized tensor against the F32 original.
double rel_rms(const gguf::TensorInfo &q, const gguf::TensorInfo &ref) {
    std::vector<float> a(static_cast<size_t>(q.n_elements()));
    const size_t row = row_size(q.type, q.ne[0]);
    for (int64_t r = 0; r < q.n_rows(); ++r)
        dequantize_row(q.type, q.data + size_t(r) * row, a.data() + size_t(r * q.ne[0]), q.ne[0]);
    const float *b = reinterpret_cast<const float *>(ref.data);
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        num += double(a[i] - b[i]) * (a[i] - b[i]);
        den += double(b[i]) * b[i];
    }
    return std::sqrt(num / den);
}

} // namespace

TEST_CASE("dequantized llama.cpp files reproduce their F32 weights", "[quant]") {
    auto f32 = gguf::File::open(testsupport::shared_path("models/tiny256-llama-f32.gguf"));
    // Upper bounds of the relative RMS error of each format on these random
    // weights (measured: about half of these; ternary 0.81, as
    // ternarizing Gaussian weights loses that much); a wrong layout or
    // element order gives ~1.4.
    const std::map<std::string, double> bound = {
        {"f16", 1e-3}, {"bf16", 6e-3}, {"q8_0", 1e-2}, {"q6_k", 3e-2}, {"q5_0", 6e-2}, {"q5_k", 6e-2},
        {"q4_0", 0.12}, {"q4_k", 0.12}, {"q4_k_m", 0.12}, {"tq1_0", 0.85}, {"tq2_0", 0.85}};
    for (const auto &kv : bound) {
        auto q = gguf::File::open(testsupport::shared_path("models/tiny256-llama-" + kv.first + ".gguf"));
        for (const gguf::TensorInfo &t : q->tensors()) {
            const gguf::TensorInfo *ref = f32->find_tensor(t.name);
            REQUIRE(ref);
            const double e = rel_rms(t, *ref);
            INFO(kv.first << " " << t.name << " (" << type_name(t.type) << "): rel rms " << e);
            CHECK(e < (t.type == GgmlType::F32 ? 1e-7 : kv.second));
        }
    }
}

TEST_CASE("TQ1_0 and TQ2_0 files hold the same ternary weights", "[quant]") {
    for (const char *arch : {"llama", "bitnet"}) {
        auto t1 = gguf::File::open(testsupport::shared_path(std::string("models/tiny256-") + arch + "-tq1_0.gguf"));
        auto t2 = gguf::File::open(testsupport::shared_path(std::string("models/tiny256-") + arch + "-tq2_0.gguf"));
        for (const gguf::TensorInfo &a : t1->tensors()) {
            const gguf::TensorInfo *b = t2->find_tensor(a.name);
            REQUIRE(b);
            std::vector<float> x(static_cast<size_t>(a.n_elements())), y(x.size());
            for (int64_t r = 0; r < a.n_rows(); ++r) {
                dequantize_row(a.type, a.data + size_t(r) * row_size(a.type, a.ne[0]), &x[size_t(r * a.ne[0])], a.ne[0]);
                dequantize_row(b->type, b->data + size_t(r) * row_size(b->type, b->ne[0]), &y[size_t(r * a.ne[0])], a.ne[0]);
            }
            INFO(arch << " " << a.name);
            CHECK(x == y);
        }
    }
}

TEST_CASE("reference quantizers round-trip", "[quant]") {
    std::mt19937 rng(5);
    const int64_t n = 4 * QK_K;
    const std::vector<float> x = testsupport::random_floats(n, rng);
    std::vector<float> back(static_cast<size_t>(n));
    auto err = [&](const std::vector<float> &y) {
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; ++i) {
            num += double(y[size_t(i)] - x[size_t(i)]) * (y[size_t(i)] - x[size_t(i)]);
            den += double(x[size_t(i)]) * x[size_t(i)];
        }
        return std::sqrt(num / den);
    };
    std::vector<block_q8_0> q8(size_t(n / 32));
    quantize_row_q8_0_weights(x.data(), q8.data(), n);
    dequantize_row(GgmlType::Q8_0, q8.data(), back.data(), n);
    CHECK(err(back) < 0.01);
    std::vector<block_q4_0> q4(size_t(n / 32));
    quantize_row_q4_0(x.data(), q4.data(), n);
    dequantize_row(GgmlType::Q4_0, q4.data(), back.data(), n);
    CHECK(err(back) < 0.15);
    std::vector<block_q5_0> q5(size_t(n / 32));
    quantize_row_q5_0(x.data(), q5.data(), n);
    dequantize_row(GgmlType::Q5_0, q5.data(), back.data(), n);
    CHECK(err(back) < 0.08);

    // Ternary values times a per-block scale survive TQ1_0 and TQ2_0 exactly.
    std::vector<float> tern(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) tern[size_t(i)] = float(int(rng() % 3) - 1) * (i < QK_K ? 0.5f : 0.25f);
    std::vector<block_tq1_0> t1(size_t(n / QK_K));
    std::vector<block_tq2_0> t2(size_t(n / QK_K));
    quantize_row_tq1_0(tern.data(), t1.data(), n);
    quantize_row_tq2_0(tern.data(), t2.data(), n);
    dequantize_row(GgmlType::TQ1_0, t1.data(), back.data(), n);
    CHECK(back == tern);
    dequantize_row(GgmlType::TQ2_0, t2.data(), back.data(), n);
    CHECK(back == tern);
}

TEST_CASE("Q8_K activations keep the largest magnitude at -127 and sum their groups", "[quant]") {
    std::mt19937 rng(11);
    const std::vector<float> x = testsupport::random_floats(QK_K, rng);
    block_q8_K b;
    quantize_row_q8_K(x.data(), &b, QK_K);
    int max_abs = 0;
    for (int j = 0; j < QK_K; ++j) max_abs = std::max(max_abs, std::abs(int(b.qs[j])));
    CHECK(max_abs == 127);
    for (int g = 0; g < QK_K / 16; ++g) {
        int s = 0;
        for (int k = 0; k < 16; ++k) s += b.qs[g * 16 + k];
        CHECK(b.bsums[g] == s);
    }
    for (int j = 0; j < QK_K; ++j) CHECK(std::fabs(b.d * b.qs[j] - x[size_t(j)]) <= std::fabs(b.d) * 0.5f + 1e-6f);
}

TEST_CASE("half and bfloat16 conversions are exact where they must be", "[quant]") {
    for (uint32_t h = 0; h < 0x10000; ++h) {
        const float f = fp16_to_f32(uint16_t(h));
        if (std::isnan(f)) continue;
        CHECK(f32_to_fp16(f) == h);
    }
    CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
    CHECK(f32_to_bf16(1.00390625f) == 0x3F80); // halfway rounds to even
}

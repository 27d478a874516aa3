// Random rows in any block format, with sane scales, for kernel tests.
#pragma once

#include <random>
#include <vector>

#include "common/fp16.hpp"
#include "quant/blocks.hpp"
#include "quant/reference.hpp"

namespace testsupport {

// A row of n elements of type t: random bytes, with every fp16 scale field
// set to a small random value so results stay finite and meaningful.
inline std::vector<uint8_t> random_row(ternlm::GgmlType t, int64_t n, std::mt19937 &rng) {
    using namespace ternlm;
    std::normal_distribution<float> g(0.0f, 1.0f);
    std::uniform_real_distribution<float> u(0.001f, 0.05f);
    std::vector<uint8_t> row(row_size(t, n));
    for (auto &b : row) b = uint8_t(rng());
    auto set_h = [&](uint16_t &h, float v) { h = f32_to_fp16(v); };
    const int64_t nb = n / type_traits(t).block_size;
    switch (t) {
    case GgmlType::F32: {
        float *f = reinterpret_cast<float *>(row.data());
        for (int64_t i = 0; i < n; ++i) f[i] = g(rng);
        break;
    }
    case GgmlType::F16: {
        uint16_t *h = reinterpret_cast<uint16_t *>(row.data());
        for (int64_t i = 0; i < n; ++i) h[i] = f32_to_fp16(g(rng));
        break;
    }
    case GgmlType::BF16: {
        uint16_t *h = reinterpret_cast<uint16_t *>(row.data());
        for (int64_t i = 0; i < n; ++i) h[i] = f32_to_bf16(g(rng));
        break;
    }
    case GgmlType::Q8_0: for (int64_t i = 0; i < nb; ++i) set_h(reinterpret_cast<block_q8_0 *>(row.data())[i].d, u(rng)); break;
    case GgmlType::Q4_0: for (int64_t i = 0; i < nb; ++i) set_h(reinterpret_cast<block_q4_0 *>(row.data())[i].d, u(rng)); break;
    case GgmlType::Q5_0: for (int64_t i = 0; i < nb; ++i) set_h(reinterpret_cast<block_q5_0 *>(row.data())[i].d, u(rng)); break;
    case GgmlType::Q4_K:
        for (int64_t i = 0; i < nb; ++i) {
            auto &b = reinterpret_cast<block_q4_K *>(row.data())[i];
            set_h(b.d, u(rng));
            set_h(b.dmin, u(rng));
        }
        break;
    case GgmlType::Q5_K:
        for (int64_t i = 0; i < nb; ++i) {
            auto &b = reinterpret_cast<block_q5_K *>(row.data())[i];
            set_h(b.d, u(rng));
            set_h(b.dmin, u(rng));
        }
        break;
    case GgmlType::Q6_K: for (int64_t i = 0; i < nb; ++i) set_h(reinterpret_cast<block_q6_K *>(row.data())[i].d, u(rng)); break;
    case GgmlType::TQ1_0:
        for (int64_t i = 0; i < nb; ++i) {
            auto &b = reinterpret_cast<block_tq1_0 *>(row.data())[i];
            // Only byte values that encode valid trits (< 243 * 256 / 243).
            for (auto &q : b.qs) q = uint8_t((uint32_t(rng() % 243) * 256 + 242) / 243);
            for (auto &q : b.qh) q = uint8_t((uint32_t(rng() % 81) * 3 * 256 + 242) / 243);
            set_h(b.d, u(rng));
        }
        break;
    case GgmlType::TQ2_0:
        for (int64_t i = 0; i < nb; ++i) {
            auto &b = reinterpret_cast<block_tq2_0 *>(row.data())[i];
            for (auto &q : b.qs) { // 2-bit fields in {0, 1, 2}
                uint8_t v = 0;
                for (int l = 0; l < 4; ++l) v |= uint8_t((rng() % 3) << (2 * l));
                q = v;
            }
            set_h(b.d, u(rng));
        }
        break;
    case GgmlType::I2_S: // codes only (the tensor scale is not part of a row)
        for (auto &q : row) {
            uint8_t v = 0;
            for (int l = 0; l < 4; ++l) v |= uint8_t((rng() % 3) << (2 * l));
            q = v;
        }
        break;
    default: break;
    }
    return row;
}

inline std::vector<float> random_floats(int64_t n, std::mt19937 &rng, float scale = 1.0f) {
    std::normal_distribution<float> g(0.0f, scale);
    std::vector<float> x(static_cast<size_t>(n));
    for (auto &v : x) v = g(rng);
    return x;
}

inline const std::vector<ternlm::GgmlType> &all_weight_types() {
    using ternlm::GgmlType;
    static const std::vector<GgmlType> t = {GgmlType::F32,  GgmlType::F16,  GgmlType::BF16, GgmlType::Q8_0,
                                            GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q5_K,
                                            GgmlType::Q6_K, GgmlType::TQ1_0, GgmlType::TQ2_0, GgmlType::I2_S};
    return t;
}

} // namespace testsupport

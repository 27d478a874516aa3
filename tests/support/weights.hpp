// In-memory weight matrices for op and kernel tests: WeightRefs over byte
// vectors the test owns.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "random_blocks.hpp"

namespace testsupport {

// A WeightRef over `bytes`: ne1 rows of ne0 elements of type t.
inline ternlm::WeightRef weight_ref(const std::vector<uint8_t> &bytes, ternlm::GgmlType t, int64_t ne0, int64_t ne1,
                                    const std::string &name) {
    ternlm::WeightRef w;
    w.data = bytes.data();
    w.type = t;
    w.ne0 = ne0;
    w.ne1 = ne1;
    w.row_bytes = ternlm::row_size(t, ne0);
    w.name = name;
    return w;
}

// rows x cols random blocks of type t (random_row), row after row.
inline std::vector<uint8_t> random_matrix_bytes(ternlm::GgmlType t, int64_t rows, int64_t cols, std::mt19937 &rng) {
    std::vector<uint8_t> w;
    for (int64_t r = 0; r < rows; ++r) {
        const auto row = random_row(t, cols, rng);
        w.insert(w.end(), row.begin(), row.end());
    }
    return w;
}

// The bytes of a float vector (an F32 tensor).
inline std::vector<uint8_t> float_bytes(const std::vector<float> &v) {
    const auto *b = reinterpret_cast<const uint8_t *>(v.data());
    return std::vector<uint8_t>(b, b + v.size() * sizeof(float));
}

} // namespace testsupport

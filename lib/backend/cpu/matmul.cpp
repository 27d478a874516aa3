// Matrix products against quantized weights straight from the mmap.
//
// Activations are converted once per call; then threads take chunks of
// weight rows, and each weight row is dotted with every activation row while
// it is hot in L1 — so a prefill of m tokens reads the weights once, not m times.
#include <algorithm>

#include "backend/cpu/ops.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "quant/reference.hpp"

namespace ternlm::cpu {

void matmul(ThreadPool &pool, const WeightRef &w, const float *x, int m, float *y,
            std::vector<uint8_t> &scratch) {
    const int64_t k = w.ne0, n = w.ne1;
    const GgmlType act_type = vec_dot_type(w.type);
    const size_t act_row = row_size(act_type, k);
    if (scratch.size() < act_row * size_t(m)) scratch.resize(act_row * size_t(m));
    uint8_t *act = scratch.data();

    if (m == 1) {
        quantize_activations(act_type, x, act, k);
    } else {
        pool.parallel_for(m, [&](int64_t t) { quantize_activations(act_type, x + t * k, act + t * act_row, k); });
    }
    if (w.tensor_scale != 1.0f) { // I2_S: fold the tensor's scale into each activation block's d
        block_q8_K *b = reinterpret_cast<block_q8_K *>(act);
        for (int64_t i = 0; i < int64_t(m) * (k / QK_K); ++i) b[i].d *= w.tensor_scale;
    }

    const VecDotFn dot = vec_dot_for(w.type);
    const VecDot4Fn dot4 = vec_dot4_for(w.type); // may be null
    // Enough chunks for load balance, each big enough to amortise scheduling.
    const int64_t target_chunks = int64_t(pool.n_threads()) * 8;
    const int64_t chunk = std::max<int64_t>(1, std::min<int64_t>(64, (n + target_chunks - 1) / target_chunks));
    const int64_t n_chunks = (n + chunk - 1) / chunk;
    pool.parallel_for(n_chunks, [&](int64_t c) {
        const int64_t r0 = c * chunk, r1 = std::min(n, r0 + chunk);
        for (int64_t r = r0; r < r1; ++r) {
            const uint8_t *wr = w.data + size_t(r) * w.row_bytes;
            int t = 0;
            if (dot4)
                for (; t + 4 <= m; t += 4) dot4(k, wr, act + size_t(t) * act_row, act_row, y + size_t(t) * n + r, size_t(n));
            for (; t < m; ++t) y[size_t(t) * n + r] = dot(k, wr, act + size_t(t) * act_row);
        }
    });
}

} // namespace ternlm::cpu

// Matrix products against quantized weights straight from the mmap.
//
// Activations are converted once per call; then threads take chunks of
// weight rows, and each weight row is dotted with every activation row while
// it is hot in L1 — so a prefill of m tokens reads the weights once, not m times.
#include <algorithm>

#include "backend/cpu/ops.hpp"
#include "backend/cpu/ternary_lut.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "quant/reference.hpp"

namespace ternlm::cpu {

namespace {
// Row groups (of 4) a thread claims at a time. Chunks only matter where
// threads finish at different times; each claim is a compare-and-swap.
constexpr int64_t kStealChunkGroups = 8;
} // namespace

void matmul(ThreadPool &pool, const WeightRef &w, const float *x, int m, float *y, MatmulScratch &scratch) {
    const int64_t k = w.ne0, n = w.ne1;
    const GgmlType act_type = vec_dot_type(w.type);
    const size_t act_row = row_size(act_type, k);
    if (scratch.act.size() < act_row * size_t(m)) scratch.act.resize(act_row * size_t(m));
    uint8_t *act = scratch.act.data();

    if (m == 1) {
        quantize_activations(act_type, x, act, k);
    } else {
        pool.parallel_for(m, [&](int64_t t) { quantize_activations(act_type, x + t * k, act + t * act_row, k); });
    }
    if (w.tensor_scale != 1.0f) { // I2_S: fold the tensor's scale into each activation block's d
        block_q8_K *b = reinterpret_cast<block_q8_K *>(act);
        for (int64_t i = 0; i < int64_t(m) * (k / QK_K); ++i) b[i].d *= w.tensor_scale;
    }

    if (w.layout == RowLayout::Lut64) return matmul_lut64(pool, w, act, act_row, m, y);

    const VecDotFn dot = vec_dot_for(w.type);
    const VecDot4Fn dot4 = vec_dot4_for(w.type); // one weight row, 4 activation rows; may be null
    // 4 weight rows, one activation row (null if none); for an interleaved
    // matrix, the kernel of its layout, which it always has (cpu/repack.cpp).
    const bool interleaved = w.layout == RowLayout::Interleaved4;
    const VecDotRows4Fn rows4 = interleaved ? vec_dot_rows4_interleaved_for(w.type) : vec_dot_rows4_for(w.type);
    const bool use_rows4 = rows4 && (interleaved || m < 4 || !dot4);
    const size_t group_bytes = 4 * w.row_bytes;
    const size_t rows4_stride = interleaved ? interleave_block_bytes(w) : w.row_bytes;
    // Rows go in groups of 4 (the 4-row kernels cover all but the last n %
    // 4), each thread walking one contiguous share of them: small chunks
    // from a shared counter were measured to halve decode speed, the
    // threads' interleaved streams defeating the hardware prefetchers
    // (docs/performance.md). A thread done with its share takes chunks
    // from the back of another's, so a core the machine slows down does not
    // hold the step up (perf of decode: 10% of the time was spent waiting
    // for the slower thread).
    const int64_t groups = (n + 3) / 4;
    pool.run_ranges(groups, kStealChunkGroups, [&](int64_t g0, int64_t g1) {
        const int64_t r0 = 4 * g0, r1 = std::min(n, 4 * g1);
        int64_t r = r0;
        if (use_rows4)
            for (; r + 4 <= r1; r += 4)
                for (int t = 0; t < m; ++t)
                    rows4(k, w.data + size_t(r / 4) * group_bytes, rows4_stride, act + size_t(t) * act_row,
                          y + size_t(t) * n + r);
        for (; r < r1; ++r) { // plain rows (an interleaved matrix's last n % 4 are plain too)
            const uint8_t *wr = w.data + size_t(r) * w.row_bytes;
            int t = 0;
            if (dot4)
                for (; t + 4 <= m; t += 4) dot4(k, wr, act + size_t(t) * act_row, act_row, y + size_t(t) * n + r, size_t(n));
            for (; t < m; ++t) y[size_t(t) * n + r] = dot(k, wr, act + size_t(t) * act_row);
        }
    });
}

} // namespace ternlm::cpu

// CPU kernels of the step operations. Each works on row-major float rows;
// the thread pool splits the work.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/thread_pool.hpp"

namespace ternlm::cpu {

// std::exp(x), where glibc's expf would take its error path (setting errno,
// `xflowf`: 1-3% of decode samples on the synthetic models, from attention's
// underflowing exponentials and the gated activations) for a result that
// overflows to infinity or underflows to 0: those are answered here, with
// the values it returns (its thresholds, so every result is the same).
inline float exp_quiet(float x) {
    if (x > 0x1.62e42ep6f) return INFINITY;
    if (x < -0x1.9fe368p6f) return 0.0f;
    return std::exp(x);
}

// What matmul keeps between calls: the converted activations.
struct MatmulScratch {
    std::vector<uint8_t> act;
    std::vector<int32_t> act_sums; // the activation blocks' sums, for Q4_0's tiles (tiles8.hpp)
};

// y[t][r] = dot(W row r, x[t]) for t < m, r < w.ne1. Activations are first
// converted to the weight type's vec_dot_type (8-bit for quantized types).
void matmul(ThreadPool &pool, const WeightRef &w, const float *x, int m, float *y, MatmulScratch &scratch);

// Whether two matrices can multiply one conversion of the same input in
// matmul_shared_input: same width and activation type, no per-tensor scale
// folded into the activations (I2_S), no lookup-table tiles.
bool can_share_input(const WeightRef &a, const WeightRef &b);
constexpr int kMaxSharedInput = 4; // matrices matmul_shared_input takes at once
// ys[i] = ws[i] . x for n_mats matrices that can share their input (a
// layer's q, k and v, or gate and up): x converted once and one parallel
// range over all their rows, where separate calls paid a conversion and a
// hand-off between threads each. Each result equals matmul's.
void matmul_shared_input(ThreadPool &pool, const WeightRef *const *ws, float *const *ys, int n_mats, const float *x,
                         int m, MatmulScratch &scratch);

// out = x / sqrt(mean(x^2) + eps) * weight, per row of n.
void rms_norm(const float *x, const float *weight, int rows, int64_t n, float eps, float *out);

// In-place rotary embedding; row t is at position pos0 + t.
void rope(float *x, int rows, int n_heads, int head_dim, int pos0, const RopeParams &p);

// gate = gate / (1 + e^-gate) * up. Where the CPU has AVX2 and FMA, eight
// at a time with a vector exponential within a few ulp of std::exp, so
// not bit for bit the scalar formula (llama.cpp's SiLU has a vector exp of
// its own too). Either way an element's result depends on its values only,
// not on its index or n.
void silu_mul(float *gate, const float *up, int64_t n);

// gate = act(gate) * up.
void glu(float *gate, const float *up, int64_t n, FfnActivation act);

// Batches of this many query rows or more take the f32 matrix-product
// attention path, as llama.cpp switches to its tiled kernel; fewer rows (and
// decode) take the f16-accumulator path.
constexpr int kTiledAttentionMinRows = 64;

// What attention keeps between calls: each thread's matrices for the
// matrix-product path. Allocated afresh, the scores alone (rows x
// positions: 4 MB a KV head for a prompt of 512 with 4 heads to it) came
// from new pages every call, and their page faults halved a mid1024
// prefill of 512 (docs/performance.md, session 27). They grow, never
// shrink, and go with their owner (the CPU step).
struct AttentionScratch {
    struct Matrices {
        std::vector<float> k, v, q, s, o;
    };
    std::vector<Matrices> per_thread;
};

// Stores rows k, v (f32, n_head_kv*head_dim each) at positions pos0.. in the
// cache, then out[t] = softmax(q[t] . K^T * scale) V over positions <= pos0+t.
void attention(ThreadPool &pool, KvCache &kv, int layer, const float *q, const float *k, const float *v,
               int rows, int pos0, const AttnShape &shape, float *out, AttentionScratch &scratch);

} // namespace ternlm::cpu

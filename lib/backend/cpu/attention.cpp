// Causal attention over the f16 KV cache.
//
// Two paths, with the numerics of llama.cpp's CPU flash attention so that
// logits agree with it closely (golden/README.md tolerances):
//  - few query rows (decode, short prompts): per row and head, q rounded to
//    f16, an online softmax, and V accumulated in an f16 vector;
//  - a batch of kTiledAttentionMinRows rows or more (prefill): per KV head, the query
//    rows of all heads sharing it form one f32 matrix and Eigen computes
//    S = Q K^T and O = softmax(S) V as matrix products with f32 accumulation.
#include <Eigen/Dense>
#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.hpp"
#include "common/fp16.hpp"
#include "kv/kv_cache.hpp"

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#include "backend/cpu/simd_x86.hpp"
#define TERN_F16C 1
#endif

namespace ternlm::cpu {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

void to_f16(const float *x, uint16_t *y, int n) {
    int i = 0;
#if TERN_F16C
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; ++i) y[i] = f32_to_fp16(x[i]);
}

void from_f16(const uint16_t *x, float *y, int n) {
    int i = 0;
#if TERN_F16C
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
#endif
    for (; i < n; ++i) y[i] = fp16_to_f32(x[i]);
}

// q . k for q already rounded to f16 values, summed in the order of ggml's
// AVX-512 f16 dot (4 accumulators of 16 lanes over 64-element steps, then a
// pairwise tree): the f16 accumulator below rounds the result, and a different
// summation order would flip some of those roundings.
float dot_f32_f16(const float *a, const uint16_t *b, int n) {
    const int np = n & ~63;
    float s = 0;
#if TERN_F16C
    __m256 acc[8];
    for (__m256 &x : acc) x = _mm256_setzero_ps();
    for (int i = 0; i < np; i += 64)
        for (int j = 0; j < 8; ++j) // accumulator j/2, lanes (j%2)*8..
            acc[j] = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8 * j))),
                                     _mm256_loadu_ps(a + i + 8 * j), acc[j]);
    for (int h = 0; h < 2; ++h) { // sum[0] += sum[2], sum[1] += sum[3], then sum[0] += sum[1]
        acc[h] = _mm256_add_ps(acc[h], acc[h + 4]);
        acc[h + 2] = _mm256_add_ps(acc[h + 2], acc[h + 6]);
    }
    acc[0] = _mm256_add_ps(acc[0], acc[2]);
    acc[1] = _mm256_add_ps(acc[1], acc[3]);
    s = hsum_f32x8(_mm256_add_ps(acc[0], acc[1])); // 16 lanes -> 8 -> 4 -> 2 -> 1
#else
    double d = 0;
    for (int i = 0; i < np; ++i) d += double(a[i]) * fp16_to_f32(b[i]);
    s = float(d);
#endif
    double tail = s;
    for (int i = np; i < n; ++i) tail += double(a[i] * fp16_to_f32(b[i]));
    return float(tail);
}

// acc (f16) = acc * scale + x (f16) * a, rounded back to f16 element by element.
void f16_scale_mad(uint16_t *acc, float scale, const uint16_t *x, float a, int n) {
    int i = 0;
#if TERN_F16C
    const __m256 vs = _mm256_set1_ps(scale), va = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        __m256 y = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(acc + i))), vs);
        if (scale != 1.0f) // llama.cpp rounds after scaling, then again after the add
            y = _mm256_cvtph_ps(_mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
        y = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))), va, y);
        _mm_storeu_si128((__m128i *)(acc + i), _mm256_cvtps_ph(y, _MM_FROUND_TO_NEAREST_INT));
    }
#endif
    for (; i < n; ++i) {
        float y = fp16_to_f32(acc[i]) * scale;
        if (scale != 1.0f) y = fp16_to_f32(f32_to_fp16(y));
        acc[i] = f32_to_fp16(y + fp16_to_f32(x[i]) * a);
    }
}

// One query row of one head over positions [0, n_pos): online softmax with
// an f16 V accumulator (llama.cpp's one-chunk flash attention).
void attend_row_f16(const KvCache &kv, int layer, const float *q, int n_pos, int kv_off, const AttnShape &sh,
                    float *out, std::vector<uint16_t> &scratch) {
    const int D = sh.head_dim;
    scratch.assign(size_t(2 * D), 0);
    uint16_t *acc = scratch.data(), *qh = scratch.data() + D;
    to_f16(q, qh, D);
    std::vector<float> qf(static_cast<size_t>(D));
    from_f16(qh, qf.data(), D);
    float M = -INFINITY, S = 0;
    for (int j = 0; j < n_pos; ++j) {
        const float s = dot_f32_f16(qf.data(), kv.k(layer, j) + kv_off, D) * sh.scale;
        float ms = 1, vs = 1;
        if (s > M) {
            ms = exp_quiet(M - s);
            M = s;
        } else {
            vs = exp_quiet(s - M);
        }
        f16_scale_mad(acc, ms, kv.v(layer, j) + kv_off, vs, D);
        S = S * ms + vs;
    }
    const float inv = 1.0f / S;
    for (int d = 0; d < D; ++d) out[d] = fp16_to_f32(acc[d]) * inv;
}

// Softmax of s[0..n) in place.
void softmax(float *s, int n) {
    float mx = -INFINITY;
    for (int j = 0; j < n; ++j) mx = std::max(mx, s[j]);
    double sum = 0;
    for (int j = 0; j < n; ++j) {
        s[j] = exp_quiet(s[j] - mx);
        sum += s[j];
    }
    const float inv = float(1.0 / sum);
    for (int j = 0; j < n; ++j) s[j] *= inv;
}

Eigen::Map<RowMat> matrix_in(std::vector<float> &buf, int rows, int cols) {
    if (buf.size() < size_t(rows) * size_t(cols)) buf.resize(size_t(rows) * size_t(cols));
    return Eigen::Map<RowMat>(buf.data(), rows, cols);
}

// All query rows of the heads sharing KV head g, as matrix products.
void attend_group_f32(const KvCache &kv, int layer, const float *q, int rows, int pos0, int g, const AttnShape &sh,
                      float *out, AttentionScratch::Matrices &m) {
    const int hd = sh.head_dim, n_rep = sh.n_head / sh.n_head_kv, n_pos = pos0 + rows;
    const int q_stride = sh.n_head * hd;
    Eigen::Map<RowMat> K = matrix_in(m.k, n_pos, hd), V = matrix_in(m.v, n_pos, hd), Q = matrix_in(m.q, rows * n_rep, hd);
    Eigen::Map<RowMat> S = matrix_in(m.s, rows * n_rep, n_pos), O = matrix_in(m.o, rows * n_rep, hd);
    for (int j = 0; j < n_pos; ++j) {
        from_f16(kv.k(layer, j) + g * hd, K.row(j).data(), hd);
        from_f16(kv.v(layer, j) + g * hd, V.row(j).data(), hd);
    }
    for (int r = 0; r < n_rep; ++r)
        for (int t = 0; t < rows; ++t)
            std::copy_n(q + size_t(t) * q_stride + size_t(g * n_rep + r) * hd, hd, Q.row(r * rows + t).data());
    // The product, then the scale: the same bits as Eigen's scaled product
    // (its alpha multiplies each finished sum), which it evaluated through a
    // slow strided pass (about 16% of a mid1024 prefill of 512, session 27).
    S.noalias() = Q * K.transpose();
    S *= sh.scale;
    for (int i = 0; i < rows * n_rep; ++i) {
        const int valid = pos0 + (i % rows) + 1; // causal: positions <= pos0 + t
        float *s = S.row(i).data();
        softmax(s, valid);
        std::fill(s + valid, s + n_pos, 0.0f);
    }
    O.noalias() = S * V;
    for (int r = 0; r < n_rep; ++r)
        for (int t = 0; t < rows; ++t)
            std::copy_n(O.row(r * rows + t).data(), hd, out + size_t(t) * q_stride + size_t(g * n_rep + r) * hd);
}

} // namespace

void attention(ThreadPool &pool, KvCache &kv, int layer, const float *q, const float *k, const float *v, int rows,
               int pos0, const AttnShape &sh, float *out, AttentionScratch &scratch) {
    const int kv_dim = sh.n_head_kv * sh.head_dim;
    for (int t = 0; t < rows; ++t) {
        to_f16(k + size_t(t) * kv_dim, kv.k(layer, pos0 + t), kv_dim);
        to_f16(v + size_t(t) * kv_dim, kv.v(layer, pos0 + t), kv_dim);
    }
    if (rows >= kTiledAttentionMinRows) {
        // KV heads dealt to the threads in turn, each thread with its own matrices.
        scratch.per_thread.resize(size_t(pool.n_threads()));
        pool.run_on_all([&](int t, int n) {
            for (int g = t; g < sh.n_head_kv; g += n)
                attend_group_f32(kv, layer, q, rows, pos0, g, sh, out, scratch.per_thread[size_t(t)]);
        });
        return;
    }
    const int n_rep = sh.n_head / sh.n_head_kv;
    const size_t q_stride = size_t(sh.n_head) * sh.head_dim;
    pool.parallel_for(int64_t(rows) * sh.n_head, [&](int64_t task) {
        thread_local std::vector<uint16_t> scratch;
        const int t = int(task / sh.n_head), h = int(task % sh.n_head);
        attend_row_f16(kv, layer, q + t * q_stride + size_t(h) * sh.head_dim, pos0 + t + 1,
                       (h / n_rep) * sh.head_dim, sh, out + t * q_stride + size_t(h) * sh.head_dim, scratch);
    });
}

} // namespace ternlm::cpu

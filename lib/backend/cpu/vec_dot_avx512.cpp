// AVX-512 VNNI dot products, picked at run time on CPUs that have
// avx512f/bw/vl/vnni (this file alone is compiled with those flags). Only
// kernels that measured faster than their AVX2 twins live here: 512-bit Q4_K
// and TQ2_0 variants were slower on the Zen 4 machines (see
// docs/performance.md); the 2-bit ternary kernels use 256-bit vpdpbusd. Integer sums stay exact, so tests hold them to the
// same scalar reference.
#include "backend/cpu/vec_dot.hpp"

#include <immintrin.h>

#include "backend/cpu/simd_x86.hpp"
#include "backend/cpu/ternary_2bit_x86.hpp"
#include "quant/blocks.hpp"

namespace ternlm::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Two 32-byte halves from separate addresses as one 512-bit vector.
inline __m512i load_2x256(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)lo)),
                              _mm256_loadu_si256((const __m256i *)hi), 1);
}

// Signed int8 dot via VNNI (u8 x s8): move x's sign onto y.
inline __m512i dpbusd_signed(__m512i acc, __m512i x, __m512i y) {
    return _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(x), _mm512_mask_sub_epi8(y, _mm512_movepi8_mask(x),
                                                                               _mm512_setzero_si512(), y));
}

// Q8_0 against R activation rows: two blocks per 512-bit step (lanes 0-7
// belong to the first block). |w| and w's sign mask are computed once per
// step for all rows; each row's arithmetic is the same sequence whatever R
// is, so R = 1 and R = 4 give bit-identical results.
template <int R>
void dot_q8_0_rows(int64_t n, const void *vw, const void *va, size_t a_stride, float *out, size_t out_stride) {
    const block_q8_0 *w = static_cast<const block_q8_0 *>(vw);
    const block_q8_0 *a[R];
    for (int r = 0; r < R; ++r) a[r] = reinterpret_cast<const block_q8_0 *>(static_cast<const uint8_t *>(va) + r * a_stride);
    const int64_t nb = n / QK8_0;
    __m512 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m512i qw = load_2x256(w[i].qs, w[i + 1].qs);
        const __m512i aw = _mm512_abs_epi8(qw);
        const __mmask64 neg = _mm512_movepi8_mask(qw);
        const float dw0 = h2f(w[i].d), dw1 = h2f(w[i + 1].d);
        for (int r = 0; r < R; ++r) {
            const __m512i qa = load_2x256(a[r][i].qs, a[r][i + 1].qs);
            const __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), aw,
                                                  _mm512_mask_sub_epi8(qa, neg, _mm512_setzero_si512(), qa));
            const __m512 d = _mm512_insertf32x8(_mm512_set1_ps(dw0 * h2f(a[r][i].d)),
                                                _mm256_set1_ps(dw1 * h2f(a[r][i + 1].d)), 1);
            acc[r] = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(s), acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float sum = _mm512_reduce_add_ps(acc[r]);
        for (int64_t j = i; j < nb; ++j) {
            const __m256i qw = _mm256_loadu_si256((const __m256i *)w[j].qs);
            const __m256i qa = _mm256_loadu_si256((const __m256i *)a[r][j].qs);
            sum += h2f(w[j].d) * h2f(a[r][j].d) * float(hsum_i32x8(dot_i8x32(qw, qa)));
        }
        out[size_t(r) * out_stride] = sum;
    }
}

float dot_q8_0(int64_t n, const void *vw, const void *va) {
    float out;
    dot_q8_0_rows<1>(n, vw, va, 0, &out, 0);
    return out;
}

} // namespace

VecDotFn vec_dot_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::Q8_0: return dot_q8_0;
    case GgmlType::TQ2_0: return ternary::dot_row<true, ternary::Tq2Layout<1>>;
    case GgmlType::I2_S: return ternary::dot_row<true, ternary::I2sLayout<1>>;
    default: return nullptr;
    }
}

VecDotRows4Fn vec_dot_rows4_interleaved_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::TQ2_0: return ternary::dot_rows4<true, ternary::Tq2Layout<4>>;
    case GgmlType::I2_S: return ternary::dot_rows4<true, ternary::I2sLayout<4>>;
    default: return nullptr;
    }
}

VecDotRows4Fn vec_dot_rows4_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::TQ2_0: return ternary::dot_rows4<true, ternary::Tq2Layout<1>>;
    case GgmlType::I2_S: return ternary::dot_rows4<true, ternary::I2sLayout<1>>;
    default: return nullptr;
    }
}

VecDot4Fn vec_dot4_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::Q8_0: return dot_q8_0_rows<4>;
    default: return nullptr;
    }
}

} // namespace ternlm::cpu

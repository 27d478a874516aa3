// AVX-512 VNNI dot products for the hottest types; picked at run time on CPUs
// that have avx512f/bw/vl/vnni (this file alone is compiled with those flags).
#include "backend/cpu/vec_dot.hpp"

#include <immintrin.h>

#include "backend/cpu/simd_x86.hpp"
#include "quant/blocks.hpp"

namespace tern::cpu {

namespace {

inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

// Signed int8 dot via VNNI (u8 x s8): move x's sign onto y.
inline __m256i dpbusd_signed(__m256i acc, __m256i x, __m256i y) {
    return _mm256_dpbusd_epi32(acc, _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

float dot_q8_0(int64_t n, const void *vw, const void *va) {
    const block_q8_0 *w = static_cast<const block_q8_0 *>(vw);
    const block_q8_0 *a = static_cast<const block_q8_0 *>(va);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / QK8_0; ++i) {
        const __m256i qw = _mm256_loadu_si256((const __m256i *)w[i].qs);
        const __m256i qa = _mm256_loadu_si256((const __m256i *)a[i].qs);
        const __m256i s = dpbusd_signed(_mm256_setzero_si256(), qw, qa);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(s), acc);
    }
    return hsum_f32x8(acc);
}

} // namespace

VecDotFn vec_dot_avx512(GgmlType type) {
    switch (type) {
    case GgmlType::Q8_0: return dot_q8_0;
    default: return nullptr;
    }
}

} // namespace tern::cpu

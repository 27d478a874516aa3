// Run-time choice of dot-product kernels.
#include "backend/cpu/vec_dot.hpp"

#include <cstdlib>
#include <cstring>

#include "quant/reference.hpp"

namespace ternlm::cpu {

namespace {

template <GgmlType T> float scalar_dot(int64_t n, const void *w, const void *a) {
    return ref_vec_dot(T, n, w, a);
}

VecDotFn vec_dot_scalar(GgmlType type) {
    switch (type) {
    case GgmlType::F32: return scalar_dot<GgmlType::F32>;
    case GgmlType::F16: return scalar_dot<GgmlType::F16>;
    case GgmlType::BF16: return scalar_dot<GgmlType::BF16>;
    case GgmlType::Q8_0: return scalar_dot<GgmlType::Q8_0>;
    case GgmlType::Q4_0: return scalar_dot<GgmlType::Q4_0>;
    case GgmlType::Q5_0: return scalar_dot<GgmlType::Q5_0>;
    case GgmlType::Q4_K: return scalar_dot<GgmlType::Q4_K>;
    case GgmlType::Q5_K: return scalar_dot<GgmlType::Q5_K>;
    case GgmlType::Q6_K: return scalar_dot<GgmlType::Q6_K>;
    case GgmlType::TQ1_0: return scalar_dot<GgmlType::TQ1_0>;
    case GgmlType::TQ2_0: return scalar_dot<GgmlType::TQ2_0>;
    case GgmlType::I2_S: return scalar_dot<GgmlType::I2_S>;
    default: return nullptr;
    }
}

Isa detect() {
    // TERNLM_ISA=scalar|avx2|avx512 caps the choice (tests and comparisons).
    Isa cap = Isa::Avx512Vnni;
    if (const char *e = std::getenv("TERNLM_ISA")) {
        if (!std::strcmp(e, "scalar")) cap = Isa::Scalar;
        else if (!std::strcmp(e, "avx2")) cap = Isa::Avx2;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    Isa best = Isa::Scalar;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::Avx2;
#if defined(TERNLM_HAVE_AVX512_KERNELS)
    if (best == Isa::Avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni"))
        best = Isa::Avx512Vnni;
#endif
    return int(best) < int(cap) ? best : cap;
#else
    (void)cap;
    return Isa::Scalar;
#endif
}

} // namespace

Isa detected_isa() {
    static const Isa isa = detect();
    return isa;
}

const char *isa_name(Isa isa) {
    switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512Vnni: return "avx512-vnni";
    }
    return "?";
}

VecDotFn vec_dot_for(GgmlType type, Isa isa) {
    VecDotFn f = nullptr;
    if (isa == Isa::Avx512Vnni) f = vec_dot_avx512(type);
    if (!f && (isa == Isa::Avx512Vnni || isa == Isa::Avx2)) f = vec_dot_avx2(type);
    if (!f) f = vec_dot_scalar(type);
    return f;
}

namespace {

// A multi-row kernel from the ISA table vec_dot_for's one-row kernel comes
// from, so the two agree bit for bit; nullptr when that table has none.
template <typename Fn>
Fn from_dot_table(GgmlType type, Isa isa, Fn (*avx512)(GgmlType), Fn (*avx2)(GgmlType)) {
    if (isa == Isa::Avx512Vnni && vec_dot_avx512(type)) return avx512(type);
    if ((isa == Isa::Avx512Vnni || isa == Isa::Avx2) && vec_dot_avx2(type)) return avx2(type);
    return nullptr;
}

} // namespace

VecDot4Fn vec_dot4_for(GgmlType type, Isa isa) { return from_dot_table(type, isa, vec_dot4_avx512, vec_dot4_avx2); }

VecDotRows4Fn vec_dot_rows4_for(GgmlType type, Isa isa) {
    return from_dot_table(type, isa, vec_dot_rows4_avx512, vec_dot_rows4_avx2);
}

VecDotRows4Fn vec_dot_rows4_interleaved_for(GgmlType type, Isa isa) {
    return from_dot_table(type, isa, vec_dot_rows4_interleaved_avx512, vec_dot_rows4_interleaved_avx2);
}

#if !defined(TERNLM_HAVE_AVX512_KERNELS)
VecDotFn vec_dot_avx512(GgmlType) { return nullptr; }
VecDot4Fn vec_dot4_avx512(GgmlType) { return nullptr; }
VecDotRows4Fn vec_dot_rows4_avx512(GgmlType) { return nullptr; }
VecDotRows4Fn vec_dot_rows4_interleaved_avx512(GgmlType) { return nullptr; }
#endif

} // namespace ternlm::cpu

#ifndef TERNLM_EXACT_GLSL
#define TERNLM_EXACT_GLSL
// Arithmetic rounded as IEEE rounds it, where GLSL allows less: its
// division may be off by a few ulp (NVIDIA's is, lavapipe's is not), and an
// ulp of 127 / max moves values that sit on a rounding boundary to the next
// 8-bit step, away from what the CPU (and llama.cpp) computes.

// a / b correctly rounded (but for quotients within ~1e-7 ulp of a
// midpoint): the residual r = a - q * b of the device's quotient q, exact by
// Dekker's product of 12-bit halves (a fused fma is not assumed: lavapipe's
// is not), corrects q.
float div_rn(float a, float b) {
    precise const float q = a / b;
    precise const float cq = 4097.0 * q, qh = cq - (cq - q), ql = q - qh;
    precise const float cb = 4097.0 * b, bh = cb - (cb - b), bl = b - bh;
    precise const float r = (((a - qh * bh) - qh * bl) - ql * bh) - ql * bl;
    precise const float c = q + r / b;
    return c;
}

// f32 to f16 rounded to nearest, ties to even, as the CPU's conversion
// (F16C, ggml's) rounds: packHalf2x16's rounding is the implementation's
// choice, and NVIDIA's is not to nearest (measured: the Q8_0-family
// activation scales and the f16 KV cache then differ from the CPU's by an
// ulp). The conversion gives a or one of its two f16 neighbours; the nearer
// neighbour is picked here. Differences of a and f16 values are exact in f32.
uint f16_bits_rne(float v) {
    const uint h = packHalf2x16(vec2(v, 0.0)) & 0xFFFFu;
    const uint sign = h & 0x8000u;
    const float a = abs(v);
    if (isnan(v) || (h & 0x7FFFu) >= 0x7C00u) return h;
    if (a >= 65520.0) return sign | 0x7C00u; // where round-to-nearest overflows
    uint lo = h & 0x7FFFu; // then the largest f16 magnitude <= a
    if (unpackHalf2x16(lo).x > a) lo -= 1u;
    const float dl = a - unpackHalf2x16(lo).x, dh = unpackHalf2x16(lo + 1u).x - a;
    const uint m = dl < dh ? lo : dh < dl ? lo + 1u : ((lo & 1u) == 0u ? lo : lo + 1u);
    return sign | m;
}
float f16_round(float v) { return unpackHalf2x16(f16_bits_rne(v)).x; }
uint pack_half2_rne(vec2 v) { return f16_bits_rne(v.x) | (f16_bits_rne(v.y) << 16); }
#endif

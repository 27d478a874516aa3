#ifndef TERNLM_EXACT_GLSL
#define TERNLM_EXACT_GLSL
// Arithmetic rounded as IEEE rounds it, where GLSL allows less: its
// division may be off by a few ulp (NVIDIA's is, lavapipe's is not), and an
// ulp of 127 / max moves values that sit on a rounding boundary to the next
// 8-bit step, away from what the CPU (and llama.cpp) computes.

// x as hi + lo, each of at most 12 significant bits (Veltkamp's split), so
// that products of halves are exact: Dekker's exact product, for residuals
// that do not assume a fused fma (lavapipe's is not).
vec2 split12(float x) {
    precise const float c = 4097.0 * x, hi = c - (c - x), lo = x - hi;
    return vec2(hi, lo);
}

// a / b correctly rounded (but for quotients within ~1e-7 ulp of a
// midpoint): the residual r = a - q * b of the device's quotient q, exact by
// Dekker's product, corrects q.
float div_rn(float a, float b) {
    precise const float q = a / b;
    // Veltkamp's split overflows beyond ~8e34 (4097 * x), and an infinite
    // quotient or divisor has no residual: there q is returned as it is
    // (silu(x) of x < -80 divides x by exp(-x) > 1e35, or by inf below
    // -88.7; the result must be the CPU's ~0, not NaN).
    if (!(abs(q) < 1e30) || !(abs(b) < 1e30)) return q;
    const vec2 qs = split12(q), bs = split12(b);
    precise const float r = (((a - qs.x * bs.x) - qs.x * bs.y) - qs.y * bs.x) - qs.y * bs.y;
    precise const float c = q + r / b;
    return c;
}

// f32 to f16 rounded to nearest, ties to even, as the CPU's conversion
// (F16C, ggml's) rounds: packHalf2x16's rounding is the implementation's
// choice, and NVIDIA's is not to nearest (measured: the Q8_0-family
// activation scales and the f16 KV cache then differ from the CPU's by an
// ulp). f16_round gives the value as a float: for normal f16 magnitudes
// the f32 mantissa rounded to 10 bits in the bit pattern (a carry moves
// into the exponent as it should), for subnormal ones a multiple of 2^-24.
// Every case is computed and the result selected, without branches: in
// attention's sequential f16 fold the data-dependent branches diverged
// the warp at every key.
float f16_round(float v) {
    const uint x = floatBitsToUint(v);
    const float a = abs(v);
    const float normal = uintBitsToFloat((x + 0x0FFFu + ((x >> 13) & 1u)) & 0xFFFFE000u);
    const float subnormal = roundEven(v * 16777216.0) * 5.9604644775390625e-08; // 2^24, 2^-24
    const float overflow = uintBitsToFloat((x & 0x80000000u) | 0x7F800000u); // rounds to infinity
    float r = mix(normal, overflow, a >= 65520.0);
    r = mix(r, subnormal, a < 6.103515625e-05); // 2^-14
    return mix(r, v, isnan(v));
}
// Two values so rounded, packed as f16 bits (the conversion of an exact
// value is exact whatever the implementation's rounding).
uint pack_half2_rne(vec2 v) { return packHalf2x16(vec2(f16_round(v.x), f16_round(v.y))); }

// sqrt(v) correctly rounded (GLSL's may be off by an ulp or two): the
// residual v - s * s, exact by Dekker's product, corrects s.
float sqrt_rn(float v) {
    precise const float s = sqrt(v);
    if (!(s > 0.0) || isinf(s)) return s;
    const vec2 h = split12(s);
    precise const float r = ((v - h.x * h.x) - 2.0 * h.x * h.y) - h.y * h.y;
    precise const float t = s + r / (2.0 * s);
    return t;
}

// e^x within about an ulp, as the CPU's expf (glibc's, correctly rounded)
// nearly always gives it. GLSL's exp (2^(x * log2 e) on NVIDIA) loses the
// rounding of x * log2 e: ~1e-6 relative at |x| = 10, enough to move
// softmax weights and flip the f16 roundings after them. Cody-Waite
// reduction by ln 2 in two parts (n * C1 is exact), then Cephes' expf
// polynomial on |r| <= ln 2 / 2.
float exp_acc(float x) {
    if (x > 88.72283) return uintBitsToFloat(0x7F800000u);
    if (x < -103.97208) return 0.0;
    precise const float n = roundEven(x * 1.44269504088896341);
    precise const float r = (x - n * 0.693359375) - n * -2.12194440e-4;
    precise float p = 1.9875691500e-4;
    p = p * r + 1.3981999507e-3;
    p = p * r + 8.3334519073e-3;
    p = p * r + 4.1665795894e-2;
    p = p * r + 1.6666665459e-1;
    p = p * r + 5.0000001201e-1;
    precise const float e = (p * r) * r + r + 1.0;
    return ldexp(e, int(n));
}

// (cos x, sin x) within about an ulp for |x| < 2^12 (RoPE angles are
// positions times frequencies <= 1), where GLSL's are absolute-error
// approximations. Cody-Waite reduction by pi/2 in three parts, then
// Cephes' sinf/cosf polynomials on |r| <= pi/4.
vec2 cos_sin_acc(float x) {
    precise const float q = roundEven(x * 0.636619772367581343);
    precise const float r = ((x - q * 1.5703125) - q * 4.837512969970703125e-4) - q * 7.54978995489188216e-8;
    precise const float z = r * r;
    precise const float sr = ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1) * z * r + r;
    precise const float cr = ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2) * z * z - 0.5 * z + 1.0;
    const uint k = uint(int(q)) & 3u;
    return k == 0u ? vec2(cr, sr) : k == 1u ? vec2(-sr, cr) : k == 2u ? vec2(-cr, -sr) : vec2(sr, -cr);
}

// The angle of RoPE pair i at position pos before freq_scale, as the CPU
// and ggml compute it: pos * theta_scale^i one rounded product at a time
// (pair i + 1's is this times theta_scale, bit for bit).
float rope_theta(uint pos, uint i, float theta_scale) {
    precise float theta = float(pos);
    for (uint k = 0u; k < i; ++k) theta *= theta_scale;
    return theta;
}
// (cos, sin) of the angle theta * freq_scale.
vec2 rope_cos_sin_at(float theta, float freq_scale) {
    precise const float t = theta * freq_scale;
    return cos_sin_acc(t);
}
// (cos, sin) of RoPE pair i at position pos (rope.comp, rope_kv.comp, gemv.comp).
vec2 rope_cos_sin(uint pos, uint i, float theta_scale, float freq_scale) {
    return rope_cos_sin_at(rope_theta(pos, i, theta_scale), freq_scale);
}
// The pair (x0, x1) rotated by cs = (cos, sin), each product rounded before
// its add (no fused multiply-adds), as the CPU rounds it.
vec2 rope_rotate(float x0, float x1, vec2 cs) {
    precise const float a = x0 * cs.x - x1 * cs.y, b = x0 * cs.y + x1 * cs.x;
    return vec2(a, b);
}
#endif

// The RMSNorm scale 1 / sqrt(mean(x^2) + eps) of a row, its squares summed
// in one fixed order whatever the workgroup's size: 256 partial sums (the
// one thread t of norm_quant.comp's 256 takes vec4s t, t + 256, ... into four
// interleaved accumulators), then a tree. norm_quant.comp (256 threads) and
// gemv.comp's NORM_TAIL build (64) so reach the same bits.
//
// The including kernel defines vec4 row4(uint i), the row's values 4i..4i+3,
// and includes exact.glsl.
#define NORM_PARTS 256u
shared float s_red[NORM_PARTS];

float norm_partial(uint t, uint n4) {
    // 16-byte loads, four in flight (rows are whole blocks of 32 or 256, so
    // multiples of 4): in norm_quant.comp every workgroup reads the row, and
    // this loop is the kernel's latency.
    vec4 a0 = vec4(0.0), a1 = vec4(0.0), a2 = vec4(0.0), a3 = vec4(0.0);
    uint i = t;
    for (; i + 3u * NORM_PARTS < n4; i += 4u * NORM_PARTS) {
        const vec4 u0 = row4(i), u1 = row4(i + NORM_PARTS), u2 = row4(i + 2u * NORM_PARTS),
                   u3 = row4(i + 3u * NORM_PARTS);
        a0 += u0 * u0;
        a1 += u1 * u1;
        a2 += u2 * u2;
        a3 += u3 * u3;
    }
    for (; i < n4; i += NORM_PARTS) {
        const vec4 u = row4(i);
        a0 += u * u;
    }
    const vec4 s = (a0 + a1) + (a2 + a3);
    return (s.x + s.y) + (s.z + s.w);
}

// The scale for the row of n4 vec4s (ncols values). Call from uniform
// control flow.
float rms_scale(uint n4, uint ncols, float eps) {
    const uint tid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
    for (uint t = tid; t < NORM_PARTS; t += nt) s_red[t] = norm_partial(t, n4);
    barrier();
    for (uint s = NORM_PARTS / 2u; s > 0u; s >>= 1) {
        for (uint t = tid; t < s; t += nt) s_red[t] += s_red[t + s];
        barrier();
    }
    return div_rn(1.0, sqrt_rn(div_rn(s_red[0], float(ncols)) + eps));
}

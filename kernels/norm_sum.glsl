// The RMSNorm scale 1 / sqrt(mean(x^2) + eps) of a row, its squares summed
// in one fixed order whatever the workgroup's size: NORM_PARTS partial sums
// (partial t takes vec4s t, t + 64, t + 128, ... into four interleaved
// accumulators), then a tree. norm_quant.comp (256 threads) and gemv.comp's
// NORM_TAIL build (64) so reach the same bits. A partial's loads are issued
// eight at a time, all in flight: in norm_quant.comp every workgroup reads
// the row, and in gemv_norm one workgroup waits for it, so these loads are
// the latency.
//
// The including kernel defines vec4 row4(uint i), the row's values 4i..4i+3,
// and includes exact.glsl.
#define NORM_PARTS 64u
shared float s_red[NORM_PARTS];

float norm_partial(uint t, uint n4) {
    vec4 a[4] = vec4[4](vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    for (uint i0 = t; i0 < n4; i0 += 8u * NORM_PARTS) {
        vec4 u[8];
        for (uint k = 0u; k < 8u; ++k) {
            const uint i = i0 + k * NORM_PARTS;
            u[k] = i < n4 ? row4(i) : vec4(0.0);
        }
        for (uint k = 0u; k < 8u; ++k) a[k % 4u] += u[k] * u[k]; // zeros past the row add nothing
    }
    const vec4 s = (a[0] + a[1]) + (a[2] + a[3]);
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

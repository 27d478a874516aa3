// The 8-bit quantization of a row, 32 consecutive values (a "run") per
// invocation, for a kernel whose few invocations quantize a whole row (one
// workgroup's tail): the block's maximum meets across qk / 32 neighbouring
// lanes of a subgroup by shuffles, not through shared memory and barriers.
// The blocks come out as act_quant_body.glsl writes them (ggml's
// quantize_row_q8_0 for qk 32, quantize_row_q8_K for qk 256, the first
// value of largest magnitude winning ties), bit for bit.
//
// The including kernel declares QOUT_Q (uint, four values a word), QOUT_D
// (float, a block's d) and QOUT_S (int, sums of runs of 16), enables
// GL_KHR_shader_subgroup_shuffle, and includes exact.glsl. The subgroup
// must hold qk / 32 lanes (8 for qk 256).

// Quantizes run `run` of the row, whose values are v, into blocks of qk.
// Call from uniform control flow (the shuffles), with live false for
// invocations past the row's last run.
void quantize_run(float v[32], uint run, uint qk, bool live) {
    float amax = 0.0, vmax = 0.0;
    for (uint j = 0u; j < 32u; ++j) {
        if (abs(v[j]) > amax) { // strict: the first of equal magnitudes wins, as in ggml
            amax = abs(v[j]);
            vmax = v[j];
        }
    }
    // A butterfly over the block's lanes. The partner's runs come before
    // this lane's where this lane's bit `off` is set: on equal magnitudes
    // the earlier value wins, so every lane ends with the block's first
    // maximum.
    const uint lanes = qk / 32u, lane = gl_SubgroupInvocationID;
    for (uint off = 1u; off < lanes; off <<= 1) {
        const float oa = subgroupShuffleXor(amax, off), om = subgroupShuffleXor(vmax, off);
        if (oa > amax || (oa == amax && (lane & off) != 0u)) {
            amax = oa;
            vmax = om;
        }
    }
    float d = 0.0, id = 0.0;
    if (amax != 0.0) {
        if (qk == 32u) {
            d = f16_round(div_rn(amax, 127.0));
            id = div_rn(127.0, amax);
        } else {
            id = div_rn(-127.0, vmax);
            d = div_rn(1.0, id);
        }
    }
    if (!live) return;
    int sums[2] = int[2](0, 0);
    for (uint w = 0u; w < 8u; ++w) {
        uint word = 0u;
        for (uint b = 0u; b < 4u; ++b) {
            const int q = int(min(roundEven(v[4u * w + b] * id), 127.0));
            sums[w / 4u] += q;
            word |= uint(q & 0xFF) << (8u * b);
        }
        QOUT_Q[run * 8u + w] = word;
    }
    if (run % lanes == 0u) QOUT_D[run / lanes] = d;
    QOUT_S[2u * run] = sums[0];
    QOUT_S[2u * run + 1u] = sums[1];
}

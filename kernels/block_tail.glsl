// The 8-bit quantization of a row that several workgroups write, done as
// each quantization block completes, by the workgroup that completes it
// (completion.glsl: each counts the values it wrote to its block's counter
// in C, and the one that completes the block quantizes it with
// act_quant_body.glsl).
//
// The including kernel declares the coherent counters C, the shared arrays
// act_quant_body.glsl needs (one entry per invocation), QOUT_Q, QOUT_D,
// QOUT_S and QOUT_QK (the outputs and the block size), and
// float tail_value(uint i), value i of the row, read coherently.

#include "act_quant_body.glsl"
#include "completion.glsl"

// Quantizes blocks [b0, b0 + nb) of the row: QOUT_QK / 8 invocations a
// block, 8 consecutive values each, as many blocks at once as the
// workgroup has invocations for. Call from uniform control flow.
void quantize_blocks(uint b0, uint nb) {
    const uint tid = gl_LocalInvocationID.x, tpb = QOUT_QK / 8u, per_pass = gl_WorkGroupSize.x / tpb;
    for (uint first = 0u; first < nb; first += per_pass) {
        const bool live = first + tid / tpb < nb;
        const uint blk = b0 + first + tid / tpb, x0 = blk * QOUT_QK + (tid % tpb) * 8u;
        float v[8];
        for (uint j = 0u; j < 8u; ++j) v[j] = live ? tail_value(x0 + j) : 0.0;
        quantize_values(v, blk, x0, live);
    }
}

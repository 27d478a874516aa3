// The 8-bit quantization of a row that several workgroups write, done as
// each quantization block completes, by the workgroup that completes it:
// each adds the values it wrote to its block's counter in C (atomically,
// after its writes), and the one whose addition reaches the block's size
// quantizes the block (act_quant_body.glsl) and resets the counter for the
// next use. No workgroup waits for another, so this needs no guarantee of
// which run together; only the completing workgroup reads what others
// wrote, after the atomic that follows their writes, from coherent buffers.
//
// The including kernel declares the coherent counters C, the shared arrays
// act_quant_body.glsl needs (one entry per invocation), QOUT_Q, QOUT_D,
// QOUT_S and QOUT_QK (the outputs and the block size), and
// float tail_value(uint i), value i of the row, read coherently.

#include "act_quant_body.glsl"

shared bool s_block_done;

// Counts n values of block blk as written (this invocation's writes are
// done). True, in the whole workgroup, where that completed the block:
// `target` values. Call from uniform control flow.
bool block_completed(uint blk, uint n, uint target) {
    // As a grid-wide barrier does it: the workgroup's writes are ordered
    // before the barrier, and one invocation's device-scope fence after it
    // orders them all before the count that publishes them (fences are
    // cumulative), so the other invocations need not wait for their stores.
    barrier();
    if (gl_LocalInvocationID.x == 0u) {
        memoryBarrierBuffer();
        const bool done = atomicAdd(C[blk], n) + n == target;
        if (done) {
            memoryBarrierBuffer(); // the others' writes, before this workgroup reads them
            C[blk] = 0u;           // ready for the next use
        }
        s_block_done = done;
    }
    barrier();
    return s_block_done;
}

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

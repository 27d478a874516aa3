#version 450
#extension GL_GOOGLE_include_directive : require
// Routing of a mixture of experts, one row per workgroup, in the CPU's
// order of operations (cpu/moe.cpp): softmax of the router's logits, the
// n_used most probable experts (the lower index first on ties), each
// weighted by its probability over the chosen ones' sum. Writes every
// expert's weight for the row, 0 for those not chosen (moe_add.comp reads them).
layout(local_size_x = 1) in;

layout(std430, binding = 0) readonly buffer Logits { float L[]; };  // rows x n_expert
layout(std430, binding = 1) writeonly buffer Weights { float W[]; }; // rows x n_expert
layout(push_constant) uniform Params { uint n_expert, n_used; } p;

#include "exact.glsl"

const uint MAX_EXPERTS = 256u;
shared float prob[MAX_EXPERTS];
shared bool taken[MAX_EXPERTS];

void main() {
    const uint base = gl_WorkGroupID.x * p.n_expert;
    float mx = L[base];
    for (uint e = 1u; e < p.n_expert; ++e) mx = max(mx, L[base + e]);
    float sum = 0.0;
    for (uint e = 0u; e < p.n_expert; ++e) {
        prob[e] = exp_acc(L[base + e] - mx);
        sum += prob[e];
        taken[e] = false;
    }
    for (uint e = 0u; e < p.n_expert; ++e) prob[e] = div_rn(prob[e], sum);
    float used = 0.0;
    for (uint j = 0u; j < p.n_used; ++j) { // the next most probable, in rank order
        uint best = MAX_EXPERTS;
        for (uint e = 0u; e < p.n_expert; ++e)
            if (!taken[e] && (best == MAX_EXPERTS || prob[e] > prob[best])) best = e;
        taken[best] = true;
        used += prob[best];
    }
    for (uint e = 0u; e < p.n_expert; ++e) W[base + e] = taken[e] ? div_rn(prob[e], used) : 0.0;
}

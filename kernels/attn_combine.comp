#version 450
// Joins the partial results of split-K attention (attention.comp with
// n_split > 1) into each head's output row (attn_join.glsl), one workgroup
// a head.
//
// Built a second time with -DQUANT (attn_combine_quant, decode): the row is
// also quantized to 8 bits for the attention output's integer GEMV, block
// by block as heads complete blocks (block_tail.glsl), where act_quant.comp
// took a dispatch of its own. Needs head_dim a multiple of p.qk or p.qk a
// multiple of head_dim (a head's values fill whole blocks or part of one).
// (attention.comp's JOIN_QUANT build does the same in the attention
// dispatch; this one serves where that is off, TERNLM_VK_FUSE=0 aside.)
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_shuffle : require
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Partials { float P[]; }; // per (head, split): max, sum, acc[head_dim]
#ifdef QUANT
layout(std430, binding = 1) coherent buffer Output { float O[]; };
layout(std430, binding = 2) coherent buffer Counters { uint C[]; };
layout(std430, binding = 3) writeonly buffer OutQuants { uint OQ[]; };
layout(std430, binding = 4) writeonly buffer OutScales { float OD[]; };
layout(std430, binding = 5) writeonly buffer OutSums { int OS[]; };
layout(push_constant) uniform Params { uint n_head, head_dim, n_split, qk; } p;
#else
layout(std430, binding = 1) writeonly buffer Output { float O[]; };
layout(push_constant) uniform Params { uint n_head, head_dim, n_split; } p;
#endif

#include "exact.glsl"

#define PARTIAL(i) P[i]
#define JOINED(i) O[i]
#include "attn_join.glsl"

void main() {
    join_head(gl_WorkGroupID.x, p.n_split);
#ifdef QUANT
    quantize_tail(gl_WorkGroupID.x);
#endif
}

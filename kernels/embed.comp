#version 450
// Embedding lookup: out[t] = scale * row tokens[t] of the table, dequantized,
// for a table the device holds anyway (a tied output matrix, in the layout
// kernels/dequant.glsl reads). Workgroup (x, t) writes 256 columns of row t.
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 256) in;

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 1) readonly buffer Tokens { int T[]; };
layout(std430, binding = 2) writeonly buffer Output { float O[]; };

layout(push_constant) uniform Params {
    uint ncols, nrows, row_bytes;
    float scale; // the table's tensor scale (1 for most)
} p;

#include "common.glsl"
#include "dequant.glsl"

void main() {
    const uint t = gl_WorkGroupID.y, i = gl_GlobalInvocationID.x;
    if (i >= p.ncols) return;
    // Ids are checked on the host before a step; the clamp only keeps a
    // bad one from reading outside the table.
    const uint row = min(uint(max(T[t], 0)), p.nrows - 1u);
    O[t * p.ncols + i] = p.scale * dq(block_offset(row, i / QK), i % QK);
}

#version 450
// Rows row0 .. row0 + p.part_rows - 1 of a quantized weight matrix as f16,
// row-major, for gemm_coop.comp: prefill dequantizes each weight once here
// rather than once per 64-token tile inside the GEMM (which spent a third
// of its time on it, H100, llama8b Q4_K pp512).
//
// Each thread writes 16 consecutive weights of one row (two 16-byte
// stores), each rounded to nearest even. Every quantized type but TQ2_0,
// whose 2-bit fields gemm_coop.comp decodes in its tiles (two bits cost
// less to read than sixteen).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; };
layout(std430, binding = 1) writeonly buffer Rows { uvec4 H4[]; };

layout(push_constant) uniform Params {
    uint ncols, nrows, row_bytes; // the whole matrix (its planar d sits after all rows' payloads)
    uint row0, part_rows;         // the rows written
    uint groups_x;                // the grid's width (the grid is folded into y)
} p;

#include "common.glsl"
#include "dequant.glsl"
#include "weights16.glsl"
#include "exact.glsl"
#include "pack_f16.glsl"

void main() {
    const uint i = (gl_WorkGroupID.x + gl_WorkGroupID.y * p.groups_x) * 64u + gl_LocalInvocationID.x;
    const uint runs = p.ncols / 16u, r = i / runs, k = (i % runs) * 16u;
    if (r >= p.part_rows) return;
    float w[16];
    weights16(block_offset(p.row0 + r, k / QK), k % QK, w);
    const uint o = (r * p.ncols + k) >> 3;
    H4[o] = pack8_f16(w, 0u);
    H4[o + 1u] = pack8_f16(w, 8u);
}

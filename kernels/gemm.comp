#version 450
// Prefill GEMM on f32 tiles: Y[t][r] = scale * sum_k W[r][k] * x[t][k] (or
// Y += that with p.accumulate, the residual add fused) for a quantized
// weight type and activations that act_quant.comp has rounded to 8-bit
// blocks (x = d * q, as ggml's vec_dot_type holds them). The devices with
// matrix units take dequant_f16.comp and gemm_coop.comp instead; this is
// the form any Vulkan 1.1 device runs (lavapipe in CI).
//
// A workgroup owns a tile of BM weight rows by BN activation rows (tokens)
// and walks k in steps of BK: it dequantizes the BM x BK weight tile and the
// BN x BK activation tile into shared memory once, and every weight loaded
// from memory then serves BN tokens (the GEMV kernels' 8 at most). Tiles
// are 64 x 64 on 128 threads, each thread a 4 x 8 block of outputs with
// plain FMAs.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require

#define WG 128u
#define BM 64u
#define BN 64u
#define BK 32u
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
layout(std430, binding = 0) readonly buffer Weights4 { uvec4 W4[]; };
layout(std430, binding = 1) readonly buffer Quants { uvec4 XQ4[]; };
layout(std430, binding = 2) readonly buffer Scales { float XD[]; };
layout(std430, binding = 3) buffer Output { float Y[]; };

layout(push_constant) uniform Params {
    uint ncols, nrows, ntok, row_bytes;
    float scale;
    uint accumulate; // 1: Y += result, 0: Y = result
} p;

#include "common.glsl"
#include "dequant.glsl"
#include "weights16.glsl"

#define ACT_QK (QK == 256u ? 256u : 32u)

// The tiles are stored k-major, [k][row] and [k][token], so a thread reads
// its 4 rows and 8 tokens at one k as runs.
shared float sw[BK * (BM + 4u)], sx[BK * (BN + 4u)];
uint w_index(uint r, uint k) { return k * (BM + 4u) + r; }
uint x_index(uint t, uint k) { return k * (BN + 4u) + t; }

// Thread tid fills half of the 32-wide k-run of each tile: 16 weights of
// row tid / 2 and 16 activations of token tid / 2 (BM = BN = WG / 2); rows
// and tokens past the ends are zeros.
void load_tiles(uint row0, uint tok0, uint k0, uint tid) {
    const uint i = tid >> 1, j0 = (tid & 1u) * 16u;
    const uint k = k0 + j0;
    float w[16];
    if (row0 + i < p.nrows) {
        weights16(block_offset(row0 + i, k / QK), k % QK, w);
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = 0.0;
    }
    [[unroll]] for (uint j = 0u; j < 16u; ++j) sw[w_index(i, j0 + j)] = w[j];

    const uint t = tok0 + i;
    float x[16];
    if (t < p.ntok) {
        const uint e = t * p.ncols + k; // 16-aligned: rows are whole blocks of >= 32
        const float d = XD[e / ACT_QK];
        const uvec4 q = XQ4[e >> 4];
        [[unroll]] for (uint j = 0u; j < 16u; ++j) x[j] = d * float(int(q[j >> 2] << (24u - 8u * (j & 3u))) >> 24);
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) x[j] = 0.0;
    }
    [[unroll]] for (uint j = 0u; j < 16u; ++j) sx[x_index(i, j0 + j)] = x[j];
}

void store(uint t, uint r, float v) {
    if (t >= p.ntok || r >= p.nrows) return;
    const uint i = t * p.nrows + r;
    precise const float y = v * p.scale; // rounded before the add, as a separate add does
    Y[i] = p.accumulate != 0u ? Y[i] + y : y;
}

void main() {
    const uint tid = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
    const uint tr = (tid & 15u) * 4u, tt = (tid >> 4) * 8u; // this thread's rows and tokens in the tile
    float acc[4][8];
    [[unroll]] for (uint r = 0u; r < 4u; ++r)
        [[unroll]] for (uint t = 0u; t < 8u; ++t) acc[r][t] = 0.0;
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        load_tiles(row0, tok0, k0, tid);
        barrier();
        for (uint k = 0u; k < BK; ++k) {
            float a[4], b[8];
            [[unroll]] for (uint r = 0u; r < 4u; ++r) a[r] = sw[w_index(tr + r, k)];
            [[unroll]] for (uint t = 0u; t < 8u; ++t) b[t] = sx[x_index(tt + t, k)];
            [[unroll]] for (uint r = 0u; r < 4u; ++r)
                [[unroll]] for (uint t = 0u; t < 8u; ++t) acc[r][t] = fma(a[r], b[t], acc[r][t]);
        }
        barrier();
    }
    [[unroll]] for (uint r = 0u; r < 4u; ++r)
        [[unroll]] for (uint t = 0u; t < 8u; ++t) store(tok0 + tt + t, row0 + tr + r, acc[r][t]);
}

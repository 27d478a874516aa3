#version 450
// Prefill GEMM: Y[t][r] = scale * sum_k W[r][k] * x[t][k] (or Y += that with
// p.accumulate, the residual add fused) for a quantized weight type and
// activations that act_quant.comp has rounded to 8-bit blocks (x = d * q, as
// ggml's vec_dot_type holds them).
//
// A workgroup owns a tile of BM weight rows by BN activation rows (tokens)
// and walks k in steps of BK: it dequantizes the BM x BK weight tile and the
// BN x BK activation tile into shared memory once, and every weight loaded
// from memory then serves BN tokens (the GEMV kernels' 8 at most). Built two
// ways:
//  - COOPMAT: tiles in f16, products on the device's matrix units through
//    GL_NV_cooperative_matrix (CM x CN x CK per instruction, f32 sums); each
//    subgroup owns a 32 x 32 quarter of the tile.
//  - otherwise: tiles in f32, each thread a 4 x 8 block of outputs with
//    plain FMAs (any Vulkan 1.1 device; what lavapipe runs in CI).
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef COOPMAT
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

#define WG 128u
#define BM 64u
#define BN 64u
#define BK 32u
layout(local_size_x = 128) in;

layout(std430, binding = 0) readonly buffer Weights { uint W[]; };
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

#define ACT_QK (QK == 256u ? 256u : 32u)

#ifdef COOPMAT
#define TILE_T float16_t
#define SA (BK + 8u) // row stride of the tiles in shared memory (padded against bank conflicts)
#else
#define TILE_T float
#define SA (BM + 4u) // the f32 tiles are stored k-major: [k][row] and [k][token]
#endif
shared TILE_T sw[BM * (BK + 8u) > BK * (BM + 4u) ? BM * (BK + 8u) : BK * (BM + 4u)];
shared TILE_T sx[BN * (BK + 8u) > BK * (BN + 4u) ? BN * (BK + 8u) : BK * (BN + 4u)];

#ifdef COOPMAT
uint w_index(uint r, uint k) { return r * SA + k; }
uint x_index(uint t, uint k) { return t * SA + k; }
#else
uint w_index(uint r, uint k) { return k * SA + r; }
uint x_index(uint t, uint k) { return k * (BN + 4u) + t; }
#endif

// Thread tid fills half a row of each tile: 16 weights of row tid / 2 and 16
// activations of token tid / 2; rows and tokens past the ends are zeros.
void load_tiles(uint row0, uint tok0, uint k0, uint tid) {
    const uint i = tid >> 1, j0 = (tid & 1u) * 16u;
    const uint k = k0 + j0, blk = k / QK;
    float w[16];
    if (row0 + i < p.nrows) {
        const uint b = block_offset(row0 + i, blk);
        const uint jb = k % QK;
        [[unroll]] for (uint g = 0u; g < 16u; g += (SUB < 16u ? SUB : 16u)) {
            const vec2 ac = affine(b, jb + g);
            [[unroll]] for (uint j = g; j < g + (SUB < 16u ? SUB : 16u); ++j) w[j] = ac.x * qval(b, jb + j) - ac.y;
        }
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) w[j] = 0.0;
    }
    [[unroll]] for (uint j = 0u; j < 16u; ++j) sw[w_index(i, j0 + j)] = TILE_T(w[j]);

    const uint t = tok0 + i;
    if (t < p.ntok) {
        const uint e = t * p.ncols + k; // 16-aligned: rows are whole blocks of >= 32
        const float d = XD[e / ACT_QK];
        const uvec4 q = XQ4[e >> 4];
        [[unroll]] for (uint j = 0u; j < 16u; ++j) {
            const int v = int(q[j >> 2] << (24u - 8u * (j & 3u))) >> 24;
            sx[x_index(i, j0 + j)] = TILE_T(d * float(v));
        }
    } else {
        [[unroll]] for (uint j = 0u; j < 16u; ++j) sx[x_index(i, j0 + j)] = TILE_T(0.0);
    }
}

void store(uint t, uint r, float v) {
    if (t >= p.ntok || r >= p.nrows) return;
    const uint i = t * p.nrows + r;
    precise const float y = v * p.scale; // rounded before the add, as a separate add does
    Y[i] = p.accumulate != 0u ? Y[i] + y : y;
}

#ifdef COOPMAT
// Each subgroup: rows (s & 1) * 32 .. +31 and tokens (s >> 1) * 32 .. +31 of
// the tile, as MT x NT_ matrices of CM x CN.
#define MT (32u / CM)
#define NT_ (32u / CN)
shared float sy[BN * BM]; // the sums, token-major, for the bounds-checked store

void main() {
    const uint tid = gl_LocalInvocationID.x, s = gl_SubgroupID;
    const uint row0 = gl_WorkGroupID.x * BM, tok0 = gl_WorkGroupID.y * BN;
    const uint sr = (s & 1u) * 32u, st = (s >> 1) * 32u;
    fcoopmatNV<32, gl_ScopeSubgroup, CM, CN> acc[MT][NT_];
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n) acc[m][n] = fcoopmatNV<32, gl_ScopeSubgroup, CM, CN>(0.0);
    for (uint k0 = 0u; k0 < p.ncols; k0 += BK) {
        load_tiles(row0, tok0, k0, tid);
        barrier();
        [[unroll]] for (uint kk = 0u; kk < BK; kk += CK) {
            fcoopmatNV<16, gl_ScopeSubgroup, CM, CK> a[MT];
            fcoopmatNV<16, gl_ScopeSubgroup, CK, CN> b[NT_];
            [[unroll]] for (uint m = 0u; m < MT; ++m) coopMatLoadNV(a[m], sw, w_index(sr + m * CM, kk), SA, false);
            [[unroll]] for (uint n = 0u; n < NT_; ++n) coopMatLoadNV(b[n], sx, x_index(st + n * CN, kk), SA, true);
            [[unroll]] for (uint m = 0u; m < MT; ++m)
                [[unroll]] for (uint n = 0u; n < NT_; ++n) acc[m][n] = coopMatMulAddNV(a[m], b[n], acc[m][n]);
        }
        barrier();
    }
    // Element (row, token) at token * BM + row: a column-major store.
    [[unroll]] for (uint m = 0u; m < MT; ++m)
        [[unroll]] for (uint n = 0u; n < NT_; ++n)
            coopMatStoreNV(acc[m][n], sy, (st + n * CN) * BM + sr + m * CM, BM, true);
    barrier();
    for (uint e = tid; e < BM * BN; e += WG) store(tok0 + e / BM, row0 + e % BM, sy[e]);
}

#else
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
#endif

// The weight type named by the TYPE_* macro the build defines: dq(block byte
// offset, index in block) gives one weight, QK is the block's element count
// and BLOCK_BYTES its size. Layouts are ggml's (lib/quant/blocks.hpp), except that
// the PLANAR types keep their d in a plane of its own on the device;
// tests/test_vulkan.cpp checks every type against the CPU reference.
//
// Quantized types also give the GEMV's fast form: within a group of SUB
// weights that share their scales, w_j = a * qval(j) - c with
// (a, c) = affine(b, j), so the kernel sums qval * x and x over the group and
// applies a and c once. Where c = a * QOFF (an integer zero point), the
// kernel forms the exact integer sum of (q - QOFF) * x first, as ggml does.
//
// ACT says how the activations are rounded before the products, as llama.cpp's
// CPU backend does by converting them to the type's vec_dot_type: none (F32),
// to f16, to bf16, or to 8-bit blocks (Q8_0: 32 values and an f16 scale; Q8_K:
// 256 values and an f32 scale). Matching it keeps the GPU's logits within the
// goldens' tolerances, and 8-bit activations are what BitNet b1.58 specifies.
#define ACT_NONE 0
#define ACT_F16 1
#define ACT_BF16 2
#define ACT_Q8_0 3
#define ACT_Q8_K 4

// Planar types (lib/backend/vulkan/layout.hpp): b is a block's payload
// offset, and its f16 d sits in the plane after all payloads. Defined before
// the types that use it; PAYLOAD and QK are macros resolved at the call.
#define BLOCKS_IN_MATRIX (p.nrows * (p.ncols / QK))
#define block_d(b) w_f16_even(BLOCKS_IN_MATRIX * PAYLOAD + ((b) / PAYLOAD) * 2u) // payloads are even

#if defined(TYPE_F32)
#define ACT ACT_NONE
#define QK 1u
#define BLOCK_BYTES 4u
float dq(uint b, uint j) { return uintBitsToFloat(w_u32(b)); }

#elif defined(TYPE_F16)
#define ACT ACT_F16
#define QK 1u
#define BLOCK_BYTES 2u
float dq(uint b, uint j) { return w_f16(b); }

#elif defined(TYPE_BF16)
#define ACT ACT_BF16
#define QK 1u
#define BLOCK_BYTES 2u
float dq(uint b, uint j) { return uintBitsToFloat(w_u16(b) << 16); }

#elif defined(TYPE_Q8_0)
#define ACT ACT_Q8_0
#define QK 32u
#define BLOCK_BYTES 34u
#define SUB 32u
#define QOFF 0.0
#define PLANAR
#define PAYLOAD 32u
vec2 affine(uint b, uint j) { return vec2(block_d(b), 0.0); }
float qval(uint b, uint j) { return float(w_i8(b + j)); }
#elif defined(TYPE_Q4_0)
#define ACT ACT_Q8_0
#define QK 32u
#define BLOCK_BYTES 18u
#define SUB 32u
#define QOFF 8.0
#define PLANAR
#define PAYLOAD 16u
vec2 affine(uint b, uint j) { const float d = block_d(b); return vec2(d, 8.0 * d); }
float qval(uint b, uint j) {
    const uint q = w_u8(b + (j & 15u));
    return float(j < 16u ? (q & 15u) : (q >> 4));
}
#elif defined(TYPE_Q5_0)
#define ACT ACT_Q8_0
#define QK 32u
#define BLOCK_BYTES 22u
#define SUB 32u
#define QOFF 16.0
#define PLANAR
#define PAYLOAD 20u // qh[4], qs[16]
vec2 affine(uint b, uint j) { const float d = block_d(b); return vec2(d, 16.0 * d); }
float qval(uint b, uint j) {
    uint q = w_u8(b + 4u + (j & 15u));
    q = j < 16u ? (q & 15u) : (q >> 4);
    return float(q | (((w_u32(b) >> j) & 1u) << 4));
}
#elif defined(TYPE_Q4_K) || defined(TYPE_Q5_K)
#define ACT ACT_Q8_K
#define QK 256u
#if defined(TYPE_Q4_K)
#define BLOCK_BYTES 144u
#define QS_OFF 16u
#else
#define BLOCK_BYTES 176u
#define QS_OFF 48u
#endif
// The 6-bit scale and min of sub-block s from a block's 12 scale bytes sc
// (ggml's get_scale_min_k4); gemm_coop.comp calls it on the bytes it holds.
// By selects: a dynamic index into the vector (sc[i >> 2]) put it in local
// memory on NVIDIA (gemm_coop.comp, whose sub-block varies by k-step).
uint k4_byte(uvec3 sc, uint i) {
    const uint word = (i >> 2) == 0u ? sc.x : (i >> 2) == 1u ? sc.y : sc.z;
    return (word >> (8u * (i & 3u))) & 0xFFu;
}
uvec2 k4_scale_min(uvec3 sc, uint s) {
    if (s < 4u) return uvec2(k4_byte(sc, s) & 63u, k4_byte(sc, s + 4u) & 63u);
    return uvec2((k4_byte(sc, s + 4u) & 15u) | ((k4_byte(sc, s - 4u) >> 6) << 4),
                 (k4_byte(sc, s + 4u) >> 4) | ((k4_byte(sc, s) >> 6) << 4));
}
// ... of the block at b (a multiple of 4: blocks of 144 and 176 bytes).
vec2 scale_min(uint b, uint s) {
    return vec2(k4_scale_min(uvec3(W[(b + 4u) >> 2], W[(b + 8u) >> 2], W[(b + 12u) >> 2]), s));
}

#define SUB 32u
vec2 affine(uint b, uint j) {
    const vec2 sm = scale_min(b, j >> 5);
    return vec2(w_f16(b) * sm.x, w_f16(b + 2u) * sm.y);
}
float qval(uint b, uint j) {
    const uint s = j >> 5, l = j & 31u;
    uint q = w_u8(b + QS_OFF + (j >> 6) * 32u + l);
    q = (s & 1u) != 0u ? (q >> 4) : (q & 15u);
#if defined(TYPE_Q5_K)
    q += ((w_u8(b + 16u + l) >> s) & 1u) << 4;
#endif
    return float(q);
}
#elif defined(TYPE_Q6_K)
#define ACT ACT_Q8_K
#define QK 256u
#define BLOCK_BYTES 210u
#define SUB 16u
#define QOFF 32.0
#define PLANAR
#define PAYLOAD 208u // ql[128], qh[64], scales[16]
vec2 affine(uint b, uint j) {
    const uint n = j >> 7, quarter = (j & 127u) >> 5, l = j & 31u;
    const float a = block_d(b) * float(w_i8(b + 192u + n * 8u + (l >> 4) + 2u * quarter));
    return vec2(a, 32.0 * a);
}
float qval(uint b, uint j) {
    const uint n = j >> 7, r = j & 127u, quarter = r >> 5, l = r & 31u;
    uint lo = w_u8(b + n * 64u + l + (quarter & 1u) * 32u);
    lo = quarter >= 2u ? (lo >> 4) : (lo & 15u);
    const uint hi = (w_u8(b + 128u + n * 32u + l) >> (2u * quarter)) & 3u;
    return float(lo | (hi << 4));
}
#elif defined(TYPE_TQ2_0)
#define ACT ACT_Q8_K
#define QK 256u
#define BLOCK_BYTES 66u
#define SUB 32u
#define QOFF 1.0
#define PLANAR
#define PAYLOAD 64u
vec2 affine(uint b, uint j) { const float d = block_d(b); return vec2(d, d); }
float qval(uint b, uint j) {
    const uint q = w_u8(b + (j >> 7) * 32u + (j & 31u));
    return float((q >> (2u * ((j & 127u) >> 5))) & 3u);
}
#else
#error "no TYPE_* defined"
#endif

// Byte offset of block blk of a row (of its payload when PLANAR).
uint block_offset(uint row, uint blk) {
#ifdef PLANAR
    return (row * (p.ncols / QK) + blk) * PAYLOAD;
#else
    return row * p.row_bytes + blk * BLOCK_BYTES;
#endif
}

#ifdef SUB
// One weight of a quantized type, from its group form.
float dq(uint b, uint j) {
    const vec2 ac = affine(b, j);
    return ac.x * qval(b, j) - ac.y;
}
#endif

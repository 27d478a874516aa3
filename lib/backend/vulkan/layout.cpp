#include "backend/vulkan/layout.hpp"

#include <cstring>

#include "common/fp16.hpp"
#include "quant/blocks.hpp"
#include "quant/i2s.hpp"
#include "quant/reference.hpp"

namespace ternlm::vk {

namespace {

struct PlanarLayout {
    bool planar = false;
    uint32_t d_offset = 0; // where the f16 d sits in the file's block
    uint32_t payload = 0;  // block bytes without d
};

PlanarLayout planar_layout(GgmlType t) {
    const uint32_t bytes = uint32_t(type_traits(t).type_size);
    switch (t) {
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q5_0: // d first
        return {true, 0, bytes - 2};
    case GgmlType::Q6_K: case GgmlType::TQ2_0: // d last
        return {true, bytes - 2, bytes - 2};
    default:
        return {};
    }
}

// Rewrites n_blocks consecutive file blocks of type t into the planar layout
// (dst holds the same number of bytes).
void repack_planar(GgmlType t, const uint8_t *src, size_t n_blocks, uint8_t *dst) {
    const PlanarLayout l = planar_layout(t);
    const size_t bytes = l.payload + 2;
    uint8_t *d_plane = dst + n_blocks * l.payload;
    for (size_t i = 0; i < n_blocks; ++i) {
        const uint8_t *b = src + i * bytes;
        const uint8_t *payload = l.d_offset == 0 ? b + 2 : b;
        std::memcpy(dst + i * l.payload, payload, l.payload);
        std::memcpy(d_plane + 2 * i, b + l.d_offset, 2);
    }
}

// An I2_S matrix as planar TQ2_0 in dst.
void repack_i2_s_as_tq2_0(const WeightRef &w, uint8_t *dst) {
    const size_t n_blocks = size_t(w.ne0 / QK_K) * size_t(w.ne1);
    const uint16_t d = f32_to_fp16(w.tensor_scale);
    uint8_t *d_plane = dst + n_blocks * 64;
    // A 256-weight block is two I2_S runs of 32 bytes: TQ2_0's two halves.
    for (size_t i = 0; i < n_blocks * 64; ++i) dst[i] = i2s_swap_fields(w.data[i]);
    for (size_t i = 0; i < n_blocks; ++i) std::memcpy(d_plane + 2 * i, &d, 2);
}

// A TQ1_0 matrix as planar TQ2_0 in dst: each block's trits (base-3 digits
// in TQ1_0) as 2-bit fields, its d as it is. Byte j of half h of a TQ2_0
// block holds weights h*128 + 32*s + j for s = 0..3, at bits 2s, as trit + 1.
void repack_tq1_0_as_tq2_0(const WeightRef &w, uint8_t *dst) {
    const size_t n_blocks = size_t(w.ne0 / QK_K) * size_t(w.ne1);
    const block_tq1_0 *src = reinterpret_cast<const block_tq1_0 *>(w.data);
    uint8_t *d_plane = dst + n_blocks * 64;
    int8_t t[QK_K];
    for (size_t i = 0; i < n_blocks; ++i) {
        tq1_0_trits(src[i], t);
        uint8_t *q = dst + i * 64;
        for (int h = 0; h < 2; ++h)
            for (int j = 0; j < 32; ++j) {
                uint8_t byte = 0;
                for (int sh = 0; sh < 4; ++sh) byte = uint8_t(byte | (t[h * 128 + 32 * sh + j] + 1) << (2 * sh));
                q[h * 32 + j] = byte;
            }
        std::memcpy(d_plane + 2 * i, &src[i].d, 2);
    }
}

} // namespace

WeightRef device_view(const WeightRef &w) {
    if (w.type != GgmlType::I2_S && w.type != GgmlType::TQ1_0) return w;
    WeightRef d = w;
    d.type = GgmlType::TQ2_0;
    d.row_bytes = row_size(GgmlType::TQ2_0, w.ne0);
    d.tensor_scale = 1; // I2_S's is now in every block's d
    return d;
}

bool held_as_in_file(GgmlType t) {
    return t != GgmlType::I2_S && t != GgmlType::TQ1_0 && !planar_layout(t).planar;
}

std::vector<uint8_t> device_bytes(const WeightRef &w) {
    std::vector<uint8_t> out;
    if (held_as_in_file(w.type)) return out;
    if (w.type == GgmlType::I2_S || w.type == GgmlType::TQ1_0) {
        out.resize(device_view(w).row_bytes * size_t(w.ne1));
        if (w.type == GgmlType::I2_S) repack_i2_s_as_tq2_0(w, out.data());
        else repack_tq1_0_as_tq2_0(w, out.data());
    } else { // planar
        out.resize(w.row_bytes * size_t(w.ne1));
        repack_planar(w.type, w.data, out.size() / type_traits(w.type).type_size, out.data());
    }
    return out;
}

} // namespace ternlm::vk

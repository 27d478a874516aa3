// RowLayout::Q4kX8's packing (q4k_x8.hpp); the products are in q4k_x8_avx512.cpp.
#include "backend/cpu/q4k_x8.hpp"

#include <cstdlib>
#include <cstring>

#include "backend/cpu/vec_dot.hpp"

namespace ternlm::cpu {

namespace {
constexpr size_t kScalesAt = 1024, kMinsAt = 1088, kDAt = 1152, kDminAt = 1168;

// One tile block from the 8 rows' Q4_K blocks b[l].
void pack_block(const block_q4_K *const b[kQ4kX8Rows], uint8_t *dst) {
    for (int j = 0; j < 4; ++j)
        for (int k = 0; k < 8; ++k)
            for (int l = 0; l < kQ4kX8Rows; ++l) std::memcpy(dst + (8 * j + k) * 32 + 4 * l, b[l]->qs + 32 * j + 4 * k, 4);
    for (int l = 0; l < kQ4kX8Rows; ++l) {
        for (int s = 0; s < 8; ++s) {
            uint8_t sc, m;
            get_scale_min_k4(s, b[l]->scales, &sc, &m);
            dst[kScalesAt + 8 * s + l] = sc;
            dst[kMinsAt + 16 * (s / 2) + 2 * l + s % 2] = m;
        }
        std::memcpy(dst + kDAt + 2 * l, &b[l]->d, 2);
        std::memcpy(dst + kDminAt + 2 * l, &b[l]->dmin, 2);
    }
}
} // namespace

bool wants_q4k_x8(const WeightRef &w) {
    static const bool off = [] {
        const char *e = std::getenv("TERNLM_Q4K_X8");
        return e && e[0] == '0';
    }();
    return !off && w && w.layout == RowLayout::Plain && w.type == GgmlType::Q4_K && w.ne1 >= kQ4kX8Rows &&
           w.ne0 % QK_K == 0 && w.tensor_scale == 1.0f && detected_isa() == Isa::Avx512Vnni;
}

size_t q4k_x8_bytes(int64_t n_rows, int64_t n_cols) {
    const int64_t tiles = n_rows / kQ4kX8Rows;
    return size_t(tiles) * q4k_x8_tile_bytes(n_cols) +
           size_t(n_rows - tiles * kQ4kX8Rows) * size_t(n_cols / QK_K) * sizeof(block_q4_K);
}

void q4k_x8_pack(const uint8_t *src, uint8_t *dst, int64_t n_rows, int64_t n_cols) {
    const int64_t nb = n_cols / QK_K, tiles = n_rows / kQ4kX8Rows;
    const size_t row_bytes = size_t(nb) * sizeof(block_q4_K);
    for (int64_t t = 0; t < tiles; ++t)
        for (int64_t i = 0; i < nb; ++i) {
            const block_q4_K *b[kQ4kX8Rows];
            for (int l = 0; l < kQ4kX8Rows; ++l)
                b[l] = reinterpret_cast<const block_q4_K *>(src + size_t(t * kQ4kX8Rows + l) * row_bytes) + i;
            pack_block(b, dst + size_t(t) * q4k_x8_tile_bytes(n_cols) + size_t(i) * kQ4kX8BlockBytes);
        }
    std::memcpy(dst + size_t(tiles) * q4k_x8_tile_bytes(n_cols), src + size_t(tiles * kQ4kX8Rows) * row_bytes,
                size_t(n_rows - tiles * kQ4kX8Rows) * row_bytes);
}

void q4k_x8_unpack_row(const WeightRef &w, int64_t r, uint8_t *row) {
    const int64_t nb = w.ne0 / QK_K, tiles = w.ne1 / kQ4kX8Rows;
    const size_t tile_bytes = q4k_x8_tile_bytes(w.ne0);
    if (r >= tiles * kQ4kX8Rows) {
        std::memcpy(row, w.data + size_t(tiles) * tile_bytes + size_t(r - tiles * kQ4kX8Rows) * w.row_bytes, w.row_bytes);
        return;
    }
    const int l = int(r % kQ4kX8Rows);
    for (int64_t i = 0; i < nb; ++i) {
        const uint8_t *src = w.data + size_t(r / kQ4kX8Rows) * tile_bytes + size_t(i) * kQ4kX8BlockBytes;
        block_q4_K &b = reinterpret_cast<block_q4_K *>(row)[i];
        for (int j = 0; j < 4; ++j)
            for (int k = 0; k < 8; ++k) std::memcpy(b.qs + 32 * j + 4 * k, src + (8 * j + k) * 32 + 4 * l, 4);
        std::memset(b.scales, 0, sizeof b.scales);
        for (int s = 0; s < 8; ++s)
            put_scale_min_k4(s, b.scales, src[kScalesAt + 8 * s + l], src[kMinsAt + 16 * (s / 2) + 2 * l + s % 2]);
        std::memcpy(&b.d, src + kDAt + 2 * l, 2);
        std::memcpy(&b.dmin, src + kDminAt + 2 * l, 2);
    }
}

#if !defined(TERNLM_HAVE_AVX512_KERNELS)
void q4k_x8_tile(const uint8_t *, int64_t, const block_q8_K *const *, int, float *const *) {
    std::abort(); // unreachable: wants_q4k_x8() needs AVX-512 VNNI
}
#endif

} // namespace ternlm::cpu

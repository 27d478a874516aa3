// RowLayout::Tiles8's packing (tiles8.hpp); the products are in tiles8_avx512.cpp.
#include "backend/cpu/tiles8.hpp"

#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backend/cpu/vec_dot.hpp"
#include "quant/blocks.hpp"
#include "quant/i2s.hpp"

namespace ternlm::cpu {

namespace {
using namespace tiles8_layout;

// One tile block packed from the rows' blocks b[l] (pack) or unpacked into
// them: the same byte moves both ways (the tile is only read when unpacking).
// Q4_K and Q5_K (o: the type's layout; Q5_K also has its fifth bits).
template <typename Block> void move_k45(Block *const b[kTileRows], uint8_t *tile, bool pack, const K45 &o) {
    for (int l = 0; l < kTileRows; ++l) {
        for (int j = 0; j < 4; ++j)
            for (int k = 0; k < 8; ++k) {
                uint8_t *t = tile + (8 * j + k) * 32 + 4 * l, *q = b[l]->qs + 32 * j + 4 * k;
                pack ? std::memcpy(t, q, 4) : std::memcpy(q, t, 4);
            }
        if constexpr (std::is_same_v<Block, block_q5_K>)
            for (int k = 0; k < 8; ++k) {
                uint8_t *t = tile + o.qh_at + 32 * k + 4 * l, *h = b[l]->qh + 4 * k;
                pack ? std::memcpy(t, h, 4) : std::memcpy(h, t, 4);
            }
        uint8_t *sc = tile + o.scales_at + l, *m = tile + o.mins_at + 2 * l;
        if (pack) {
            for (int s = 0; s < 8; ++s) get_scale_min_k4(s, b[l]->scales, sc + 8 * s, m + 16 * (s / 2) + s % 2);
        } else {
            std::memset(b[l]->scales, 0, sizeof b[l]->scales);
            for (int s = 0; s < 8; ++s) put_scale_min_k4(s, b[l]->scales, sc[8 * s], m[16 * (s / 2) + s % 2]);
        }
        pack ? std::memcpy(tile + o.d_at + 2 * l, &b[l]->d, 2) : std::memcpy(&b[l]->d, tile + o.d_at + 2 * l, 2);
        pack ? std::memcpy(tile + o.dmin_at + 2 * l, &b[l]->dmin, 2) : std::memcpy(&b[l]->dmin, tile + o.dmin_at + 2 * l, 2);
    }
}

void move_q6_k(block_q6_K *const b[kTileRows], uint8_t *tile, bool pack) {
    for (int l = 0; l < kTileRows; ++l) {
        for (int n = 0; n < 2; ++n)
            for (int k = 0; k < 8; ++k) {
                uint8_t *g = tile + kQ6GroupBytes * (2 * n + k / 4) + 32 * (k % 4) + 4 * l;
                uint8_t *h = b[l]->qh + 32 * n + 4 * k, *q0 = b[l]->ql + 64 * n + 4 * k, *q1 = q0 + 32;
                pack ? std::memcpy(g, h, 4) : std::memcpy(h, g, 4);
                pack ? std::memcpy(g + 128, q0, 4) : std::memcpy(q0, g + 128, 4);
                pack ? std::memcpy(g + 256, q1, 4) : std::memcpy(q1, g + 256, 4);
            }
        for (int s = 0; s < 16; ++s) {
            uint8_t *t = tile + kQ6ScalesAt + 8 * s + l;
            pack ? std::memcpy(t, &b[l]->scales[s], 1) : std::memcpy(&b[l]->scales[s], t, 1);
        }
        pack ? std::memcpy(tile + kQ6DAt + 2 * l, &b[l]->d, 2) : std::memcpy(&b[l]->d, tile + kQ6DAt + 2 * l, 2);
    }
}

void move_q8_0(block_q8_0 *const b[kTileRows], uint8_t *tile, bool pack) {
    for (int l = 0; l < kTileRows; ++l) {
        for (int k = 0; k < 8; ++k) {
            uint8_t *t = tile + 32 * k + 4 * l;
            int8_t *q = b[l]->qs + 4 * k;
            pack ? std::memcpy(t, q, 4) : std::memcpy(q, t, 4);
        }
        pack ? std::memcpy(tile + kQ8DAt + 2 * l, &b[l]->d, 2) : std::memcpy(&b[l]->d, tile + kQ8DAt + 2 * l, 2);
    }
}

// Where Q5_0's tile keeps the fifth bit of weight j (tiles8.hpp): bit k of
// byte b for weight 4k + b, bit 4 + k of byte b for weight 16 + 4k + b.
constexpr int q5_0_tile_bit(int j) { return 8 * (j % 4) + (j < 16 ? j / 4 : 4 + (j - 16) / 4); }

// Q4_0 and Q5_0: the nibbles in steps of 4 bytes a row, Q5_0's fifth bits
// rearranged (q5_0_tile_bit), then d.
template <typename Block> void move_q4_5_0(Block *const b[kTileRows], uint8_t *tile, bool pack) {
    constexpr bool five = std::is_same_v<Block, block_q5_0>;
    constexpr size_t d_at = five ? kQ50DAt : kQ40DAt;
    for (int l = 0; l < kTileRows; ++l) {
        for (int k = 0; k < 4; ++k) {
            uint8_t *t = tile + 32 * k + 4 * l, *q = b[l]->qs + 4 * k;
            pack ? std::memcpy(t, q, 4) : std::memcpy(q, t, 4);
        }
        if constexpr (five) {
            uint32_t qh = 0, moved = 0;
            std::memcpy(pack ? &qh : &moved, pack ? b[l]->qh : tile + kQ50QhAt + 4 * l, 4);
            for (int j = 0; j < 32; ++j) {
                if (pack)
                    moved |= ((qh >> j) & 1u) << q5_0_tile_bit(j);
                else
                    qh |= ((moved >> q5_0_tile_bit(j)) & 1u) << j;
            }
            pack ? std::memcpy(tile + kQ50QhAt + 4 * l, &moved, 4) : std::memcpy(b[l]->qh, &qh, 4);
        }
        pack ? std::memcpy(tile + d_at + 2 * l, &b[l]->d, 2) : std::memcpy(&b[l]->d, tile + d_at + 2 * l, 2);
    }
}

// TQ2_0 (d: where the rows' d go) and I2_S (d null; its bytes are the 64
// code bytes of each row's 256 weights, fields swapped into TQ2_0's
// order): row l's 8 code bytes of step s at codes + 64s + 8l.
void move_ternary(uint8_t *const rows[kTileRows], uint8_t *codes, uint8_t *d, bool pack) {
    for (int l = 0; l < kTileRows; ++l) {
        for (int s = 0; s < 8; ++s) {
            uint8_t *t = codes + 64 * s + 8 * l, *q = rows[l] + 8 * s;
            pack ? std::memcpy(t, q, 8) : std::memcpy(q, t, 8);
            if (!d)
                for (int b = 0; b < 8; ++b) (pack ? t : q)[b] = i2s_swap_fields((pack ? t : q)[b]);
        }
        if (d) pack ? std::memcpy(d + 2 * l, rows[l] + QK_K / 4, 2) : std::memcpy(rows[l] + QK_K / 4, d + 2 * l, 2);
    }
}

// Row l's block i, of block type B.
template <typename B> void blocks_at(uint8_t *const rows[kTileRows], int64_t i, B *b[kTileRows]) {
    for (int l = 0; l < kTileRows; ++l) b[l] = reinterpret_cast<B *>(rows[l]) + i;
}

// Block i of the rows at rows[l] (plain), packed into or out of the tile
// at tile_start.
void move_block(GgmlType t, uint8_t *const rows[kTileRows], int64_t i, uint8_t *tile_start, bool pack) {
    uint8_t *tile = tile_start + size_t(i) * tiles8_block_bytes(t);
    if (t == GgmlType::Q4_K) {
        block_q4_K *b[kTileRows];
        blocks_at(rows, i, b);
        move_k45(b, tile, pack, kQ4k);
    } else if (t == GgmlType::Q5_K) {
        block_q5_K *b[kTileRows];
        blocks_at(rows, i, b);
        move_k45(b, tile, pack, kQ5k);
    } else if (t == GgmlType::Q6_K) {
        block_q6_K *b[kTileRows];
        blocks_at(rows, i, b);
        move_q6_k(b, tile, pack);
    } else if (t == GgmlType::Q4_0) {
        block_q4_0 *b[kTileRows];
        blocks_at(rows, i, b);
        move_q4_5_0(b, tile, pack);
    } else if (t == GgmlType::Q5_0) {
        block_q5_0 *b[kTileRows];
        blocks_at(rows, i, b);
        move_q4_5_0(b, tile, pack);
    } else if (t == GgmlType::TQ2_0) {
        uint8_t *blocks[kTileRows];
        for (int l = 0; l < kTileRows; ++l) blocks[l] = rows[l] + size_t(i) * sizeof(block_tq2_0);
        move_ternary(blocks, tq2_0_tile_codes(tile_start, i), tq2_0_tile_d(tile_start, i), pack);
    } else if (t == GgmlType::I2_S) {
        uint8_t *blocks[kTileRows];
        for (int l = 0; l < kTileRows; ++l) blocks[l] = rows[l] + size_t(i) * (QK_K / 4);
        move_ternary(blocks, tile, nullptr, pack);
    } else {
        block_q8_0 *b[kTileRows];
        blocks_at(rows, i, b);
        move_q8_0(b, tile, pack);
    }
}
} // namespace

bool wants_tiles8(const WeightRef &w) {
    static const bool off = [] {
        const char *e = std::getenv("TERNLM_TILES8");
        return e && e[0] == '0';
    }();
    if (off || !w || w.layout != RowLayout::Plain) return false;
    // I2_S's tensor scale is applied to the activations (cpu::matmul).
    const bool scale_ok = w.tensor_scale == 1.0f || w.type == GgmlType::I2_S;
    return tiles8_block_bytes(w.type) != 0 && w.ne1 >= kTileRows && w.ne0 % tiles8_block_weights(w.type) == 0 && scale_ok &&
           detected_isa() == Isa::Avx512Vnni;
}

size_t tiles8_block_bytes(GgmlType t) {
    switch (t) {
    case GgmlType::Q4_K: return kQ4k.block_bytes;
    case GgmlType::Q5_K: return kQ5k.block_bytes;
    case GgmlType::Q6_K: return kQ6BlockBytes;
    case GgmlType::Q4_0: return kQ40BlockBytes;
    case GgmlType::Q5_0: return kQ50BlockBytes;
    case GgmlType::Q8_0: return kQ8BlockBytes;
    case GgmlType::TQ2_0: return kTq2BlockBytes;
    case GgmlType::I2_S: return kI2sBlockBytes;
    default: return 0;
    }
}

size_t tiles8_tile_bytes(GgmlType t, int64_t n_cols) {
    const int64_t nb = n_cols / tiles8_block_weights(t);
    if (t == GgmlType::TQ2_0) return size_t((nb + kTq2Group - 1) / kTq2Group) * 64 + size_t(nb) * kTernaryCodeBytes;
    return size_t(nb) * tiles8_block_bytes(t);
}

size_t tiles8_bytes(GgmlType t, int64_t n_rows, int64_t n_cols) {
    const int64_t tiles = n_rows / kTileRows;
    return size_t(tiles) * tiles8_tile_bytes(t, n_cols) + size_t(n_rows - tiles * kTileRows) * row_size(t, n_cols);
}

void tiles8_pack(GgmlType t, const uint8_t *src, uint8_t *dst, int64_t n_rows, int64_t n_cols) {
    const int64_t nb = n_cols / tiles8_block_weights(t), tiles = n_rows / kTileRows;
    const size_t row_bytes = row_size(t, n_cols), tile_bytes = tiles8_tile_bytes(t, n_cols);
    for (int64_t g = 0; g < tiles; ++g) {
        uint8_t *rows[kTileRows];
        for (int l = 0; l < kTileRows; ++l) rows[l] = const_cast<uint8_t *>(src) + size_t(g * kTileRows + l) * row_bytes;
        uint8_t *tile = dst + size_t(g) * tile_bytes;
        std::memset(tile, 0, tile_bytes); // TQ2_0's padding
        for (int64_t i = 0; i < nb; ++i) move_block(t, rows, i, tile, true);
    }
    std::memcpy(dst + size_t(tiles) * tile_bytes, src + size_t(tiles * kTileRows) * row_bytes,
                size_t(n_rows - tiles * kTileRows) * row_bytes);
}

void tiles8_unpack_row(const WeightRef &w, int64_t r, uint8_t *row) {
    const int64_t nb = w.ne0 / tiles8_block_weights(w.type), tiles = w.ne1 / kTileRows;
    const size_t tile_bytes = tiles8_tile_bytes(w.type, w.ne0);
    if (r >= tiles * kTileRows) {
        std::memcpy(row, tiles8_plain_row(w, r), w.row_bytes);
        return;
    }
    // The other rows' blocks go to a scratch row: only row r's are kept.
    std::vector<uint8_t> scratch(w.row_bytes);
    uint8_t *rows[kTileRows];
    for (int l = 0; l < kTileRows; ++l) rows[l] = l == r % kTileRows ? row : scratch.data();
    uint8_t *tile = const_cast<uint8_t *>(w.data) + size_t(r / kTileRows) * tile_bytes;
    for (int64_t i = 0; i < nb; ++i) move_block(w.type, rows, i, tile, false);
}

void tiles8_act_sums(GgmlType act_type, const uint8_t *act, size_t act_row, int m, int64_t nb, int32_t *sums) {
    for (int u = 0; u < m; ++u) {
        const uint8_t *row = act + size_t(u) * act_row;
        for (int64_t i = 0; i < nb; ++i) {
            int32_t s = 0;
            if (act_type == GgmlType::Q8_K) {
                for (int16_t q : reinterpret_cast<const block_q8_K *>(row)[i].bsums) s += q;
            } else {
                for (int8_t q : reinterpret_cast<const block_q8_0 *>(row)[i].qs) s += q;
            }
            sums[size_t(u) * size_t(nb) + size_t(i)] = s;
        }
    }
}

#if !defined(TERNLM_HAVE_AVX512_KERNELS)
void tiles8_product(GgmlType, const uint8_t *, size_t, int, int64_t, const uint8_t *const *, const int32_t *const *,
                    int, float *const *) {
    std::abort(); // unreachable: wants_tiles8() needs AVX-512 VNNI
}
#endif

} // namespace ternlm::cpu

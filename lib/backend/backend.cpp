#include "backend/backend.hpp"

#include <cstring>
#include <vector>

#include "backend/cpu/tiles8.hpp"
#include "backend/cpu/ternary_lut.hpp"
#include "common/error.hpp"
#include "quant/reference.hpp"

namespace ternlm {

void dequantize_weight_row(const WeightRef &w, int64_t r, float *dst) {
    const bool grouped = w.layout == RowLayout::Interleaved4 && r < w.ne1 / 4 * 4;
    if (w.layout == RowLayout::Lut64 || w.layout == RowLayout::Tiles8 || grouped) { // gather the row's blocks
        std::vector<uint8_t> row(w.row_bytes);
        if (grouped) {
            const size_t bb = interleave_block_bytes(w);
            const uint8_t *group = w.data + size_t(r / 4) * 4 * w.row_bytes + size_t(r % 4) * bb;
            for (size_t i = 0; i < row.size() / bb; ++i) std::memcpy(row.data() + i * bb, group + 4 * bb * i, bb);
        } else if (w.layout == RowLayout::Tiles8) {
            cpu::tiles8_unpack_row(w, r, row.data());
        } else {
            cpu::lut64_unpack_row(w, r, row.data());
        }
        dequantize_row(w.type, row.data(), dst, w.ne0);
    } else {
        dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, dst, w.ne0);
    }
    if (w.tensor_scale != 1.0f)
        for (int64_t i = 0; i < w.ne0; ++i) dst[i] *= w.tensor_scale;
}

void backend::Step::moe_ffn(const MoeFfn &, Buf, Buf) {
    fail(TERN_ERR_UNSUPPORTED, "this backend has no mixture-of-experts FFN (the CPU backend has)");
}

} // namespace ternlm

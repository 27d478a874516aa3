#include "backend/backend.hpp"

#include "quant/reference.hpp"

namespace ternlm {

void dequantize_weight_row(const WeightRef &w, int64_t r, float *dst) {
    dequantize_row(w.type, w.data + size_t(r) * w.row_bytes, dst, w.ne0);
    if (w.tensor_scale != 1.0f)
        for (int64_t i = 0; i < w.ne0; ++i) dst[i] *= w.tensor_scale;
}

} // namespace ternlm

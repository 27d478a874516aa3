// Rewrites a GGUF model with its matrices in another weight type: what
// ternlm-quantize does. Metadata is copied; every tensor of two or more
// dimensions whose rows hold whole blocks of the target type is converted,
// the rest (norms, odd shapes) are copied as they are.
//
// - From F32/F16/BF16 (or any type ternlm dequantizes) to F16, Q8_0, Q4_0,
//   Q5_0 with ggml's reference rounding (byte-identical to llama-quantize
//   without an importance matrix), or to a ternary type with BitNet b1.58's
//   absmean rule: gamma = mean |W| over the tensor (rounded to f16, so that
//   every ternary format holds the same value), W = gamma * clamp(round(W /
//   gamma), -1, 1).
// - Between ternary types (TQ1_0, TQ2_0, I2_S) without loss: the trits and
//   scales are carried over. I2_S holds one scale per tensor, so a TQ tensor
//   whose blocks have different scales cannot become I2_S (an error says so).
//
// Streaming: each tensor is converted when the writer reaches it, one tensor
// in memory at a time, its rows spread over n_threads.
#pragma once

#include <functional>
#include <string>

#include "quant/types.hpp"

namespace ternlm {

struct QuantizeParams {
    GgmlType type = GgmlType::Q8_0;
    int n_threads = 0; // 0: the number of cores
    // Called after each tensor with bytes written so far and in all; may be empty.
    std::function<void(const std::string &tensor, uint64_t done, uint64_t total)> progress;
};

// The types quantize_model can write.
bool quantize_target_supported(GgmlType t);
bool is_ternary(GgmlType t);

void quantize_model(const std::string &in_path, const std::string &out_path, const QuantizeParams &p);

} // namespace ternlm

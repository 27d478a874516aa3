// A decoder-only transformer as the file describes it: hyper-parameters and
// views of its weights in the mapping. Covers llama.cpp's `llama` and
// `bitnet` architectures (bitnet adds sub-norms and per-tensor scales).
#pragma once

#include <vector>

#include "backend/backend.hpp"
#include "model/hparams.hpp"

namespace ternlm {
namespace gguf {
class File;
struct TensorInfo;
} // namespace gguf

struct LayerWeights {
    WeightRef attn_norm, wq, wk, wv, wo;
    WeightRef ffn_norm, ffn_gate, ffn_up, ffn_down;
    WeightRef attn_sub_norm, ffn_sub_norm; // bitnet only
    // Per-tensor scales of ternary models (".scale" tensors); 1 when absent.
    float wq_scale = 1, wk_scale = 1, wv_scale = 1, wo_scale = 1;
    float gate_scale = 1, up_scale = 1, down_scale = 1;
    // A mixture-of-experts FFN in place of ffn_gate/up/down (hp.n_expert > 0).
    MoeFfn moe;
};

struct Transformer {
    HParams hp;
    WeightRef tok_embd, output_norm, output; // output may be tok_embd (tied)
    std::vector<LayerWeights> layers;
};

// A file tensor as a WeightRef (I2_S: with the scale stored after its codes).
// No checks: bind_transformer checks shapes and types.
WeightRef weight_ref(const gguf::TensorInfo &t);

// Binds every tensor the architecture needs, checking names, shapes and
// types (TERN_ERR_FORMAT / TERN_ERR_UNSUPPORTED on a mismatch).
Transformer bind_transformer(const gguf::File &f, const HParams &hp);

// Which rows of a step get logits: none (a prefill chunk before the last,
// whose logits nobody reads), the last row, or every row.
enum class LogitRows { None, Last, All };

// The forward pass of one step: norm, QKV, RoPE, attention, output,
// residual, norm, FFN, residual — for every layer — then the logits of the
// rows `rows` asks for.
void build_forward(const Transformer &m, backend::Step &s, LogitRows rows);

} // namespace ternlm

// Hyper-parameters of a model, read from GGUF metadata ("<arch>.<key>").
#pragma once

#include <string>

#include "backend/backend.hpp"

namespace ternlm {
namespace gguf { class File; }

struct HParams {
    std::string arch;       // general.architecture
    int n_vocab = 0;
    int n_embd = 0;
    int n_layer = 0;
    int n_head = 0;
    int n_head_kv = 0;
    int head_dim = 0;
    int n_ff = 0;
    int n_ctx_train = 0;
    float rms_eps = 1e-5f;
    RopeParams rope;
    FfnActivation ffn_act = FfnActivation::Silu;
    // Mixture of experts ("<arch>.expert_count", "expert_used_count"): 0 for
    // a dense FFN.
    int n_expert = 0, n_expert_used = 0;

    int kv_dim() const { return n_head_kv * head_dim; }
    // llama.cpp's "bitnet" (1bitLLM's layout) and bitnet.cpp's "bitnet-b1.58"
    // (BitNet b1.58 2B4T): sub-norms before attn_output and ffn_down,
    // optional per-tensor scales, NEOX RoPE.
    bool bitnet_family() const { return arch == "bitnet" || arch == "bitnet-b1.58"; }
    int q_dim() const { return n_head * head_dim; }
};

// Reads and validates; TERN_ERR_UNSUPPORTED for an unknown architecture,
// TERN_ERR_FORMAT for missing or absurd values. n_vocab comes from the
// tokenizer or the embedding table (whichever exists).
HParams read_hparams(const gguf::File &f);

// Architectures this build runs.
bool architecture_supported(const std::string &arch);

} // namespace ternlm

#include "model/hparams.hpp"

#include "common/error.hpp"
#include "gguf/gguf.hpp"

namespace ternlm {

namespace {
constexpr int kMaxDim = 1 << 20;   // no real model comes near; rejects garbage
constexpr int kMaxLayers = 4096;
constexpr int kMaxExperts = 1024;

int get_dim(const gguf::File &f, const std::string &key, int def, int max) {
    const int64_t v = f.get_int(key, def);
    if (v <= 0 || v > max)
        fail(TERN_ERR_FORMAT, "GGUF: metadata '%s' = %lld is out of range (1..%d)", key.c_str(), (long long)v, max);
    return int(v);
}
} // namespace

bool architecture_supported(const std::string &arch) {
    return arch == "llama" || arch == "bitnet" || arch == "bitnet-b1.58";
}

HParams read_hparams(const gguf::File &f) {
    HParams hp;
    hp.arch = f.get_string("general.architecture");
    if (hp.arch.empty()) fail(TERN_ERR_FORMAT, "GGUF: general.architecture is missing");
    if (!architecture_supported(hp.arch))
        fail(TERN_ERR_UNSUPPORTED, "architecture '%s' is not supported (supported: llama, bitnet, bitnet-b1.58)", hp.arch.c_str());
    const std::string a = hp.arch + ".";
    if (!f.find(a + "embedding_length")) fail(TERN_ERR_FORMAT, "GGUF: %sembedding_length is missing", a.c_str());
    hp.n_embd = get_dim(f, a + "embedding_length", 0, kMaxDim);
    hp.n_layer = get_dim(f, a + "block_count", 0, kMaxLayers);
    hp.n_head = get_dim(f, a + "attention.head_count", 0, kMaxDim);
    hp.n_head_kv = get_dim(f, a + "attention.head_count_kv", hp.n_head, kMaxDim);
    hp.n_ff = get_dim(f, a + "feed_forward_length", 0, kMaxDim);
    hp.n_ctx_train = get_dim(f, a + "context_length", 2048, 1 << 24);
    if (hp.n_head % hp.n_head_kv != 0)
        fail(TERN_ERR_FORMAT, "GGUF: head_count %d is not a multiple of head_count_kv %d", hp.n_head, hp.n_head_kv);
    if (hp.n_embd % hp.n_head != 0 && !f.find(a + "attention.key_length"))
        fail(TERN_ERR_FORMAT, "GGUF: embedding_length %d is not a multiple of head_count %d", hp.n_embd, hp.n_head);
    hp.head_dim = get_dim(f, a + "attention.key_length", hp.n_embd / hp.n_head, kMaxDim);
    hp.rms_eps = float(f.get_float(a + "attention.layer_norm_rms_epsilon", 1e-5));
    if (!(hp.rms_eps > 0 && hp.rms_eps < 1))
        fail(TERN_ERR_FORMAT, "GGUF: layer_norm_rms_epsilon %g is out of range", double(hp.rms_eps));

    hp.rope.n_rot = get_dim(f, a + "rope.dimension_count", hp.head_dim, hp.head_dim);
    if (hp.rope.n_rot % 2) fail(TERN_ERR_FORMAT, "GGUF: rope.dimension_count %d is odd", hp.rope.n_rot);
    hp.rope.freq_base = float(f.get_float(a + "rope.freq_base", 10000.0));
    if (!(hp.rope.freq_base > 0)) fail(TERN_ERR_FORMAT, "GGUF: rope.freq_base must be positive");
    // Linear RoPE scaling: positions are divided by the factor.
    double factor = f.get_float(a + "rope.scale_linear", 1.0);
    const std::string scaling = f.get_string(a + "rope.scaling.type", "");
    if (scaling == "linear") factor = f.get_float(a + "rope.scaling.factor", 1.0);
    else if (!scaling.empty() && scaling != "none")
        fail(TERN_ERR_UNSUPPORTED, "RoPE scaling '%s' is not supported", scaling.c_str());
    if (!(factor > 0)) fail(TERN_ERR_FORMAT, "GGUF: RoPE scaling factor must be positive");
    hp.rope.freq_scale = float(1.0 / factor);
    // llama rotates adjacent pairs (2i, 2i+1); llama.cpp and bitnet.cpp run
    // both bitnet architectures with the NEOX layout, pairs (i, i + n_rot/2).
    hp.rope.neox = hp.bitnet_family();

    // BitNet b1.58's FFN is relu(gate)^2 * up (bitnet.cpp's LLM_FFN_RELU_SQR);
    // its files do not say so in metadata.
    const std::string act = f.get_string(a + "hidden_act", hp.arch == "bitnet-b1.58" ? "relu2" : "silu");
    if (act == "relu2" || act == "relu_squared") hp.ffn_act = FfnActivation::Relu2;
    else if (act != "silu") fail(TERN_ERR_UNSUPPORTED, "FFN activation '%s' is not supported", act.c_str());

    if (f.find(a + "expert_count")) {
        hp.n_expert = get_dim(f, a + "expert_count", 0, kMaxExperts);
        hp.n_expert_used = get_dim(f, a + "expert_used_count", 0, hp.n_expert);
    }

    if (const gguf::Value *tok = f.find("tokenizer.ggml.tokens")) hp.n_vocab = int(tok->count);
    else if (const gguf::TensorInfo *emb = f.find_tensor("token_embd.weight")) hp.n_vocab = int(emb->ne[1]);
    if (hp.n_vocab <= 0) fail(TERN_ERR_FORMAT, "GGUF: cannot tell the vocabulary size");
    return hp;
}

} // namespace ternlm

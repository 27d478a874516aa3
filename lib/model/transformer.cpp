// Binding of the file's tensors to the transformer description.
#include "model/transformer.hpp"

#include <cstring>

#include "common/error.hpp"
#include "gguf/gguf.hpp"
#include "quant/i2s.hpp"

namespace ternlm {

namespace {

class Binder {
public:
    explicit Binder(const gguf::File &f) : f_(f) {}

    // A required tensor of shape [ne0, ne1] (ne1 = 1 for vectors).
    WeightRef need(const std::string &name, int64_t ne0, int64_t ne1) const {
        WeightRef w = maybe(name, ne0, ne1);
        if (!w) fail(TERN_ERR_FORMAT, "model: tensor '%s' is missing", name.c_str());
        return w;
    }

    WeightRef maybe(const std::string &name, int64_t ne0, int64_t ne1) const {
        const gguf::TensorInfo *t = f_.find_tensor(name);
        if (!t) return {};
        if (t->ne[0] != ne0 || t->n_rows() != ne1)
            fail(TERN_ERR_FORMAT, "model: tensor '%s' has shape %s, expected [%lld, %lld]", name.c_str(),
                 t->shape_string().c_str(), (long long)ne0, (long long)ne1);
        if (!type_traits(t->type).supported)
            fail(TERN_ERR_UNSUPPORTED, "model: tensor '%s' has type %s, which ternlm cannot compute with",
                 name.c_str(), type_name(t->type));
        // Activations are Q8_K blocks of 256, which I2_S rows must hold whole.
        if (t->type == GgmlType::I2_S && t->ne[0] % QK_K != 0)
            fail(TERN_ERR_UNSUPPORTED, "model: I2_S tensor '%s' has rows of %lld, not a multiple of 256",
                 name.c_str(), (long long)t->ne[0]);
        return weight_ref(*t);
    }

    // A one-element F32 ".scale" tensor; 1 when absent.
    float scale(const std::string &name) const {
        const gguf::TensorInfo *t = f_.find_tensor(name);
        if (!t) return 1.0f;
        if (t->type != GgmlType::F32 || t->n_elements() != 1)
            fail(TERN_ERR_FORMAT, "model: scale tensor '%s' must be one F32 value", name.c_str());
        float v;
        std::memcpy(&v, t->data, 4);
        return v;
    }

    bool has(const std::string &name) const { return f_.find_tensor(name) != nullptr; }

private:
    const gguf::File &f_;
};

std::string blk(int i, const char *what) { return "blk." + std::to_string(i) + "." + what; }

} // namespace

WeightRef weight_ref(const gguf::TensorInfo &t) {
    WeightRef w;
    w.data = t.data;
    w.type = t.type;
    w.ne0 = t.ne[0];
    w.ne1 = t.n_rows();
    w.row_bytes = row_size(t.type, t.ne[0]);
    w.name = t.name;
    if (t.type == GgmlType::I2_S) w.tensor_scale = i2s_tensor_scale(t.data, t.n_elements());
    return w;
}

namespace {

// A layer's experts, as llama.cpp stores them: ffn_gate_inp (the router,
// n_expert rows) and ffn_{gate,up,down}_exps, each n_expert matrices one
// after the other in a 3-D tensor; each expert is a view of its matrix.
void bind_moe(Binder &b, const HParams &hp, int i, MoeFfn &moe) {
    const int64_t E = hp.n_embd, F = hp.n_ff, X = hp.n_expert;
    moe.router = b.need(blk(i, "ffn_gate_inp.weight"), E, X);
    moe.n_used = hp.n_expert_used;
    moe.act = hp.ffn_act;
    moe.eps = hp.rms_eps;
    auto experts = [&](const char *name, int64_t cols, int64_t rows, std::vector<WeightRef> &out) {
        const WeightRef all = b.need(blk(i, name), cols, rows * X);
        if (all.type == GgmlType::I2_S)
            fail(TERN_ERR_UNSUPPORTED, "model: I2_S experts (%s) are not supported", all.name.c_str());
        for (int64_t e = 0; e < X; ++e) {
            WeightRef w = all;
            w.data = all.data + size_t(e * rows) * all.row_bytes;
            w.ne1 = rows;
            w.name = all.name + "[" + std::to_string(e) + "]";
            out.push_back(w);
        }
    };
    experts("ffn_gate_exps.weight", E, F, moe.gate);
    experts("ffn_up_exps.weight", E, F, moe.up);
    experts("ffn_down_exps.weight", F, E, moe.down);
}

} // namespace

Transformer bind_transformer(const gguf::File &f, const HParams &hp) {
    Binder b(f);
    Transformer m;
    m.hp = hp;
    const int64_t E = hp.n_embd, Q = hp.q_dim(), KV = hp.kv_dim(), F = hp.n_ff, V = hp.n_vocab;
    m.tok_embd = b.need("token_embd.weight", E, V);
    m.output_norm = b.need("output_norm.weight", E, 1);
    m.output = b.maybe("output.weight", E, V);
    // Tied embeddings; bitnet.cpp's BitNet b1.58 graph projects with
    // token_embd even where the file also holds an output.weight.
    if (!m.output || hp.arch == "bitnet-b1.58") m.output = m.tok_embd;
    const bool bitnet = hp.bitnet_family();
    for (const char *bias : {"attn_q.bias", "attn_k.bias", "attn_v.bias", "attn_output.bias"})
        if (b.has(blk(0, bias)))
            fail(TERN_ERR_UNSUPPORTED, "model: bias tensors (%s) are not supported yet", blk(0, bias).c_str());
    m.layers.resize(size_t(hp.n_layer));
    for (int i = 0; i < hp.n_layer; ++i) {
        LayerWeights &L = m.layers[size_t(i)];
        L.attn_norm = b.need(blk(i, "attn_norm.weight"), E, 1);
        L.wq = b.need(blk(i, "attn_q.weight"), E, Q);
        L.wk = b.need(blk(i, "attn_k.weight"), E, KV);
        L.wv = b.need(blk(i, "attn_v.weight"), E, KV);
        L.wo = b.need(blk(i, "attn_output.weight"), Q, E);
        L.ffn_norm = b.need(blk(i, "ffn_norm.weight"), E, 1);
        if (hp.n_expert > 0) {
            bind_moe(b, hp, i, L.moe);
        } else {
            L.ffn_gate = b.need(blk(i, "ffn_gate.weight"), E, F);
            L.ffn_up = b.need(blk(i, "ffn_up.weight"), E, F);
            L.ffn_down = b.need(blk(i, "ffn_down.weight"), F, E);
        }
        if (bitnet) {
            L.attn_sub_norm = b.need(blk(i, "attn_sub_norm.weight"), Q, 1);
            L.ffn_sub_norm = b.need(blk(i, "ffn_sub_norm.weight"), F, 1);
            L.wq_scale = b.scale(blk(i, "attn_q.scale"));
            L.wk_scale = b.scale(blk(i, "attn_k.scale"));
            L.wv_scale = b.scale(blk(i, "attn_v.scale"));
            L.wo_scale = b.scale(blk(i, "attn_output.scale"));
            L.gate_scale = b.scale(blk(i, "ffn_gate.scale"));
            L.up_scale = b.scale(blk(i, "ffn_up.scale"));
            L.down_scale = b.scale(blk(i, "ffn_down.scale"));
            L.moe.sub_norm = L.ffn_sub_norm;
        }
    }
    return m;
}

} // namespace ternlm

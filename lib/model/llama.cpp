// The forward pass of the llama family (llama, bitnet), as a list of steps.
// It says what to compute; the backend behind `s` decides how.
#include <cmath>

#include "model/transformer.hpp"

namespace ternlm {

using backend::Buf;

void build_forward(const Transformer &m, backend::Step &s, LogitRows logit_rows) {
    const HParams &hp = m.hp;
    const int n = s.n_tokens();
    const float eps = hp.rms_eps;
    const AttnShape shape{hp.n_head, hp.n_head_kv, hp.head_dim, 1.0f / std::sqrt(float(hp.head_dim))};

    Buf x = s.new_buf(n, hp.n_embd); // the residual stream
    Buf xn = s.new_buf(n, hp.n_embd);
    Buf q = s.new_buf(n, hp.q_dim()), k = s.new_buf(n, hp.kv_dim()), v = s.new_buf(n, hp.kv_dim());
    Buf att = s.new_buf(n, hp.q_dim()), proj = s.new_buf(n, hp.n_embd);
    Buf gate = s.new_buf(n, hp.n_ff), up = s.new_buf(n, hp.n_ff);

    s.embed(m.tok_embd, x);
    for (int il = 0; il < hp.n_layer; ++il) {
        const LayerWeights &L = m.layers[size_t(il)];

        // attention
        s.rms_norm(x, L.attn_norm, eps, xn);
        s.matmul(L.wq, xn, q, L.wq_scale);
        s.matmul(L.wk, xn, k, L.wk_scale);
        s.matmul(L.wv, xn, v, L.wv_scale);
        s.rope_attention(il, q, k, v, att, shape, hp.rope);
        if (L.attn_sub_norm) s.rms_norm(att, L.attn_sub_norm, eps, att);
        s.matmul_add(L.wo, att, x, proj, L.wo_scale); // x += wo . att

        // feed-forward
        s.rms_norm(x, L.ffn_norm, eps, xn);
        if (L.moe) {
            s.moe_ffn(L.moe, xn, x);
            continue;
        }
        s.matmul(L.ffn_gate, xn, gate, L.gate_scale);
        s.matmul(L.ffn_up, xn, up, L.up_scale);
        s.glu(gate, up, hp.ffn_act);
        if (L.ffn_sub_norm) s.rms_norm(gate, L.ffn_sub_norm, eps, gate);
        s.matmul_add(L.ffn_down, gate, x, proj, L.down_scale);
    }

    if (logit_rows == LogitRows::None) return; // the KV cache is all this step leaves
    // One row is its own last row: single-token steps issue the same ops
    // whichever rows were asked for (the Vulkan executor replays them).
    const bool all = logit_rows == LogitRows::All || n == 1;
    Buf h = all ? x : s.last_row(x);
    const int rows = all ? n : 1;
    Buf hn = s.new_buf(rows, hp.n_embd);
    s.rms_norm(h, m.output_norm, eps, hn);
    Buf logits = s.new_buf(rows, hp.n_vocab);
    s.matmul(m.output, hn, logits);
    s.output_logits(logits);
}

} // namespace ternlm

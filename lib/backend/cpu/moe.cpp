#include "backend/cpu/moe.hpp"

#include <algorithm>
#include <cmath>

#include "backend/cpu/ops.hpp"
#include "quant/reference.hpp"

namespace ternlm::cpu {

Routing route(const float *logits, int n, int n_expert, int n_used) {
    Routing r;
    r.experts.resize(size_t(n) * size_t(n_used));
    r.weights.resize(r.experts.size());
    std::vector<float> p(static_cast<size_t>(n_expert));
    std::vector<int32_t> order(static_cast<size_t>(n_expert));
    for (int t = 0; t < n; ++t) {
        const float *l = logits + size_t(t) * size_t(n_expert);
        const float mx = *std::max_element(l, l + n_expert);
        float sum = 0;
        for (int e = 0; e < n_expert; ++e) sum += (p[size_t(e)] = exp_quiet(l[e] - mx));
        for (int e = 0; e < n_expert; ++e) p[size_t(e)] /= sum;
        for (int e = 0; e < n_expert; ++e) order[size_t(e)] = e;
        std::partial_sort(order.begin(), order.begin() + n_used, order.end(), [&](int32_t a, int32_t b) {
            return p[size_t(a)] > p[size_t(b)] || (p[size_t(a)] == p[size_t(b)] && a < b);
        });
        float used = 0;
        for (int j = 0; j < n_used; ++j) used += p[size_t(order[size_t(j)])];
        for (int j = 0; j < n_used; ++j) {
            r.experts[size_t(t) * size_t(n_used) + size_t(j)] = order[size_t(j)];
            r.weights[size_t(t) * size_t(n_used) + size_t(j)] = p[size_t(order[size_t(j)])] / used;
        }
    }
    return r;
}

namespace {
void scale_all(float *v, size_t n, float s) {
    if (s != 1.0f)
        for (size_t i = 0; i < n; ++i) v[i] *= s;
}
} // namespace

void moe_ffn(ThreadPool &pool, const MoeFfn &moe, const float *xn, int n, int64_t n_embd, float *x,
             MatmulScratch &scratch, MoeScratch &ms) {
    const int n_expert = int(moe.router.ne1), n_used = moe.n_used;
    const int64_t n_ff = moe.gate.front().ne1;
    std::vector<float> &logits = ms.logits;
    logits.resize(size_t(n) * size_t(n_expert));
    matmul(pool, moe.router, xn, n, logits.data(), scratch);
    const Routing r = route(logits.data(), n, n_expert, n_used);

    // Each expert's rows in one batch; outputs kept per (row, slot) so that
    // each row sums its experts in slot order, whatever the batching (every
    // slot has its expert, so every entry is written before it is read).
    std::vector<float> &out = ms.out, &in = ms.in, &gate = ms.gate, &up = ms.up, &down = ms.down;
    out.resize(size_t(n) * size_t(n_used) * size_t(n_embd));
    std::vector<float> &sub_norm = ms.sub_norm;
    if (moe.sub_norm) {
        sub_norm.resize(size_t(moe.sub_norm.ne0));
        dequantize_row(moe.sub_norm.type, moe.sub_norm.data, sub_norm.data(), moe.sub_norm.ne0);
    }
    for (int e = 0; e < n_expert; ++e) {
        std::vector<size_t> slots; // row * n_used + slot
        for (size_t i = 0; i < r.experts.size(); ++i)
            if (r.experts[i] == e) slots.push_back(i);
        if (slots.empty()) continue;
        const int m = int(slots.size());
        in.resize(size_t(m) * size_t(n_embd));
        for (int i = 0; i < m; ++i)
            std::copy_n(xn + slots[size_t(i)] / size_t(n_used) * size_t(n_embd), n_embd, in.data() + size_t(i) * size_t(n_embd));
        gate.resize(size_t(m) * size_t(n_ff));
        up.resize(gate.size());
        down.resize(size_t(m) * size_t(n_embd));
        matmul(pool, moe.gate[size_t(e)], in.data(), m, gate.data(), scratch);
        scale_all(gate.data(), gate.size(), moe.gate_scale);
        matmul(pool, moe.up[size_t(e)], in.data(), m, up.data(), scratch);
        scale_all(up.data(), up.size(), moe.up_scale);
        glu(gate.data(), up.data(), int64_t(gate.size()), moe.act);
        if (moe.sub_norm) rms_norm(gate.data(), sub_norm.data(), m, n_ff, moe.eps, gate.data());
        matmul(pool, moe.down[size_t(e)], gate.data(), m, down.data(), scratch);
        scale_all(down.data(), down.size(), moe.down_scale);
        for (int i = 0; i < m; ++i)
            std::copy_n(down.data() + size_t(i) * size_t(n_embd), n_embd, out.data() + slots[size_t(i)] * size_t(n_embd));
    }
    for (int t = 0; t < n; ++t)
        for (int j = 0; j < n_used; ++j) {
            const size_t slot = size_t(t) * size_t(n_used) + size_t(j);
            const float w = r.weights[slot];
            const float *o = out.data() + slot * size_t(n_embd);
            float *xt = x + size_t(t) * size_t(n_embd);
            for (int64_t c = 0; c < n_embd; ++c) xt[c] += w * o[c];
        }
}

} // namespace ternlm::cpu

// The interface between architectures (lib/model) and backends.
//
// An architecture describes one evaluation step — n tokens at positions
// [pos0, pos0 + n) — as a short list of operations on a Step: norms, matrix
// products, RoPE, attention, residual adds. A backend decides how: the CPU
// backend runs each op as it is called; a GPU backend can record them into
// one command buffer and replay it. Neither side knows the other's internals.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "quant/types.hpp"

namespace ternlm {

class KvCache;

// A weight matrix (or vector) in the model file: ne1 rows of ne0 elements.
// Row layouts of a weight matrix in memory.
enum class RowLayout : uint8_t {
    Plain, // row after row, as in the file
    // Rows in groups of 4 whose blocks of 256 weights are interleaved (block i
    // of rows 4g..4g+3 side by side), so that the CPU's 4-row ternary kernels
    // read one stream; the rows after the last whole group stay plain.
    Interleaved4,
    // TQ1_0 rows in tiles of 64 for the lookup-table kernel
    // (backend/cpu/ternary_lut.hpp); the rows after the last tile stay plain.
    Lut64,
    // Q4_K, Q5_K, Q6_K, Q8_0, Q4_0 or Q5_0 rows in tiles of 8, a vector lane a row
    // (backend/cpu/tiles8.hpp); the rows after the last tile stay plain. A
    // Q4_K or Q5_K matrix takes a little more memory than its rows (tiles8_bytes).
    Tiles8,
};

struct WeightRef {
    const uint8_t *data = nullptr;
    GgmlType type = GgmlType::F32;
    int64_t ne0 = 0, ne1 = 1;
    size_t row_bytes = 0;
    std::string name;
    // A scale of the whole tensor that its rows do not hold (I2_S: the float
    // after the codes); every weight is tensor_scale * the row's value.
    float tensor_scale = 1;
    // How the rows are laid out; anything but Plain holds only for CPU weights,
    // as the CPU backend repacks them at load (backend/cpu/repack.hpp).
    RowLayout layout = RowLayout::Plain;
    explicit operator bool() const { return data != nullptr; }
};

// Bytes of one block of 256 weights of an Interleaved4 matrix (its rows are
// whole such blocks).
inline size_t interleave_block_bytes(const WeightRef &w) { return w.row_bytes / size_t(w.ne0 / 256); }

// Row r of a weight matrix as floats, its tensor_scale applied (the
// embedding lookups of every backend).
void dequantize_weight_row(const WeightRef &w, int64_t r, float *dst);

// A logit and its token id (Executor::top_logits).
struct TopLogit {
    int32_t id;
    float logit;
};

struct RopeParams {
    int n_rot = 0;           // rotated dimensions of each head (from the start)
    float freq_base = 10000; // theta_i = pos * freq_scale * base^(-2i/n_rot)
    float freq_scale = 1;
    bool neox = false;       // rotate (i, i+n_rot/2) pairs instead of (2i, 2i+1)
    // The ratio of successive angles, base^(-2/n_rot), as every backend computes it.
    float theta_scale() const { return std::pow(freq_base, -2.0f / float(n_rot)); }
};

struct AttnShape {
    int n_head = 0, n_head_kv = 0, head_dim = 0;
    float scale = 1; // applied to q.k
};

enum class FfnActivation { Silu, Relu2 };

// A mixture-of-experts FFN in llama.cpp's layout: a router of one row per
// expert, and per expert gate, up and down matrices. Each token goes to
// the n_used experts with the largest router probabilities (softmax of the
// router's logits; the lower index first on ties), weighted by those
// probabilities divided by their sum; each expert computes
// down(sub_norm(act(gate x) * up x)) (sub_norm: bitnet's, when present).
struct MoeFfn {
    WeightRef router;                      // n_embd wide, n_expert rows
    std::vector<WeightRef> gate, up, down; // per expert
    WeightRef sub_norm;
    int n_used = 0;
    FfnActivation act = FfnActivation::Silu;
    float eps = 1e-5f; // of sub_norm
    float gate_scale = 1, up_scale = 1, down_scale = 1;
    explicit operator bool() const { return bool(router); }
};

namespace backend {

// Handle of an activation buffer of the step: rows x cols floats.
using Buf = int;

class Step {
public:
    virtual ~Step() = default;
    virtual int n_tokens() const = 0;

    virtual Buf new_buf(int rows, int64_t cols) = 0;
    // out[t] = row tokens[t] of the table, dequantized.
    virtual void embed(const WeightRef &table, Buf out) = 0;
    // out = x / rms(x) * weight, row by row.
    virtual void rms_norm(Buf x, const WeightRef &weight, float eps, Buf out) = 0;
    // out = x . W^T (out has w.ne1 columns), times `scale` when scale != 1.
    virtual void matmul(const WeightRef &w, Buf x, Buf out, float scale = 1.0f) = 0;
    // In-place rotary embedding of each head of each row (row t at pos0 + t).
    virtual void rope(Buf x, int n_heads, int head_dim, const RopeParams &p) = 0;
    // Appends k, v to the KV cache of `layer`, then causal attention of q
    // over the cache; out gets n_head * head_dim columns.
    virtual void attention(int layer, Buf q, Buf k, Buf v, Buf out, const AttnShape &shape) = 0;
    // x += y.
    virtual void add(Buf x, Buf y) = 0;
    // gate = act(gate) * up, element-wise. up's contents are unspecified
    // afterwards: a backend may never write it (Vulkan's gate and up
    // products fused with the activation).
    virtual void glu(Buf gate, Buf up, FfnActivation act) = 0;
    // x += moe(xn), rows routed each to its own experts. A backend without
    // it fails with TERN_ERR_UNSUPPORTED.
    virtual void moe_ffn(const MoeFfn &moe, Buf xn, Buf x);

    // Compositions of the ops above that a backend may run fused (one
    // dispatch instead of several on a GPU). The defaults compose them.

    // x += scale * (a . W^T); tmp (x's shape) is scratch for the default.
    virtual void matmul_add(const WeightRef &w, Buf a, Buf x, Buf tmp, float scale = 1.0f) {
        matmul(w, a, tmp, scale);
        add(x, tmp);
    }
    // rope(q), rope(k), then attention(). Afterwards q, k and v hold
    // unspecified values (a fused version need not rotate them in place, nor
    // write k and v anywhere but the cache).
    virtual void rope_attention(int layer, Buf q, Buf k, Buf v, Buf out, const AttnShape &shape,
                                const RopeParams &rope) {
        this->rope(q, shape.n_head, shape.head_dim, rope);
        this->rope(k, shape.n_head_kv, shape.head_dim, rope);
        attention(layer, q, k, v, out, shape);
    }

    // A 1-row buffer holding the last row of x.
    virtual Buf last_row(Buf x) = 0;
    // x's rows are the step's logits (n_vocab columns each).
    virtual void output_logits(Buf x) = 0;

    // For a step split between backends (backend/split_executor.hpp): out's
    // rows are set from host memory, rows x cols floats (a GPU copies them
    // in when the step runs); host_rows gives x's rows where they are in
    // host memory now, else nullptr.
    virtual void write_rows(Buf out, const float *src) = 0;
    virtual const float *host_rows(Buf x) { (void)x; return nullptr; }
};

} // namespace backend
} // namespace ternlm

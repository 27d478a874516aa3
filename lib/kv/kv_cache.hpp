// The KV cache of a context: per layer, K and V rows (one per position) of
// n_head_kv * head_dim half floats. Bookkeeping of how many positions hold
// valid entries (n_past) lives here too.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ternlm {

class KvCache {
public:
    // host_storage = false: only the bookkeeping (a GPU backend keeps the
    // cache in device memory).
    KvCache(int n_layer, int n_ctx, int kv_dim, bool host_storage = true);

    int n_ctx() const { return n_ctx_; }
    int kv_dim() const { return kv_dim_; }
    int n_past() const { return n_past_; }
    size_t bytes() const { return (k_.size() + v_.size()) * sizeof(uint16_t); }

    uint16_t *k(int layer, int pos) { return k_.data() + row(layer, pos); }
    uint16_t *v(int layer, int pos) { return v_.data() + row(layer, pos); }
    const uint16_t *k(int layer, int pos) const { return k_.data() + row(layer, pos); }
    const uint16_t *v(int layer, int pos) const { return v_.data() + row(layer, pos); }

    void advance(int n) { n_past_ += n; }
    void clear() { n_past_ = 0; }
    // Keeps the first n positions (n <= n_past).
    void truncate(int n) { n_past_ = n < n_past_ ? n : n_past_; }

private:
    size_t row(int layer, int pos) const { return (size_t(layer) * n_ctx_ + pos) * kv_dim_; }

    int n_layer_, n_ctx_, kv_dim_;
    int n_past_ = 0;
    std::vector<uint16_t> k_, v_;
};

} // namespace ternlm

#include "kv/kv_cache.hpp"

#include <new>

#include "common/error.hpp"

namespace ternlm {

KvCache::KvCache(int n_layer, int n_ctx, int kv_dim, bool host_storage)
    : n_layer_(n_layer), n_ctx_(n_ctx), kv_dim_(kv_dim) {
    if (!host_storage) return;
    const size_t n = size_t(n_layer) * size_t(n_ctx) * size_t(kv_dim);
    try {
        k_.assign(n, 0);
        v_.assign(n, 0);
    } catch (const std::bad_alloc &) {
        fail(TERN_ERR_OUT_OF_MEMORY, "KV cache of %d layers x %d positions x %d needs %zu MiB", n_layer, n_ctx,
             kv_dim, n * 4 >> 20);
    }
}

} // namespace ternlm

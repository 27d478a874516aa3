#include "backend/cpu/repack.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "backend/cpu/tiles8.hpp"
#include "backend/cpu/ternary_lut.hpp"
#include "backend/cpu/vec_dot.hpp"
#include "common/error.hpp"
#include "model/transformer.hpp"

namespace ternlm::cpu {

void RepackedWeights::Free::operator()(uint8_t *p) const { std::free(p); }

bool wants_interleave4(const WeightRef &w) {
    return w && w.layout == RowLayout::Plain && w.ne1 >= 4 && w.ne0 % 256 == 0 && vec_dot_rows4_interleaved_for(w.type) != nullptr;
}

void interleave_rows4(const uint8_t *src, uint8_t *dst, int64_t n_rows, size_t row_bytes, size_t block_bytes) {
    const size_t n_blocks = row_bytes / block_bytes;
    const int64_t n_grouped = n_rows / 4 * 4;
    for (int64_t g = 0; g < n_grouped; g += 4) {
        const uint8_t *s = src + size_t(g) * row_bytes;
        uint8_t *d = dst + size_t(g) * row_bytes;
        for (size_t i = 0; i < n_blocks; ++i)
            for (int r = 0; r < 4; ++r, d += block_bytes) std::memcpy(d, s + r * row_bytes + i * block_bytes, block_bytes);
    }
    std::memcpy(dst + size_t(n_grouped) * row_bytes, src + size_t(n_grouped) * row_bytes,
                size_t(n_rows - n_grouped) * row_bytes);
}

namespace {

// Whether a matrix goes into one of the CPU kernels' layouts.
bool wants_repack(const WeightRef &w) { return wants_lut64(w) || wants_interleave4(w) || wants_tiles8(w); }

// Hands the whole pages of a mapped range back to the kernel. The mapping is
// private and read-only, so a later read (nothing in ternlm makes one) would
// fault the file's bytes back in.
void release_mapped(const uint8_t *p, size_t n) {
    const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t b = (uintptr_t(p) + page - 1) / page * page, e = (uintptr_t(p) + n) / page * page;
    if (e > b) madvise(reinterpret_cast<void *>(b), e - b, MADV_DONTNEED);
}

} // namespace

RepackedWeights repack_for_cpu(Transformer &tf, const std::function<void(float)> &progress, int end_layer) {
    std::vector<WeightRef *> todo;
    const bool all_layers = end_layer >= int(tf.layers.size());
    for (int i = 0; i < int(tf.layers.size()) && i < end_layer; ++i) {
        LayerWeights &l = tf.layers[size_t(i)];
        for (WeightRef *w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down})
            if (wants_repack(*w)) todo.push_back(w);
        for (auto *experts : {&l.moe.gate, &l.moe.up, &l.moe.down})
            for (WeightRef &w : *experts)
                if (wants_repack(w)) todo.push_back(&w);
    }
    // A tied output is the token embedding, read row by row: left plain.
    if (all_layers && tf.output.data != tf.tok_embd.data && wants_repack(tf.output)) todo.push_back(&tf.output);

    RepackedWeights out;
    for (size_t k = 0; k < todo.size(); ++k) {
        WeightRef &w = *todo[k];
        const size_t n = size_t(w.ne1) * w.row_bytes;
        const bool tiles8 = wants_tiles8(w);
        const size_t n_dst = tiles8 ? tiles8_bytes(w.type, w.ne1, w.ne0) : n;
        uint8_t *dst = static_cast<uint8_t *>(std::aligned_alloc(64, (n_dst + 63) / 64 * 64));
        if (!dst) fail(TERN_ERR_OUT_OF_MEMORY, "repacking '%s' for the CPU: out of memory (%zu bytes)", w.name.c_str(), n_dst);
        out.buffers.emplace_back(dst);
        if (tiles8) {
            tiles8_pack(w.type, w.data, dst, w.ne1, w.ne0);
            w.layout = RowLayout::Tiles8;
            ++out.n_tiles8;
        } else if (wants_lut64(w)) {
            lut64_pack(w.data, dst, w.ne1, w.row_bytes);
            w.layout = RowLayout::Lut64;
            ++out.n_lut64;
        } else {
            interleave_rows4(w.data, dst, w.ne1, w.row_bytes, interleave_block_bytes(w));
            w.layout = RowLayout::Interleaved4;
        }
        release_mapped(w.data, n);
        w.data = dst;
        out.bytes += n_dst;
        ++out.n_matrices;
        if (progress) progress(float(k + 1) / float(todo.size()));
    }
    return out;
}

} // namespace ternlm::cpu

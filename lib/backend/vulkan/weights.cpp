#include "backend/vulkan/weights.hpp"

#include <algorithm>
#include <vector>

#include "backend/vulkan/layout.hpp"
#include "common/error.hpp"
#include "model/transformer.hpp"
#include "quant/reference.hpp"

namespace ternlm::vk {

namespace {

struct Resident {
    const WeightRef *w;
    bool norm; // a norm vector: kept as f32 whatever its file type
};

std::vector<Resident> resident_weights(const Transformer &tf, int first_layer) {
    std::vector<Resident> v;
    auto add = [&](const WeightRef &w, bool norm) {
        if (w) v.push_back({&w, norm});
    };
    add(tf.output_norm, true);
    add(tf.output, false);
    for (size_t i = size_t(std::max(first_layer, 0)); i < tf.layers.size(); ++i) {
        const LayerWeights &l = tf.layers[i];
        for (const WeightRef *w : {&l.attn_norm, &l.ffn_norm, &l.attn_sub_norm, &l.ffn_sub_norm}) add(*w, true);
        for (const WeightRef *w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) add(*w, false);
        add(l.moe.router, false);
        for (const auto *experts : {&l.moe.gate, &l.moe.up, &l.moe.down})
            for (const WeightRef &w : *experts) add(w, false); // each expert a buffer of its own
    }
    return v;
}

// Uploads a matrix as it is held on the device.
Buffer upload_matrix(Device &dev, const WeightRef &w) {
    const size_t bytes = device_view(w).row_bytes * size_t(w.ne1);
    Buffer b = dev.create_buffer(bytes, Memory::DeviceLocal, w.name.c_str());
    const std::vector<uint8_t> repacked = device_bytes(w); // empty: the file's bytes
    dev.upload(b, 0, repacked.empty() ? w.data : repacked.data(), bytes);
    return b;
}

// Rows of a part: a multiple of 64, so that each part's first output lands
// on a 256-byte offset (the largest minStorageBufferOffsetAlignment allowed).
constexpr int64_t kPartRowAlign = 64;

} // namespace

std::vector<GpuWeights::Part> GpuWeights::split(Device &dev, const WeightRef &w, uint64_t limit) {
    const size_t row_bytes = device_view(w).row_bytes;
    const int64_t rows = int64_t(limit / row_bytes) / kPartRowAlign * kPartRowAlign;
    if (w.type == GgmlType::I2_S || rows == 0)
        fail(TERN_ERR_UNSUPPORTED, "Vulkan: tensor %s (%zu bytes) exceeds the device's largest bindable buffer "
             "(%llu bytes), and %s", w.name.c_str(), row_bytes * size_t(w.ne1), (unsigned long long)limit,
             w.type == GgmlType::I2_S ? "I2_S matrices are not split" : "64 of its rows do not fit in one");
    std::vector<Part> parts;
    for (int64_t r0 = 0; r0 < w.ne1; r0 += rows) {
        WeightRef sub = w; // rows r0.. of the file's matrix
        sub.data = w.data + size_t(r0) * w.row_bytes;
        sub.ne1 = std::min(rows, w.ne1 - r0);
        parts.push_back({upload_matrix(dev, sub), uint32_t(r0), uint32_t(sub.ne1)});
    }
    return parts;
}

size_t GpuWeights::bytes_needed(const Transformer &tf, int first_layer) {
    size_t total = 0;
    std::vector<const uint8_t *> seen; // a tied output is the table, counted once
    for (const Resident &r : resident_weights(tf, first_layer)) {
        if (std::find(seen.begin(), seen.end(), r.w->data) != seen.end()) continue;
        seen.push_back(r.w->data);
        total += r.norm ? size_t(r.w->ne0) * 4 : device_view(*r.w).row_bytes * size_t(r.w->ne1);
    }
    return total;
}

int GpuWeights::first_layer_within(const Transformer &tf, uint64_t budget) {
    const int n_layer = int(tf.layers.size());
    for (int first = 0; first <= n_layer; ++first)
        if (bytes_needed(tf, first) <= budget) return first;
    return -1;
}

std::shared_ptr<GpuWeights> GpuWeights::upload(std::shared_ptr<Device> dev, const Transformer &tf,
                                               const std::function<void(float)> &progress, int first_layer) {
    auto g = std::make_shared<GpuWeights>();
    g->dev_ = std::move(dev);
    g->token_table_ = tf.tok_embd.data;
    const auto ws = resident_weights(tf, first_layer);
    size_t total = 0, done = 0;
    for (const Resident &r : ws) total += r.w->row_bytes * size_t(r.w->ne1);
    for (const Resident &r : ws) {
        const WeightRef *w = r.w;
        if (g->buffers_.count(w->data) || g->parts_.count(w->data)) continue; // tied output = an uploaded table
        const size_t bytes = device_view(*w).row_bytes * size_t(w->ne1);
        const uint64_t limit = std::min<uint64_t>(g->dev_->max_buffer_bytes(), uint64_t(1) << 32);
        if (bytes > limit) {
            if (w != &tf.output)
                fail(TERN_ERR_UNSUPPORTED, "Vulkan: tensor %s (%zu bytes) exceeds the device's largest bindable "
                     "buffer (%llu bytes); only the output matrix is split", w->name.c_str(), bytes,
                     (unsigned long long)limit);
            auto parts = split(*g->dev_, *w, limit);
            for (const Part &p : parts) g->bytes_ += p.buf.size();
            g->parts_.emplace(w->data, std::move(parts));
            done += bytes;
            if (progress) progress(float(done) / float(total ? total : 1));
            continue;
        }
        Buffer b;
        if (r.norm) {
            std::vector<float> f(size_t(w->ne0));
            dequantize_row(w->type, w->data, f.data(), w->ne0);
            b = g->dev_->create_buffer(f.size() * 4, Memory::DeviceLocal, w->name.c_str());
            g->dev_->upload(b, 0, f.data(), f.size() * 4);
        } else {
            b = upload_matrix(*g->dev_, *w);
        }
        g->bytes_ += b.size();
        g->buffers_.emplace(w->data, std::move(b));
        done += bytes;
        if (progress) progress(float(done) / float(total ? total : 1));
    }
    return g;
}

const std::vector<GpuWeights::Part> *GpuWeights::parts(const WeightRef &w) const {
    auto it = parts_.find(w.data);
    return it == parts_.end() ? nullptr : &it->second;
}

const Buffer &GpuWeights::get(const WeightRef &w) const {
    auto it = buffers_.find(w.data);
    if (it == buffers_.end()) fail(TERN_ERR_BACKEND, "Vulkan: weight %s is not resident on the device", w.name.c_str());
    return it->second;
}

} // namespace ternlm::vk

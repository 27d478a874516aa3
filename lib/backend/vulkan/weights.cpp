#include "backend/vulkan/weights.hpp"

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

std::vector<Resident> resident_weights(const Transformer &tf) {
    std::vector<Resident> v;
    auto add = [&](const WeightRef &w, bool norm) {
        if (w) v.push_back({&w, norm});
    };
    add(tf.output_norm, true);
    add(tf.output, false);
    for (const auto &l : tf.layers) {
        for (const WeightRef *w : {&l.attn_norm, &l.ffn_norm, &l.attn_sub_norm, &l.ffn_sub_norm}) add(*w, true);
        for (const WeightRef *w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.ffn_gate, &l.ffn_up, &l.ffn_down}) add(*w, false);
    }
    return v;
}

} // namespace

std::shared_ptr<GpuWeights> GpuWeights::upload(std::shared_ptr<Device> dev, const Transformer &tf,
                                               const std::function<void(float)> &progress) {
    auto g = std::make_shared<GpuWeights>();
    g->dev_ = std::move(dev);
    const auto ws = resident_weights(tf);
    size_t total = 0, done = 0;
    for (const Resident &r : ws) total += r.w->row_bytes * size_t(r.w->ne1);
    for (const Resident &r : ws) {
        const WeightRef *w = r.w;
        if (g->buffers_.count(w->data)) continue; // tied output = an already uploaded table
        const size_t bytes = device_view(*w).row_bytes * size_t(w->ne1);
        if (bytes > g->dev_->info().max_storage_range || bytes >= (size_t(1) << 32))
            fail(TERN_ERR_UNSUPPORTED, "Vulkan: tensor %s (%zu bytes) exceeds the device's largest bindable buffer "
                 "(%llu bytes); splitting it is not implemented yet", w->name.c_str(), bytes,
                 (unsigned long long)g->dev_->info().max_storage_range);
        Buffer b;
        if (r.norm) {
            std::vector<float> f(size_t(w->ne0));
            dequantize_row(w->type, w->data, f.data(), w->ne0);
            b = g->dev_->create_buffer(f.size() * 4, Memory::DeviceLocal, w->name.c_str());
            g->dev_->upload(b, 0, f.data(), f.size() * 4);
        } else {
            b = g->dev_->create_buffer(bytes, Memory::DeviceLocal, w->name.c_str());
            const std::vector<uint8_t> repacked = device_bytes(*w); // empty: the file's bytes
            g->dev_->upload(b, 0, repacked.empty() ? w->data : repacked.data(), bytes);
        }
        g->bytes_ += b.size();
        g->buffers_.emplace(w->data, std::move(b));
        done += bytes;
        if (progress) progress(float(done) / float(total ? total : 1));
    }
    return g;
}

const Buffer &GpuWeights::get(const WeightRef &w) const {
    auto it = buffers_.find(w.data);
    if (it == buffers_.end()) fail(TERN_ERR_BACKEND, "Vulkan: weight %s is not resident on the device", w.name.c_str());
    return it->second;
}

} // namespace ternlm::vk

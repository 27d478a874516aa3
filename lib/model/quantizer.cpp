#include "model/quantizer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "backend/cpu/thread_pool.hpp"
#include "common/error.hpp"
#include "common/fp16.hpp"
#include "gguf/gguf.hpp"
#include "model/transformer.hpp"
#include "quant/i2s.hpp"
#include "quant/reference.hpp"

namespace ternlm {

namespace {

// A ternary tensor: its trits and the scale of each 256-weight block.
struct Ternary {
    std::vector<int8_t> trits;
    std::vector<float> block_d;
};

Ternary read_ternary(const gguf::TensorInfo &t) {
    const int64_t n = t.n_elements(), nb = n / QK_K;
    Ternary r;
    r.trits.resize(size_t(n));
    r.block_d.resize(size_t(nb));
    if (t.type == GgmlType::I2_S) {
        i2s_trits(t.data, r.trits.data(), n);
        const float s = i2s_tensor_scale(t.data, n);
        for (float &d : r.block_d) d = s;
        return r;
    }
    for (int64_t i = 0; i < nb; ++i) {
        int8_t *out = r.trits.data() + i * QK_K;
        if (t.type == GgmlType::TQ2_0) {
            const auto &b = reinterpret_cast<const block_tq2_0 *>(t.data)[i];
            tq2_0_trits(b, out);
            r.block_d[size_t(i)] = fp16_to_f32(b.d);
        } else {
            const auto &b = reinterpret_cast<const block_tq1_0 *>(t.data)[i];
            tq1_0_trits(b, out);
            r.block_d[size_t(i)] = fp16_to_f32(b.d);
        }
    }
    return r;
}

// BitNet b1.58's absmean ternarization of a whole tensor.
Ternary ternarize_absmean(const std::vector<float> &w) {
    double sum = 0;
    for (float v : w) sum += std::fabs(double(v));
    const float gamma = w.empty() ? 0.0f : fp16_to_f32(f32_to_fp16(float(sum / double(w.size()))));
    Ternary r;
    r.trits.resize(w.size());
    for (size_t i = 0; i < w.size(); ++i)
        r.trits[i] = gamma > 0 ? int8_t(std::fmax(-1.0f, std::fmin(1.0f, std::nearbyint(w[i] / gamma)))) : 0;
    r.block_d.assign(w.size() / QK_K, gamma);
    return r;
}

// The one scale of a ternary tensor for I2_S: every block with a nonzero
// trit must share it.
float single_scale(const Ternary &t, const std::string &name) {
    float s = 0;
    bool have = false;
    for (size_t i = 0; i < t.block_d.size(); ++i) {
        bool any = false;
        for (int j = 0; j < QK_K && !any; ++j) any = t.trits[i * QK_K + size_t(j)] != 0;
        if (!any) continue;
        if (have && t.block_d[i] != s)
            fail(TERN_ERR_UNSUPPORTED, "quantize: tensor %s has a different scale in each block (%g, %g, ...); I2_S "
                 "holds one per tensor: quantize from the float model instead", name.c_str(), double(s),
                 double(t.block_d[i]));
        s = t.block_d[i];
        have = true;
    }
    return s;
}

void encode_ternary(GgmlType type, const Ternary &t, const std::string &name, uint8_t *dst) {
    const int64_t n = int64_t(t.trits.size()), nb = n / QK_K;
    if (type == GgmlType::I2_S) return encode_i2_s(t.trits.data(), n, single_scale(t, name), dst);
    // The reference quantizers turn trits given as floats back into the same
    // trits (block max 1, or 0 for a zero block); then each d is set.
    std::vector<float> f(QK_K);
    for (int64_t i = 0; i < nb; ++i) {
        for (int j = 0; j < QK_K; ++j) f[size_t(j)] = t.trits[size_t(i * QK_K + j)];
        const uint16_t d = f32_to_fp16(t.block_d[size_t(i)]);
        if (type == GgmlType::TQ2_0) {
            auto *b = reinterpret_cast<block_tq2_0 *>(dst) + i;
            quantize_row_tq2_0(f.data(), b, QK_K);
            b->d = d;
        } else {
            auto *b = reinterpret_cast<block_tq1_0 *>(dst) + i;
            quantize_row_tq1_0(f.data(), b, QK_K);
            b->d = d;
        }
    }
}

// The tensor as floats, its rows dequantized across the pool.
std::vector<float> to_floats(const gguf::TensorInfo &t, cpu::ThreadPool &pool) {
    const WeightRef w = weight_ref(t);
    std::vector<float> f(size_t(t.n_elements()));
    pool.parallel_for(w.ne1, [&](int64_t r) { dequantize_weight_row(w, r, f.data() + size_t(r) * size_t(w.ne0)); });
    return f;
}

void quantize_row_as(GgmlType type, const float *x, int64_t n, uint8_t *dst) {
    switch (type) {
    case GgmlType::F32: std::memcpy(dst, x, size_t(n) * 4); break;
    case GgmlType::F16:
        for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t *>(dst)[i] = f32_to_fp16(x[i]);
        break;
    case GgmlType::BF16:
        for (int64_t i = 0; i < n; ++i) reinterpret_cast<uint16_t *>(dst)[i] = f32_to_bf16(x[i]);
        break;
    case GgmlType::Q8_0: quantize_row_q8_0_weights(x, reinterpret_cast<block_q8_0 *>(dst), n); break;
    case GgmlType::Q4_0: quantize_row_q4_0(x, reinterpret_cast<block_q4_0 *>(dst), n); break;
    case GgmlType::Q5_0: quantize_row_q5_0(x, reinterpret_cast<block_q5_0 *>(dst), n); break;
    case GgmlType::Q4_K: quantize_row_q4_K(x, reinterpret_cast<block_q4_K *>(dst), n); break;
    case GgmlType::Q6_K: quantize_row_q6_K(x, reinterpret_cast<block_q6_K *>(dst), n); break;
    default: fail(TERN_ERR_UNSUPPORTED, "quantize: cannot write %s", type_name(type));
    }
}

// Whether the tensor is converted: a matrix whose rows hold whole blocks
// (whole Q8_K blocks of 256 for I2_S, which multiplies them).
bool converts(const gguf::TensorInfo &t, GgmlType type) {
    const int64_t bs = type == GgmlType::I2_S ? QK_K : type_traits(type).block_size;
    return t.n_dims >= 2 && t.ne[0] % bs == 0 && t.type != type;
}

void convert_tensor(const gguf::TensorInfo &t, GgmlType type, cpu::ThreadPool &pool, uint8_t *dst) {
    if (is_ternary(type)) {
        const Ternary tt = is_ternary(t.type) ? read_ternary(t) : ternarize_absmean(to_floats(t, pool));
        return encode_ternary(type, tt, t.name, dst);
    }
    const std::vector<float> f = to_floats(t, pool);
    const int64_t ne0 = t.ne[0];
    const size_t out_row = row_size(type, ne0);
    pool.parallel_for(t.n_rows(), [&](int64_t r) {
        quantize_row_as(type, f.data() + size_t(r) * size_t(ne0), ne0, dst + size_t(r) * out_row);
    });
}

// general.file_type values (llama.cpp's LLAMA_FTYPE_*) of the types written.
int file_type_of(GgmlType t) {
    switch (t) {
    case GgmlType::F32: return 0;
    case GgmlType::F16: return 1;
    case GgmlType::Q4_0: return 2;
    case GgmlType::Q8_0: return 7;
    case GgmlType::Q5_0: return 8;
    case GgmlType::Q4_K: return 15; // what llama-quantize writes for q4_k, --pure or not
    case GgmlType::Q6_K: return 18;
    case GgmlType::BF16: return 32;
    case GgmlType::TQ1_0: return 36;
    case GgmlType::TQ2_0: return 37;
    default: return -1; // I2_S: bitnet.cpp's numbering is not llama.cpp's
    }
}

} // namespace

bool is_ternary(GgmlType t) { return t == GgmlType::TQ1_0 || t == GgmlType::TQ2_0 || t == GgmlType::I2_S; }

bool quantize_target_supported(GgmlType t) {
    switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16: case GgmlType::Q8_0: case GgmlType::Q4_0:
    case GgmlType::Q5_0: case GgmlType::Q4_K: case GgmlType::Q6_K: case GgmlType::TQ1_0: case GgmlType::TQ2_0:
    case GgmlType::I2_S: return true;
    default: return false;
    }
}

void quantize_model(const std::string &in_path, const std::string &out_path, const QuantizeParams &p) {
    if (!quantize_target_supported(p.type))
        fail(TERN_ERR_UNSUPPORTED, "quantize: writing %s is not implemented (supported: f32 f16 bf16 q8_0 q4_0 "
             "q5_0 q4_k q6_k tq1_0 tq2_0 i2_s)", type_name(p.type));
    if (in_path == out_path) fail(TERN_ERR_INVALID_ARGUMENT, "quantize: the output would overwrite the input");
    const auto in = gguf::File::open(in_path);
    for (const auto &t : in->tensors())
        if (converts(t, p.type) && is_ternary(p.type) && !is_ternary(t.type) && !type_traits(t.type).supported)
            fail(TERN_ERR_UNSUPPORTED, "quantize: tensor %s has type %s, which ternlm cannot read", t.name.c_str(),
                 type_name(t.type));

    gguf::Writer w(uint32_t(in->get_int("general.alignment", 32)));
    for (const auto &kv : in->metadata())
        if (kv.first != "general.file_type") w.set(kv.first, kv.second);
    if (file_type_of(p.type) >= 0) w.set_u32("general.file_type", uint32_t(file_type_of(p.type)));

    const int threads = p.n_threads > 0 ? p.n_threads : int(std::max(1u, std::thread::hardware_concurrency()));
    auto pool = std::make_shared<cpu::ThreadPool>(threads);
    uint64_t total = 0;
    std::vector<GgmlType> out_types;
    for (const auto &t : in->tensors()) {
        out_types.push_back(converts(t, p.type) ? p.type : t.type);
        uint64_t row = 0;
        row_size_checked(out_types.back(), t.ne[0], &row);
        total += row * uint64_t(t.n_rows()) + tensor_tail_bytes(out_types.back());
    }
    auto done = std::make_shared<uint64_t>(0);
    for (size_t i = 0; i < in->tensors().size(); ++i) {
        const gguf::TensorInfo &t = in->tensors()[i];
        const GgmlType type = out_types[i];
        std::vector<int64_t> ne(t.ne, t.ne + t.n_dims);
        w.add_tensor(t.name, type, ne, [&t, type, pool, done, total, &p](uint8_t *dst, size_t nbytes) {
            if (type == t.type) std::memcpy(dst, t.data, nbytes);
            else convert_tensor(t, type, *pool, dst);
            *done += nbytes;
            if (p.progress) p.progress(t.name, *done, total);
        });
    }
    w.write(out_path);
}

} // namespace ternlm

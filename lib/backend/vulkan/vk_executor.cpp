#include "backend/vulkan/vk_executor.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "backend/cpu/ops.hpp" // kTiledAttentionMinRows: where llama.cpp's numerics change
#include "backend/vulkan/launch_rules.hpp"
#include "backend/vulkan/layout.hpp"
#include "backend/vulkan/recorder.hpp"
#include "common/error.hpp"
#include "kv/kv_cache.hpp"
#include "quant/reference.hpp"

namespace ternlm::vk {

namespace {

// Push-constant blocks, laid out as the kernels declare them.
struct MatmulPush {
    uint32_t ncols, nrows, ntok, row_bytes, rows_per_x;
    float scale;
};
struct EmbedPush {
    uint32_t ncols, nrows, row_bytes;
    float scale;
};
struct GemvF16Push {
    uint32_t ncols, nrows, rows_per_x;
    float scale;
};
struct GemvPush {
    uint32_t ncols, nrows, tpr, row_bytes, rows_per_x;
    float scale;
    uint32_t rpg, ntok, accumulate;
};
struct GemvRopePush { // gemv.comp's ROPE_KV build
    GemvPush gemv;
    uint32_t mode, head_dim, n_rot;
    float theta_scale, freq_scale;
    uint32_t layer_word, neox;
};
struct GemvGluPush { // gemv.comp's GLU build
    GemvPush gemv;       // the gate's (scale: the gate's)
    float scale_up;
    uint32_t act, quant_qk;
};
struct GemmPush {
    uint32_t ncols, nrows, ntok, row_bytes;
    float scale;
    uint32_t accumulate;
    uint32_t row0, part_rows; // gemm_coop.comp only: the rows its f16 copy holds
    uint32_t probe = 0;        // gemm_coop.comp's timing probe bits (TERNLM_GEMM_PROBE; wrong results)
};
struct GemmGroupPush { // gemm_coop.comp's GROUPED builds
    GemmPush gemm;         // ncols, ntok, row_bytes, accumulate (0) and probe; row0 = 0
    uint32_t mat_rows[3];  // each matrix's rows, 0 past the last
    float mat_scale[3];
};
struct DequantF16Push {
    uint32_t ncols, nrows, row_bytes, row0, part_rows, groups_x;
};
struct NormPush {
    uint32_t ncols;
    float eps;
};
struct RopePush {
    uint32_t n_rows, n_heads, head_dim, n_rot, neox;
    float theta_scale, freq_scale;
};
struct AttnPush {
    uint32_t n_head, n_head_kv, head_dim, kv_off;
    float scale;
    uint32_t f16_acc, keys_by_8, n_split;
};
struct TiledAttnPush {
    uint32_t n_head, n_head_kv, head_dim, kv_off;
    float scale;
    uint32_t ntok;
};
struct CombinePush {
    uint32_t n_head, head_dim, n_split;
};
struct CombineQuantPush {
    CombinePush combine;
    uint32_t qk;
};
struct AttnQuantPush {
    AttnPush attn;
    uint32_t qk;
};
struct EltPush {
    uint32_t n, op;
};
struct ActScalePush {
    uint32_t n_blocks, qk;
};
struct NormQuantPush {
    uint32_t n_blocks, qk, ncols;
    float eps;
    uint32_t write_out;
    uint32_t act; // glu_norm_quant: elementwise.comp's op
};
using ActQuantPush = ActScalePush;
struct GluQuantPush {
    uint32_t n_blocks, qk, act;
};
struct KvStorePush {
    uint32_t n_words, layer_word, row_words;
};
struct MoeRoutePush {
    uint32_t n_expert, n_used;
};
struct MoeAddPush {
    uint32_t n, cols, n_expert, expert;
};
struct TopLogitsPush {
    uint32_t n, pass;
};
struct RopeKvPush {
    uint32_t n_rows, n_head, n_head_kv, head_dim, n_rot, neox;
    float theta_scale, freq_scale;
    uint32_t layer_word;
};

// top_logits.comp's keys back to floats (it maps float order to unsigned order).
float key_value(uint32_t key) {
    const uint32_t u = key & 0x80000000u ? key & 0x7fffffffu : ~key;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// "matmul_q4_k", "gemv_tq2_0": a kernel compiled per weight type (kernels.cmake).
std::string type_kernel_name(const char *kernel, GgmlType t) {
    std::string n = type_name(t);
    for (char &c : n) c = char(std::tolower(static_cast<unsigned char>(c)));
    return std::string(kernel) + "_" + n;
}

struct StepBuf {
    int rows = 0;
    int64_t cols = 0;
    uint64_t version = 0; // changes whenever a command writes the buffer
    Buffer mem; // grows, never shrinks: steps reuse it
    size_t bytes() const { return size_t(rows) * size_t(cols) * sizeof(float); }
};

// 8-bit activations for gemv.comp and gemm.comp (act_quant.comp's output),
// and which buffer contents they are.
struct Quantized {
    size_t buf = 0;
    uint64_t version = 0;
    uint32_t qk = 0;
    bool operator==(const Quantized &o) const { return buf == o.buf && version == o.version && qk == o.qk; }
};
struct ActSlot {
    Buffer q, d, s;
    Quantized holds;
};

class VkStep final : public backend::Step {
public:
    VkStep(std::shared_ptr<const GpuWeights> w, int n_layer, int n_ctx, int kv_dim)
        : w_(std::move(w)), dev_(w_->device()), n_ctx_(n_ctx), kv_dim_(kv_dim), n_split_(attention_splits(n_ctx)) {
        // f16 K and V, two values a word (kv_store.comp needs rows to start on a word).
        if (kv_dim % 2) fail(TERN_ERR_UNSUPPORTED, "Vulkan: an odd KV row width (%d) is not supported", kv_dim);
        const size_t kv_bytes = size_t(n_layer) * size_t(n_ctx) * size_t(kv_dim) * sizeof(uint16_t);
        k_cache_ = dev_.create_buffer(kv_bytes, Memory::DeviceLocal, "the K cache");
        v_cache_ = dev_.create_buffer(kv_bytes, Memory::DeviceLocal, "the V cache");
        step_params_ = dev_.create_buffer(16, Memory::HostVisible, "the step parameters");
        step_dev_ = dev_.create_buffer(16, Memory::DeviceLocal, "the step parameters");
        top_out_ = dev_.create_buffer((kTopLogits + 1) * 8, Memory::HostReadback, "the top logits");
        dev_.use_hw_f16_rounding(); // its probe runs now, not while a step records
    }
    // A step that failed may have left chunks running on the device (Recorder:
    // they go as they are recorded); they read buffers that die with this.
    ~VkStep() override { rec_.drain(); }

    void begin(const int32_t *tokens, int n, int pos0, std::vector<float> *logits) {
        tokens_ = tokens;
        n_ = n;
        logits_ = logits;
        logit_rows_ = 0;
        logits_on_device_ = pending_ = ranked_ = false;
        used_ = 0;
        for (ActSlot &a : act_) a.holds = {};
        last_read_ = 0; // a replayed step must pick the slots its recording picked
        pending_norm_ = {};
        pending_glu_ = {};
        pending_attn_ = {};
        pending_products_.clear(); // what a failed step left
        pending_gemms_.clear();
        embeds_used_ = 0;
        rec_.begin(n == 1, logits != nullptr);
        // Kernels read the position from here, so a recorded decode step
        // replays at any position.
        *static_cast<uint32_t *>(step_params_.mapped()) = uint32_t(pos0);
        // Kernels read them from device memory: one copy per step rather
        // than reads across the bus from every workgroup that needs them.
        copy(step_params_.handle(), 0, step_dev_.handle(), 0, 16);
        inputs_written_ = false;
        if (rec_.recording_decode()) {
            host_inputs_.clear();
            early_ok_ = true;
        } else if (rec_.replaying() && early_ok_) {
            for (const auto &write : host_inputs_) write();
            inputs_written_ = true;
            rec_.submit_early();
        }
    }

    // An input the step reads from host memory, written there now (unless
    // this replay wrote it at begin()); a decode recording keeps the write
    // for its replays (host_inputs_).
    void host_input(std::function<void()> write) {
        if (inputs_written_) return;
        write();
        if (rec_.recording_decode()) host_inputs_.push_back(std::move(write));
    }

    void finish() {
        flush_products();
        pending_norm_.active = false; // a norm no float reader asked for (see PendingNorm)
        pending_glu_.active = false;  // likewise a gated activation
        pending_attn_.active = false; // and an attention output
        rec_.finish();
        retired_.clear();
        if (logits_on_device_)
            pending_ = true;
        else if (logits_)
            read_logits();
    }

    bool logits_pending() const { return pending_; }

    // The deferred logits row, copied to the host in a submission of its own.
    void fetch_logits() {
        if (!pending_) return;
        const StepBuf &a = bufs_[logits_buf_];
        grow(readback_, a.bytes(), Memory::HostReadback, "the logits read-back buffer");
        rec_.read_back(a.mem.handle(), readback_.handle(), a.bytes());
        read_logits();
        pending_ = false;
    }

    bool top_logits(std::vector<TopLogit> &out) {
        if (!ranked_) return false;
        top_out_.invalidate();
        const uint32_t *e = static_cast<const uint32_t *>(top_out_.mapped());
        if (e[2 * kTopLogits + 1]) return false; // more candidates than it could rank (ties)
        out.clear();
        for (uint32_t i = 0; i < kTopLogits; ++i)
            if (e[2 * i + 1] < uint32_t(logit_cols_)) out.push_back({int32_t(e[2 * i + 1]), key_value(e[2 * i])});
        return true;
    }

    int n_tokens() const override { return n_; }

    backend::Buf new_buf(int rows, int64_t cols) override {
        if (used_ == bufs_.size()) bufs_.emplace_back();
        StepBuf &b = bufs_[used_];
        b.rows = rows;
        b.cols = cols;
        b.version = ++versions_;
        if (b.mem.size() < b.bytes()) {
            b.mem = dev_.create_buffer(b.bytes(), Memory::DeviceLocal, "an activation buffer");
            rec_.buffers_changed();
        }
        return backend::Buf(used_++);
    }

    // A table the device holds whole (a tied output matrix) is read there
    // (embed.comp, the step's token ids copied in); any other stays in the
    // mapping, as llama.cpp keeps it on the host: its rows are dequantized
    // there and copied in as part of the step (stage_rows).
    void embed(const WeightRef &table, backend::Buf out) override {
        if (w_->has(table) && !w_->parts(table) && n_ <= int(kMaxGroupsX)) return embed_on_device(table, out);
        if (n_ > 1 && n_ <= int(kMaxGroupsX) && stages_rows_as_held(table)) return embed_staged_rows(table, out);
        // A replay writes the recording's rows before its ops are walked
        // (early submission): only from a table that outlives this executor
        // (the model's). Any other, such as a test's rows, may be gone or
        // moved by the next step, so those steps write them as they walk.
        if (rec_.recording_decode() && !w_->is_token_table(table)) early_ok_ = false;
        const size_t cols = size_t(buf(out).cols);
        float *dst = stage_rows(out);
        host_input([this, table, dst, cols] {
            for (int t = 0; t < n_; ++t) dequantize_weight_row(table, tokens_[t], dst + size_t(t) * cols);
        });
    }

    // Whether a batch's embedding rows can go to the device as the table
    // holds them (embed_staged_rows): plain rows of a type the device holds
    // in its file type.
    static bool stages_rows_as_held(const WeightRef &table) {
        return table.layout == RowLayout::Plain && device_view(table).type == table.type;
    }

    // A batch's rows of a table the device does not hold: the rows its
    // tokens name, in the device's layout of them (layout.hpp), are copied
    // in and dequantized there by embed.comp, reading them as a table of n_
    // rows. The host dequantized them before, as decode steps still do (one
    // row): on the H100 machine the host then took ~7 ms to record and
    // submit llama8b's pp512, during which the device waited.
    void embed_staged_rows(const WeightRef &table, backend::Buf out) {
        settle(out);
        const WeightRef dv = device_view(table);
        const size_t n = size_t(n_), rows_bytes = n * dv.row_bytes, ids_at = (rows_bytes + 15) / 16 * 16;
        if (embeds_used_ == embed_stage_.size()) embed_stage_.emplace_back();
        Buffer &stage = embed_stage_[embeds_used_++];
        ensure_host(stage, ids_at + n * sizeof(int32_t), "a staging buffer for embedding rows");
        grow(embed_rows_, rows_bytes, Memory::DeviceLocal, "the step's embedding rows");
        grow(tokens_dev_, n * sizeof(int32_t), Memory::DeviceLocal, "the step's token ids");
        uint8_t *dst = static_cast<uint8_t *>(stage.mapped());
        host_input([this, table, dst, n, ids_at] {
            const bool as_is = held_as_in_file(table.type);
            std::vector<uint8_t> rows(as_is ? 0 : n * table.row_bytes); // else straight into dst
            uint8_t *picked_rows = as_is ? dst : rows.data();
            for (size_t t = 0; t < n; ++t)
                std::memcpy(picked_rows + t * table.row_bytes, table.data + size_t(tokens_[t]) * table.row_bytes,
                            table.row_bytes);
            if (!as_is) { // the rows as a matrix of their own, laid out as the device holds it
                WeightRef picked = table;
                picked.data = rows.data();
                picked.ne1 = int64_t(n);
                const std::vector<uint8_t> held = device_bytes(picked);
                std::memcpy(dst, held.data(), held.size());
            }
            for (size_t t = 0; t < n; ++t) {
                const int32_t id = int32_t(t);
                std::memcpy(dst + ids_at + t * sizeof id, &id, sizeof id);
            }
        });
        copy(stage.handle(), 0, embed_rows_.handle(), 0, rows_bytes);
        copy(stage.handle(), ids_at, tokens_dev_.handle(), 0, n * sizeof(int32_t));
        const EmbedPush pc{uint32_t(dv.ne0), uint32_t(n), uint32_t(dv.row_bytes), dv.tensor_scale};
        dispatch(dev_.kernel(type_kernel_name("embed", dv.type), 3, sizeof pc),
                 {embed_rows_.handle(), tokens_dev_.handle(), buf(out).mem.handle()}, &pc, sizeof pc,
                 uint32_t((dv.ne0 + 255) / 256), uint32_t(n), 1, 0b100);
        wrote(out);
    }

    void embed_on_device(const WeightRef &table, backend::Buf out) {
        settle(out);
        const size_t bytes = size_t(n_) * sizeof(int32_t);
        ensure_host(tokens_host_, bytes, "the step's token ids");
        grow(tokens_dev_, bytes, Memory::DeviceLocal, "the step's token ids");
        host_input([this, bytes] { std::memcpy(tokens_host_.mapped(), tokens_, bytes); });
        copy(tokens_host_.handle(), 0, tokens_dev_.handle(), 0, bytes);
        const WeightRef w = device_view(table);
        const EmbedPush pc{uint32_t(w.ne0), uint32_t(w.ne1), uint32_t(w.row_bytes), w.tensor_scale};
        dispatch(dev_.kernel(type_kernel_name("embed", w.type), 3, sizeof pc),
                 {w_->get(table).handle(), tokens_dev_.handle(), buf(out).mem.handle()}, &pc, sizeof pc,
                 uint32_t((w.ne0 + 255) / 256), uint32_t(n_), 1, 0b100);
        wrote(out);
    }

    // Rows computed on the host during the step (by the CPU's layers of a
    // split step): a recording that takes them cannot be submitted before
    // its ops are walked.
    void write_rows(backend::Buf out, const float *src) override {
        if (rec_.recording_decode()) early_ok_ = false;
        std::memcpy(stage_rows(out), src, buf(out).bytes());
    }

    // A one-row norm waits: every norm feeds matmuls, and the integer GEMV
    // that takes it fuses it with its activation quantization (see
    // PendingNorm). Batches run it at once.
    // BitNet's ffn_sub_norm normalises the gated activation in place: then
    // the activation waits with the norm (glu_norm_quant.comp runs both),
    // where it is relu^2 (bitnet-b1.58). Every workgroup of that kernel
    // computes the activation of the whole row; SiLU's exact exp and
    // division made that 15.5 us a call on the H100, against 9.7 for the
    // two dispatches.
    void rms_norm(backend::Buf x, const WeightRef &weight, float eps, backend::Buf out) override {
        PendingNorm n{true, x, out, w_->get(weight).handle(), eps};
        if (pending_glu_.active && pending_glu_.products && x == pending_glu_.gate)
            flush_products(); // the activation computed with its products (BitNet's ffn_sub_norm follows)
        if (pending_glu_.active && pending_glu_.op == kGluRelu2 && x == pending_glu_.gate && out == x &&
            buf(x).rows == 1) {
            n.glu = true;
            n.glu_up = pending_glu_.up;
            n.glu_op = pending_glu_.op;
            pending_glu_.active = false;
        } else {
            settle(x);
            settle(out);
        }
        pending_norm_ = n;
        wrote(out);
        if (buf(x).rows != 1 && (n.glu || !batch_norm_fuses(buf(x).cols))) flush_norm();
    }

    void matmul(const WeightRef &file_w, backend::Buf x, backend::Buf out, float scale) override {
        settle(out);
        wrote(out);
        const WeightRef w = device_view(file_w); // the type the device holds it in
        if (const auto *parts = w_->parts(file_w)) return matmul_parts(w, *parts, x, out, scale);
        if (use_gemm(w, x)) return gemm(w, x, out, scale, false);
        if (fast_gemv(w.type)) {
            if (defer_product(w, x, out, scale)) return;
            return gemv(w, w_->get(w).handle(), x, out, scale, false);
        }
        matmul_float(w, w_->get(w).handle(), x, out, scale);
    }

    // A matrix held in parts of whole rows (GpuWeights): one product per
    // part, each writing its columns of the one output row.
    void matmul_parts(const WeightRef &w, const std::vector<GpuWeights::Part> &parts, backend::Buf x,
                      backend::Buf out, float scale) {
        if (buf(x).rows != 1)
            fail(TERN_ERR_UNSUPPORTED, "Vulkan: %s is held in %zu parts (it exceeds the device's largest buffer), "
                 "which only one-row products support (not logits_all)", w.name.c_str(), parts.size());
        for (const GpuWeights::Part &p : parts) {
            WeightRef pw = w;
            pw.ne1 = p.rows;
            const VkDeviceSize out_offset = VkDeviceSize(p.row0) * sizeof(float);
            if (fast_gemv(w.type))
                gemv(pw, p.buf.handle(), x, out, scale, false, out_offset);
            else
                matmul_float(pw, p.buf.handle(), x, out, scale, out_offset);
        }
    }

    // matmul.comp: any weight type, activations as floats (or rounded to
    // 8-bit blocks by act_scales.comp's scales). out_offset: where out's
    // columns start (a part of a matrix held in parts).
    void matmul_float(const WeightRef &w, VkBuffer weights, backend::Buf x, backend::Buf out, float scale,
                      VkDeviceSize out_offset = 0) {
        settle(x);
        StepBuf &a = buf(x);
        if (w.type == GgmlType::F16 && a.rows == 1 && w.ne0 % 16 == 0 && w.ne0 <= kGemvF16MaxCols)
            return gemv_f16(w, weights, x, out, scale, out_offset);
        VkBuffer scales = a.mem.handle(); // a placeholder binding for float types
        if (const uint32_t qk = activation_block(w.type)) {
            ActScalePush sp{uint32_t(size_t(a.rows) * size_t(w.ne0) / qk), qk};
            grow(act_scales_, size_t(sp.n_blocks) * 8, Memory::DeviceLocal, "activation scales");
            const Grid g = grid((sp.n_blocks + 63) / 64);
            dispatch(dev_.kernel("act_scales", 2, sizeof sp), {a.mem.handle(), act_scales_.handle()}, &sp, sizeof sp,
                     g.x, g.y, 1, 0b10);
            scales = act_scales_.handle();
        }
        const uint32_t rows = uint32_t(w.ne1);
        const Grid g = grid(rows);
        MatmulPush pc{uint32_t(w.ne0), rows, uint32_t(a.rows), uint32_t(w.row_bytes), g.x, scale};
        const VkDeviceSize offsets[4] = {0, 0, out_offset, 0};
        dispatch(dev_.kernel(type_kernel_name("matmul", w.type), 4, sizeof pc),
                 {weights, a.mem.handle(), buf(out).mem.handle(), scales}, &pc, sizeof pc, g.x, g.y,
                 (uint32_t(a.rows) + kMatmulTokens - 1) / kMatmulTokens, 0b100, shape_label(w),
                 out_offset ? offsets : nullptr);
    }

    // gemv_f16.comp: one F16 row product summed in the CPU's order, 16-byte loads.
    void gemv_f16(const WeightRef &w, VkBuffer weights, backend::Buf x, backend::Buf out, float scale,
                  VkDeviceSize out_offset) {
        const uint32_t rows = uint32_t(w.ne1);
        const Grid g = grid((rows + kGemvF16Rows - 1) / kGemvF16Rows);
        GemvF16Push pc{uint32_t(w.ne0), rows, g.x, scale};
        const VkDeviceSize offsets[3] = {0, 0, out_offset};
        dispatch(dev_.kernel(w.ne0 <= 4096 ? "gemv_f16_4k" : "gemv_f16", 3, sizeof pc),
                 {weights, buf(x).mem.handle(), buf(out).mem.handle()}, &pc,
                 sizeof pc, g.x, g.y, 1, 0b100, shape_label(w), out_offset ? offsets : nullptr);
    }

    void rope(backend::Buf x, int n_heads, int head_dim, const RopeParams &p) override {
        settle(x);
        StepBuf &a = buf(x);
        RopePush pc{uint32_t(a.rows), uint32_t(n_heads), uint32_t(head_dim), uint32_t(p.n_rot), p.neox ? 1u : 0u,
                    p.theta_scale(), p.freq_scale};
        const uint32_t n = uint32_t(a.rows) * uint32_t(n_heads) * uint32_t(p.n_rot / 2);
        dispatch(dev_.kernel("rope", 2, sizeof pc), {a.mem.handle(), step_dev_.handle()}, &pc, sizeof pc,
                 (n + 63) / 64, 1, 1, 0b1);
        wrote(x);
    }

    void attention(int layer, backend::Buf q, backend::Buf k, backend::Buf v, backend::Buf out,
                   const AttnShape &s) override {
        check_attention(s);
        for (backend::Buf b : {q, k, v, out}) settle(b);
        KvStorePush sp{uint32_t(size_t(n_) * size_t(kv_dim_) / 2), layer_word(layer), uint32_t(kv_dim_ / 2)};
        const Grid g = grid((sp.n_words + 255) / 256);
        dispatch(dev_.kernel("kv_store", 5, sizeof sp),
                 {buf(k).mem.handle(), buf(v).mem.handle(), k_cache_.handle(), v_cache_.handle(), step_dev_.handle()},
                 &sp, sizeof sp, g.x, g.y, 1, 0b1100);
        attend(layer, q, out, s);
    }

    // One dispatch rotates q and writes the rotated k and v into the cache
    // (rope_kv.comp), where rope, rope and kv_store took three.
    void rope_attention(int layer, backend::Buf q, backend::Buf k, backend::Buf v, backend::Buf out,
                        const AttnShape &s, const RopeParams &r) override {
        check_attention(s);
        if (rope_in_products(layer, q, k, v, s, r)) {
            settle(out);
            return attend(layer, q, out, s);
        }
        for (backend::Buf b : {q, k, v, out}) settle(b);
        RopeKvPush pc{uint32_t(n_), uint32_t(s.n_head), uint32_t(s.n_head_kv), uint32_t(s.head_dim),
                      uint32_t(r.n_rot), r.neox ? 1u : 0u, r.theta_scale(), r.freq_scale, layer_word(layer)};
        const uint32_t n = uint32_t(n_) * (uint32_t(s.n_head) * uint32_t(r.n_rot / 2) + uint32_t(kv_dim_ / 2));
        const Grid g = grid((n + 255) / 256);
        dispatch(dev_.kernel("rope_kv", 6, sizeof pc),
                 {buf(q).mem.handle(), buf(k).mem.handle(), buf(v).mem.handle(), k_cache_.handle(),
                  v_cache_.handle(), step_dev_.handle()},
                 &pc, sizeof pc, g.x, g.y, 1, 0b11001);
        wrote(q);
        attend(layer, q, out, s);
    }

    void matmul_add(const WeightRef &file_w, backend::Buf a, backend::Buf x, backend::Buf tmp,
                    float scale) override {
        const WeightRef w = device_view(file_w);
        const bool tiled = use_gemm(w, a);
        if (!tiled && !fast_gemv(w.type)) return Step::matmul_add(file_w, a, x, tmp, scale);
        settle(x);
        if (tiled)
            gemm(w, a, x, scale, true); // the product is added to x's rows
        else
            gemv(w, w_->get(w).handle(), a, x, scale, true);
        wrote(x);
    }

    void add(backend::Buf x, backend::Buf y) override { elementwise(x, y, 0); }

    // Every expert runs over every row, and moe_add.comp adds each row's
    // output with its routing weight (0 where the row did not choose the
    // expert): a recorded step cannot branch on the routing, and this needs
    // no expert-indexed GEMV. It reads n_expert / n_used times the FFN
    // weights the CPU's routed batches read.
    void moe_ffn(const MoeFfn &moe, backend::Buf xn, backend::Buf x) override {
        flush_products();
        const int rows = buf(xn).rows;
        const uint32_t n_expert = uint32_t(moe.router.ne1);
        const int64_t n_embd = buf(x).cols, n_ff = moe.gate.front().ne1;
        const backend::Buf logits = new_buf(rows, n_expert), g = new_buf(rows, n_ff), u = new_buf(rows, n_ff),
                           d = new_buf(rows, n_embd);
        matmul(moe.router, xn, logits, 1.0f);
        settle(logits);
        grow(moe_weights_, size_t(rows) * n_expert * sizeof(float), Memory::DeviceLocal, "routing weights");
        const MoeRoutePush rp{n_expert, uint32_t(moe.n_used)};
        dispatch(dev_.kernel("moe_route", 2, sizeof rp), {buf(logits).mem.handle(), moe_weights_.handle()}, &rp,
                 sizeof rp, uint32_t(rows), 1, 1, 0b10);
        for (uint32_t e = 0; e < n_expert; ++e) {
            matmul(moe.gate[e], xn, g, moe.gate_scale);
            matmul(moe.up[e], xn, u, moe.up_scale);
            glu(g, u, moe.act);
            if (moe.sub_norm) rms_norm(g, moe.sub_norm, moe.eps, g);
            matmul(moe.down[e], g, d, moe.down_scale);
            settle(x);
            settle(d);
            const MoeAddPush ap{uint32_t(size_t(rows) * size_t(n_embd)), uint32_t(n_embd), n_expert, e};
            const Grid gr = grid((ap.n + 255) / 256);
            dispatch(dev_.kernel("moe_add", 3, sizeof ap),
                     {buf(x).mem.handle(), buf(d).mem.handle(), moe_weights_.handle()}, &ap, sizeof ap, gr.x, gr.y,
                     1, 0b1);
            wrote(x);
        }
    }
    // Waits like a one-row norm: the integer GEMV that reads the result
    // (ffn_down) fuses it with its activation quantization (glu_quant.comp);
    // any other op touching gate or up dispatches it as it is first.
    // Where gate and up are the pending products (one-row integer GEMVs of
    // one input), they wait too and run as one dispatch with the activation
    // (gemv.comp's GLU build, dispatch_glu), which also quantizes the result
    // when ffn_down's GEMV is what reads it.
    void glu(backend::Buf gate, backend::Buf up, FfnActivation act) override {
        const bool products = glu_products_pending(gate, up);
        if (!products) {
            settle(gate);
            settle(up);
        }
        pending_glu_ = {true, gate, up, act == FfnActivation::Silu ? kGluSilu : kGluRelu2, products};
        wrote(gate);
    }

    bool glu_products_pending(backend::Buf gate, backend::Buf up) const {
        if (!dev_.fuse_glu_products() || pending_products_.size() != 2) return false;
        const PendingProduct &g = pending_products_[0], &u = pending_products_[1];
        return g.out == gate && u.out == up && g.slot == u.slot && has_gemv_glu(g.w.type) && g.w.type == u.w.type &&
               g.w.ne0 == u.w.ne0 && g.w.ne1 == u.w.ne1;
    }

    // The pending gate and up products (see glu()) as one dispatch that
    // writes act(gate) * up into the gate's row; with o, also quantized in
    // blocks of qk into o as the blocks complete.
    void dispatch_glu(uint32_t qk, ActSlot *o) {
        const PendingGlu g = pending_glu_;
        pending_glu_.active = false;
        std::vector<PendingProduct> p;
        p.swap(pending_products_);
        const PendingProduct &gate = p[0], &up = p[1];
        const ActSlot &in = act_[gate.slot];
        Grid grid_;
        const GemvGluPush pc{gemv_push(gate.w, 1, gate.scale, false, grid_), up.scale, g.op, o ? qk : 0u};
        const VkBuffer y = buf(g.gate).mem.handle();
        if (o) ensure_counters(size_t(gate.w.ne1) / qk);
        const VkBuffer c = o ? tail_counters_.handle() : y;
        dispatch(dev_.kernel(gemv_kernel(decode_build("gemv_glu", pc.gemv.rpg), gate.w.type), 9, sizeof pc, {2}),
                 {gate.weights, up.weights, in.q.handle(), in.d.handle(), in.s.handle(), y, c,
                  o ? o->q.handle() : y, o ? o->d.handle() : y, o ? o->s.handle() : y},
                 &pc, sizeof pc, grid_.x, grid_.y, 1, o ? 0b1111100000u : 0b100000u, shape_label(gate.w));
    }

    // Whether dispatch_glu can quantize its result in blocks of qk: each
    // workgroup's rows lie in one block.
    bool glu_quantizes(uint32_t qk) const {
        const WeightRef &w = pending_products_[0].w;
        const uint32_t tpr = gemv_threads_per_row(w, true);
        const uint32_t rows = (kGemvThreads / tpr) * gemv_rows_per_group(w, tpr, true);
        return qk % rows == 0 && w.ne1 % qk == 0;
    }

    backend::Buf last_row(backend::Buf x) override {
        settle(x);
        const int rows = buf(x).rows;
        const int64_t cols = buf(x).cols;
        backend::Buf r = new_buf(1, cols);
        const size_t row_bytes = size_t(cols) * sizeof(float);
        copy(buf(x).mem.handle(), size_t(rows - 1) * row_bytes, buf(r).mem.handle(), 0, row_bytes);
        wrote(r);
        return r;
    }

    // A one-token step's logits stay on the device; the step ends by ranking
    // them (top_logits.comp), which is all that sampling reads back.
    // Batches copy theirs to the host.
    void output_logits(backend::Buf x) override {
        settle(x);
        StepBuf &a = buf(x);
        logit_rows_ = a.rows;
        logit_cols_ = a.cols;
        if (n_ == 1 && a.rows == 1) {
            rank_logits(x);
            return;
        }
        grow(readback_, a.bytes(), Memory::HostReadback, "the logits read-back buffer");
        copy(a.mem.handle(), 0, readback_.handle(), 0, a.bytes());
    }

private:
    StepBuf &buf(backend::Buf b) { return bufs_[size_t(b)]; }

    // Host memory for out's rows, copied into out when the step runs. Each
    // use in a step has a staging buffer of its own: the copies run at
    // submission, after all host writes (and a replayed step rewrites them).
    float *stage_rows(backend::Buf out) {
        settle(out);
        StepBuf &o = buf(out);
        if (embeds_used_ == embed_stage_.size()) embed_stage_.emplace_back();
        Buffer &stage = embed_stage_[embeds_used_++];
        ensure_host(stage, o.bytes(), "a staging buffer for rows from the host");
        copy(stage.handle(), 0, o.mem.handle(), 0, o.bytes());
        wrote(out);
        return static_cast<float *>(stage.mapped());
    }

    void read_logits() {
        readback_.invalidate();
        const float *src = static_cast<const float *>(readback_.mapped());
        logits_->assign(src, src + size_t(logit_rows_) * size_t(logit_cols_));
    }

    void rank_logits(backend::Buf x) {
        logits_buf_ = size_t(x);
        logits_on_device_ = true;
        const uint32_t n = uint32_t(buf(x).cols), lists = (n + kTopLogitsSpan - 1) / kTopLogitsSpan;
        if (lists > kTopLogitsMaxLists) return; // a vocabulary over 512K: sampling reads the row
        ranked_ = true;
        grow(top_lists_, size_t(lists) * kTopLogits * 8, Memory::DeviceLocal, "the top-logit lists");
        const Kernel &k = dev_.kernel("top_logits", 3, sizeof(TopLogitsPush));
        const TopLogitsPush ranks{n, 0}, merge{lists, 1};
        dispatch(k, {buf(x).mem.handle(), top_lists_.handle(), top_out_.handle()}, &ranks, sizeof ranks, lists, 1, 1,
                 0b010);
        dispatch(k, {buf(x).mem.handle(), top_lists_.handle(), top_out_.handle()}, &merge, sizeof merge, 1, 1, 1,
                 0b100);
    }

    void wrote(backend::Buf b) { buf(b).version = ++versions_; }
    // "rows x cols" of a matrix, naming its dispatches in profiles.
    std::string shape_label(const WeightRef &w) const {
        return dev_.profiling() ? std::to_string(w.ne1) + "x" + std::to_string(w.ne0) : std::string();
    }

    bool fast_gemv(GgmlType t) const { return has_fast_gemv(t) && dev_.info().subgroup_shuffle; }

    uint32_t layer_word(int layer) const { return uint32_t(size_t(layer) * size_t(n_ctx_) * size_t(kv_dim_) / 2); }

    // TERNLM_ATTN_PROBE: bits of attention.comp's PROBE_* that leave a part
    // of the decode step's attention out (timing only: results are wrong),
    // or (64) fold short contexts in f32.
    static uint32_t attention_probe_bits() {
        static const uint32_t bits = env_u32("TERNLM_ATTN_PROBE") & 0xFEu;
        return bits;
    }

    void check_attention(const AttnShape &s) const {
        if (s.head_dim > 256) fail(TERN_ERR_UNSUPPORTED, "Vulkan: head_dim %d > 256", s.head_dim);
    }

    // Attention of q over the cache of `layer`, which already holds this step's
    // keys and values. A decode step splits each head's keys among n_split_
    // workgroups (a recorded step replays at any length, so the count comes
    // from n_ctx), then joins their partial results; it waits for its
    // reader (see PendingAttention). Batches run at once, unsplit; those
    // of kTiledAttentionMinRows rows or more (f32 numerics, as the CPU's)
    // in tiles of rows and keys where head_dim allows: on the matrix units
    // (attention_coop.comp, head_dim 64 or 128) or in FMAs (attention_tiled.comp).
    void attend(int layer, backend::Buf q, backend::Buf out, const AttnShape &s) {
        if (pending_attn_.active) flush_attention(); // it reads attn_parts_, which this one rewrites
        const bool decode = n_ == 1;
        AttnPush pc{uint32_t(s.n_head), uint32_t(s.n_head_kv), uint32_t(s.head_dim), 2 * layer_word(layer), s.scale,
                    n_ < cpu::kTiledAttentionMinRows ? 1u : 0u, s.head_dim % 8 == 0 && kv_dim_ % 8 == 0 ? 1u : 0u,
                    decode ? n_split_ : 1u};
        if (decode && pc.f16_acc != 0) pc.f16_acc |= attention_probe_bits();
        if (decode) {
            const size_t parts = size_t(s.n_head) * n_split_ * (size_t(s.head_dim) + 2);
            if (n_split_ > 1) grow(attn_parts_, parts * sizeof(float), Memory::DeviceLocal, "split attention's partial results");
            pending_attn_ = {true, q, out, pc};
        } else if (pc.f16_acc == 0 && pc.keys_by_8 != 0 && s.head_dim <= int(kAttnTiledMaxHeadDim)) {
            const TiledAttnPush tp{pc.n_head, pc.n_head_kv, pc.head_dim, pc.kv_off, pc.scale, uint32_t(n_)};
            const bool coop = dev_.use_coopmat() && (s.head_dim == 64 || s.head_dim == 128);
            const std::string kernel = coop ? "attention_coop_hd" + std::to_string(s.head_dim) : "attention_tiled";
            const uint32_t rows = coop ? kAttnCoopRows : kAttnTiledRows;
            dispatch(dev_.kernel(kernel, 5, sizeof tp),
                     {buf(q).mem.handle(), k_cache_.handle(), v_cache_.handle(), buf(out).mem.handle(),
                      step_dev_.handle()},
                     &tp, sizeof tp, tp.n_head, (uint32_t(n_) + rows - 1) / rows, 1, 0b1000);
        } else {
            dispatch_attention(q, buf(out).mem.handle(), pc);
        }
        wrote(out);
    }

    // A build of attention.comp: its _hw16 build, whose f16 fold rounds by
    // the device's conversion, where that rounds as the software does.
    std::string attention_build(const char *name) {
        return dev_.use_hw_f16_rounding() ? std::string(name) + "_hw16" : std::string(name);
    }

    // attention.comp for q's rows, its result (or, split, the partial
    // results) into dst.
    void dispatch_attention(backend::Buf q, VkBuffer dst, const AttnPush &pc) {
        dispatch(dev_.kernel(attention_build("attention"), 5, sizeof pc),
                 {buf(q).mem.handle(), k_cache_.handle(), v_cache_.handle(), dst, step_dev_.handle()}, &pc, sizeof pc,
                 pc.n_head, uint32_t(n_), pc.n_split, 0b1000);
    }

    // A decode step's attention, not dispatched yet: the integer GEMV that
    // reads its row (attn_output) has it join and quantize the row in the
    // same dispatch (attention_quant); anything else touching q or the row
    // dispatches the plain attention (and, split, attn_combine) first.
    struct PendingAttention {
        bool active = false;
        backend::Buf q = 0, out = 0;
        AttnPush push;
    } pending_attn_;

    void flush_attention() {
        pending_attn_.active = false;
        const AttnPush &pc = pending_attn_.push;
        const bool split = pc.n_split > 1;
        const VkBuffer out = buf(pending_attn_.out).mem.handle();
        if (split && dev_.fuse_attention_join()) { // the last split joins the head (attention_join)
            ensure_counters(pc.n_head);
            dispatch(dev_.kernel(attention_build("attention_join"), 7, sizeof pc),
                     {buf(pending_attn_.q).mem.handle(), k_cache_.handle(), v_cache_.handle(), attn_parts_.handle(),
                      step_dev_.handle(), out, tail_counters_.handle()},
                     &pc, sizeof pc, pc.n_head, 1, pc.n_split, 0b1101000);
            return;
        }
        dispatch_attention(pending_attn_.q, split ? attn_parts_.handle() : out, pc);
        if (!split) return;
        const CombinePush cp{pc.n_head, pc.head_dim, pc.n_split};
        dispatch(dev_.kernel("attn_combine", 2, sizeof cp), {attn_parts_.handle(), out}, &cp, sizeof cp, cp.n_head, 1,
                 1, 0b10);
    }

    // The pending attention with its row joined and quantized in blocks of
    // qk into slot o, where its heads fill whole blocks or share one: in
    // the attention's dispatch (attention_quant, Device::fuse_attention_join),
    // else in the join's (attn_combine_quant; unsplit, false: act_quant's
    // dispatch quantizes it).
    bool attention_quantized(backend::Buf x, uint32_t qk, ActSlot &o) {
        const PendingAttention &a = pending_attn_;
        if (!a.active || a.out != x || !dev_.use_fusion()) return false;
        const uint32_t hd = a.push.head_dim;
        if (hd % qk != 0 && qk % hd != 0) return false;
        const bool in_attention = dev_.fuse_attention_join();
        if (!in_attention && a.push.n_split == 1) return false;
        const size_t n = size_t(a.push.n_head) * hd;
        grow_slot(o, n, qk);
        ensure_counters(n / qk + a.push.n_head); // the blocks', then the heads' (attention_quant)
        const VkBuffer out = buf(x).mem.handle();
        pending_attn_.active = false;
        if (in_attention) {
            const AttnQuantPush pc{a.push, qk};
            dispatch(dev_.kernel(attention_build("attention_quant"), 10, sizeof pc),
                     {buf(a.q).mem.handle(), k_cache_.handle(), v_cache_.handle(),
                      a.push.n_split > 1 ? attn_parts_.handle() : out, step_dev_.handle(), out,
                      tail_counters_.handle(), o.q.handle(), o.d.handle(), o.s.handle()},
                     &pc, sizeof pc, a.push.n_head, 1, a.push.n_split, 0b1111101000);
            return true;
        }
        const AttnPush &ap = a.push;
        dispatch_attention(a.q, attn_parts_.handle(), ap);
        const CombineQuantPush cp{{ap.n_head, ap.head_dim, ap.n_split}, qk};
        dispatch(dev_.kernel("attn_combine_quant", 6, sizeof cp),
                 {attn_parts_.handle(), out, tail_counters_.handle(), o.q.handle(), o.d.handle(), o.s.handle()}, &cp,
                 sizeof cp, cp.combine.n_head, 1, 1, 0b111110);
        return true;
    }

    // A one-row rms_norm not dispatched yet. The integer GEMV that consumes
    // `out` dispatches norm_quant.comp instead of act_quant.comp (one
    // dispatch, no round trip of the row); any other op touching x or out
    // dispatches the norm as it is first. An in-place norm's float result is
    // not written by the fused kernel (its workgroups all read the row), so
    // it stays pending until a float reader needs it, or the step ends
    // without one.
    struct PendingNorm {
        bool active = false;
        backend::Buf x = 0, out = 0;
        VkBuffer weight = VK_NULL_HANDLE;
        float eps = 0;
        // x still holds the gate: the norm is of act(x) * glu_up (see rms_norm)
        bool glu = false;
        backend::Buf glu_up = 0;
        uint32_t glu_op = 0;
    } pending_norm_;

    // A gated activation not dispatched yet (see glu()).
    struct PendingGlu {
        bool active = false;
        backend::Buf gate = 0, up = 0;
        uint32_t op = kGluSilu; // elementwise.comp's op
        bool products = false;  // gate and up are the pending products (dispatch_glu runs all three)
    } pending_glu_;
    static constexpr uint32_t kGluSilu = 1, kGluRelu2 = 2;

    void settle(backend::Buf b) {
        if (pending_glu_.active && pending_glu_.products && b == pending_glu_.up) {
            pending_glu_.products = false; // up's row is read: the products run as they are, then the activation
            flush_products();
        }
        for (const PendingProduct &p : pending_products_)
            if (p.out == b) {
                flush_products();
                break;
            }
        for (const PendingGemm &g : pending_gemms_)
            if (g.out == b) {
                flush_gemms();
                break;
            }
        if (pending_attn_.active && (b == pending_attn_.out || b == pending_attn_.q)) flush_attention();
        if (pending_norm_.active && (b == pending_norm_.x || b == pending_norm_.out ||
                                     (pending_norm_.glu && b == pending_norm_.glu_up)))
            flush_norm();
        if (pending_glu_.active && (b == pending_glu_.gate || b == pending_glu_.up)) {
            pending_glu_.active = false;
            elementwise(pending_glu_.gate, pending_glu_.up, pending_glu_.op);
        }
    }

    // Whether a batch's norm of rows of `cols` waits like a one-row norm, to
    // run fused with the quantization of its result (norm_quant.comp): each
    // of that kernel's workgroups must lie in one row (2048 values). H100,
    // llama8b Q4_K pp512: rms_norm took 13 us a call, act_quant 10.
    static bool batch_norm_fuses(int64_t cols) { return cols % (kNormQuantThreads * 8) == 0; }

    void flush_norm() {
        const PendingNorm p = pending_norm_;
        pending_norm_.active = false;
        if (p.glu) elementwise(p.x, p.glu_up, p.glu_op);
        StepBuf &a = buf(p.x);
        NormPush pc{uint32_t(a.cols), p.eps};
        dispatch(dev_.kernel("rms_norm", 3, sizeof pc), {a.mem.handle(), p.weight, buf(p.out).mem.handle()}, &pc,
                 sizeof pc, uint32_t(a.rows), 1, 1, 0b100);
    }

    // The activation rows, quantized once (q/k/v and gate/up share their
    // input), multiplied by gemv.comp's integer kernel: its one-row build for
    // decode, the 8-row build (workgroup z = a group of 8 rows) for prefill.
    // accumulate: out += the product (the residual add, fused) instead of out =.
    void gemv(const WeightRef &w, VkBuffer weights, backend::Buf x, backend::Buf out, float scale, bool accumulate,
              VkDeviceSize out_offset = 0) {
        const size_t slot = quantize_activations(x, activation_block(w.type));
        dispatch_gemv(w, weights, act_[slot], uint32_t(buf(x).rows), buf(out).mem.handle(), scale, accumulate,
                      out_offset);
    }
    // gemv.comp's push constants for w and ntok activation rows, and its grid.
    // rpg: rows per group, 0 for gemv_rows_per_group's choice.
    GemvPush gemv_push(const WeightRef &w, uint32_t ntok, float scale, bool accumulate, Grid &g, uint32_t rpg = 0) {
        const uint32_t rows = uint32_t(w.ne1);
        const uint32_t tpr = gemv_threads_per_row(w, ntok == 1);
        if (!rpg) rpg = gemv_rows_per_group(w, tpr, ntok == 1);
        const uint32_t per_wg = (kGemvThreads / tpr) * rpg;
        g = grid((rows + per_wg - 1) / per_wg);
        return {uint32_t(w.ne0), rows, tpr, uint32_t(w.row_bytes), g.x, scale, rpg, ntok, accumulate ? 1u : 0u};
    }
    // A build of gemv.comp for type t: with OpSDot where the device has it.
    std::string gemv_kernel(const std::string &build, GgmlType t) const {
        return type_kernel_name(build.c_str(), t) + (dev_.use_int_dot() ? "_dot" : "");
    }
    // A one-token build ("gemv", "gemv_rope") for rpg rows a group: its _r1
    // build (fewer registers) where a group holds one row.
    static std::string decode_build(const char *build, uint32_t rpg) {
        return rpg == 1 ? std::string(build) + "_r1" : std::string(build);
    }
    void dispatch_gemv(const WeightRef &w, VkBuffer weights, const ActSlot &in, uint32_t ntok, VkBuffer out,
                       float scale, bool accumulate, VkDeviceSize out_offset = 0) {
        Grid g;
        const GemvPush pc = gemv_push(w, ntok, scale, accumulate, g);
        const VkDeviceSize offsets[5] = {0, 0, 0, 0, out_offset};
        const std::string build = ntok > 1 ? std::string("gemv8") : decode_build("gemv", pc.rpg);
        dispatch(dev_.kernel(gemv_kernel(build, w.type), 5, sizeof pc),
                 {weights, in.q.handle(), in.d.handle(), in.s.handle(), out}, &pc, sizeof pc, g.x, g.y,
                 (ntok + kGemvTokens - 1) / kGemvTokens, 0b10000, shape_label(w), out_offset ? offsets : nullptr);
    }

    // One-row integer products not dispatched yet (at most three: a
    // layer's q, k and v), their inputs already quantized. When
    // rope_attention follows with their outputs as q, k and v, they run as
    // gemv.comp's ROPE_KV build, which rotates q and writes k and v into the
    // cache (rope_kv.comp's dispatch, a dependent stage, is gone); anything
    // else touching an output, or quantizing another row, dispatches them as
    // they are first, in the order they came.
    struct PendingProduct {
        WeightRef w; // as the device holds it
        VkBuffer weights;
        size_t slot; // of act_
        backend::Buf out;
        float scale;
    };
    std::vector<PendingProduct> pending_products_;
    static constexpr size_t kMaxPendingProducts = 3;

    bool defer_product(const WeightRef &w, backend::Buf x, backend::Buf out, float scale) {
        if (n_ != 1 || !dev_.fuse_rope_products()) return false;
        if (pending_products_.size() == kMaxPendingProducts) flush_products();
        const size_t slot = quantize_activations(x, activation_block(w.type));
        pending_products_.push_back({w, w_->get(w).handle(), slot, out, scale});
        return true;
    }

    void flush_products() {
        flush_gemms();
        if (pending_glu_.active && pending_glu_.products) return dispatch_glu(0, nullptr);
        std::vector<PendingProduct> p;
        p.swap(pending_products_);
        for (const PendingProduct &d : p)
            dispatch_gemv(d.w, d.weights, act_[d.slot], 1, buf(d.out).mem.handle(), d.scale, false);
    }

    // Rows per group for gemv_rope, so that a workgroup's rows are a
    // multiple of `multiple` (whole RoPE pairs, or NEOX quads); 0 where the
    // type's groups cannot hold enough rows.
    static uint32_t rope_rows_per_group(const WeightRef &w, uint32_t multiple) {
        const uint32_t tpr = gemv_threads_per_row(w, true);
        for (uint32_t rpg = gemv_rows_per_group(w, tpr, true); rpg <= kGemvMaxRowsPerGroup(w.type); rpg *= 2)
            if ((kGemvThreads / tpr) * rpg % multiple == 0) return rpg;
        return 0;
    }

    // q, k and v pending as products: dispatched with RoPE and the KV
    // append in their epilogue (gemv.comp's ROPE_KV build).
    bool rope_in_products(int layer, backend::Buf q, backend::Buf k, backend::Buf v, const AttnShape &s,
                          const RopeParams &r) {
        const uint32_t quad = r.neox ? 4 : 2; // rows a workgroup must hold whole
        if (pending_products_.size() != 3 || r.n_rot % quad || r.n_rot > s.head_dim || s.head_dim % quad)
            return false;
        const backend::Buf outs[3] = {q, k, v};
        const int64_t cols[3] = {int64_t(s.n_head) * s.head_dim, kv_dim_, kv_dim_};
        const PendingProduct *by_mode[3] = {};
        for (const PendingProduct &p : pending_products_)
            for (int m = 0; m < 3; ++m)
                if (p.out == outs[m] && p.w.ne1 == cols[m]) by_mode[m] = &p;
        if (!by_mode[0] || !by_mode[1] || !by_mode[2]) return false;
        uint32_t rpg[3];
        for (uint32_t m = 0; m < 3; ++m)
            if (!(rpg[m] = rope_rows_per_group(by_mode[m]->w, m < 2 ? quad : 2))) return false;
        const VkBuffer caches[3] = {VK_NULL_HANDLE, k_cache_.handle(), v_cache_.handle()};
        for (uint32_t m = 0; m < 3; ++m) {
            const PendingProduct &p = *by_mode[m];
            const ActSlot &in = act_[p.slot];
            Grid g;
            const GemvRopePush pc{gemv_push(p.w, 1, p.scale, false, g, rpg[m]), m, uint32_t(s.head_dim),
                                  uint32_t(r.n_rot), r.theta_scale(), r.freq_scale, layer_word(layer),
                                  r.neox ? 1u : 0u};
            const VkBuffer y = buf(p.out).mem.handle();
            dispatch(dev_.kernel(gemv_kernel(decode_build("gemv_rope", rpg[m]), p.w.type), 7, sizeof pc),
                     {p.weights, in.q.handle(), in.d.handle(), in.s.handle(), y, step_dev_.handle(),
                      m ? caches[m] : y},
                     &pc, sizeof pc, g.x, g.y, 1, m ? 0b1000000u : 0b10000u, shape_label(p.w));
        }
        pending_products_.clear();
        return true;
    }

    // The counters of kernels that quantize their result as blocks complete
    // (attn_combine_quant; block_tail.glsl), one per block, zero
    // between dispatches (each block's last workgroup resets its own).
    void ensure_counters(size_t n) {
        if (tail_counters_.size() >= n * 4) return;
        grow(tail_counters_, n * 4, Memory::DeviceLocal, "the block counters");
        const std::vector<uint32_t> zeros(tail_counters_.size() / 4, 0u);
        dev_.upload(tail_counters_, 0, zeros.data(), zeros.size() * 4);
    }

    bool use_gemm(const WeightRef &w, backend::Buf x) {
        // act_quant.comp, which quantizes its input, needs subgroup shuffles as gemv.comp does
        return has_gemm(w.type) && dev_.info().subgroup_shuffle && uint32_t(buf(x).rows) >= gemm_min_tokens();
    }

    // The activation rows, quantized once as for gemv(), multiplied by
    // gemm.comp in tiles of weight rows by activation rows with FMAs, or on
    // the device's matrix units where it has them (gemm_coop).
    void gemm(const WeightRef &w, backend::Buf x, backend::Buf out, float scale, bool accumulate) {
        const size_t slot = quantize_activations(x, activation_block(w.type));
        const ActSlot &in = act_[slot];
        const uint32_t rows = uint32_t(w.ne1), ntok = uint32_t(buf(x).rows);
        if (!accumulate && defer_gemm(w, slot, ntok, out, scale)) return;
        flush_gemms();
        if (dev_.use_coopmat()) return gemm_coop(w, in, ntok, out, scale, accumulate);
        GemmPush pc{uint32_t(w.ne0), rows, ntok, uint32_t(w.row_bytes), scale, accumulate ? 1u : 0u, 0, rows};
        const uint32_t gx = (rows + kGemmTile - 1) / kGemmTile, gy = (ntok + kGemmTile - 1) / kGemmTile;
        check_gemm_grid(gx, gy, rows, ntok);
        dispatch(dev_.kernel(type_kernel_name("gemm", w.type), 4, sizeof pc),
                 {w_->get(w).handle(), in.q.handle(), in.d.handle(), buf(out).mem.handle()}, &pc, sizeof pc, gx,
                 gy, 1, 0b1000, shape_label(w));
    }

    // A product's workgroup grid within the smallest limit devices have.
    static void check_gemm_grid(uint32_t gx, uint32_t gy, uint32_t rows, uint32_t ntok) {
        if (gx > kMaxGroupsX || gy > kMaxGroupsX) fail(TERN_ERR_UNSUPPORTED, "Vulkan: a %u x %u product is too large", rows, ntok);
    }

    // On the matrix units (gemm_coop.comp), from weights dequantized to f16
    // rows once (dequant_f16.comp): inside the GEMM that was repeated for
    // every 64-token tile. Matrices of more than gemm_f16_bytes() of rows go
    // in parts, the parts taking two buffers in turn, so that one part's
    // rows are written while the GEMM reads the other's (H100, llama8b Q4_K
    // pp512: 3,515 -> 3,603 t/s). TQ2_0 and Q4_K decode their fields in the
    // GEMM's tiles (gemm_decodes_in_tiles).
    void gemm_coop(const WeightRef &w, const ActSlot &in, uint32_t ntok, backend::Buf out, float scale,
                   bool accumulate) {
        const uint32_t rows = uint32_t(w.ne1), cols = uint32_t(w.ne0);
        const size_t row_bytes = size_t(cols) * 2;
        const bool dequantize = !gemm_decodes_in_tiles(w.type);
        const GemmTiles tiles = gemm_coop_tiles(w.type, rows, ntok);
        const GemmTileShape tile = gemm_tile_shape(tiles);
        const uint32_t part = !dequantize ? rows : uint32_t(std::min<size_t>(
            rows, std::max<size_t>(tile.rows, gemm_f16_bytes() / row_bytes / tile.rows * tile.rows)));
        const uint32_t gx = (ntok + tile.tokens - 1) / tile.tokens, gy = (part + tile.rows - 1) / tile.rows;
        check_gemm_grid(gx, gy, rows, ntok);
        const VkBuffer weights = w_->get(w).handle();
        for (uint32_t row0 = 0; row0 < rows; row0 += part) {
            const uint32_t n = std::min(part, rows - row0);
            VkBuffer tile_src = weights;
            if (dequantize) {
                Buffer &dst = f16_rows_[f16_next_ ^= 1];
                grow(dst, size_t(part) * row_bytes, Memory::DeviceLocal, "f16 weight rows for the prefill GEMM");
                const Grid g = grid(uint32_t((size_t(n) * (cols / 16) + 63) / 64));
                DequantF16Push dp{cols, rows, uint32_t(w.row_bytes), row0, n, g.x};
                dispatch(dev_.kernel(type_kernel_name("dequant_f16", w.type), 2, sizeof dp), {weights, dst.handle()},
                         &dp, sizeof dp, g.x, g.y, 1, 0b10, shape_label(w));
                tile_src = dst.handle();
            }
            GemmPush pc{cols, rows, ntok, uint32_t(w.row_bytes), scale, accumulate ? 1u : 0u, row0, n, gemm_probe()};
            const bool wide = tiles == GemmTiles::Wide;
            const bool probe = pc.probe && wide && w.type == GgmlType::Q4_K; // the build with the probes
            const char *kernel = probe                         ? "gemm_coop_probe"
                                 : wide                        ? "gemm_coop_wide"
                                 : tiles == GemmTiles::Tall ? "gemm_coop_tall"
                                                               : "gemm_coop";
            dispatch(dev_.kernel(type_kernel_name(kernel, w.type), 5, sizeof pc),
                     {tile_src, in.q.handle(), in.d.handle(), buf(out).mem.handle(), weights}, &pc, sizeof pc, gx,
                     (n + tile.rows - 1) / tile.rows, 1, 0b1000, shape_label(w));
        }
    }

    // Prefill products not dispatched yet (at most three: a layer's q, k and
    // v, or its gate and up) that read one quantized input. They go as one
    // product (gemm_coop.comp's GROUPED builds) where they share type and
    // width and the launch rules give the group large tiles; otherwise one
    // by one. Anything touching an output, or quantizing another input,
    // dispatches them first (settle, flush_products).
    struct PendingGemm {
        WeightRef w; // as the device holds it
        size_t slot; // of act_
        uint32_t ntok;
        backend::Buf out;
        float scale;
    };
    std::vector<PendingGemm> pending_gemms_;

    bool defer_gemm(const WeightRef &w, size_t slot, uint32_t ntok, backend::Buf out, float scale) {
        if (!dev_.use_coopmat() || !has_grouped_gemm(w.type) || !dev_.info().buffer_arrays ||
            dev_.info().max_storage_buffers < 8 || !gemm_grouping())
            return false;
        if (!pending_gemms_.empty()) {
            const PendingGemm &f = pending_gemms_.front();
            if (pending_gemms_.size() == 3 || f.slot != slot || f.ntok != ntok || f.w.type != w.type ||
                f.w.ne0 != w.ne0)
                flush_gemms();
        }
        pending_gemms_.push_back({w, slot, ntok, out, scale});
        return true;
    }

    void flush_gemms() {
        if (pending_gemms_.empty()) return;
        std::vector<PendingGemm> g;
        g.swap(pending_gemms_);
        uint32_t rows = 0;
        for (const PendingGemm &p : g) rows += uint32_t(p.w.ne1);
        const GemmTiles tiles = gemm_coop_tiles(g[0].w.type, rows, g[0].ntok);
        if (g.size() == 1 || tiles == GemmTiles::Narrow) {
            for (const PendingGemm &p : g) gemm_coop(p.w, act_[p.slot], p.ntok, p.out, p.scale, false);
            return;
        }
        dispatch_grouped_gemm(g, tiles);
    }

    void dispatch_grouped_gemm(const std::vector<PendingGemm> &g, GemmTiles tiles) {
        const WeightRef &w0 = g[0].w;
        const GemmTileShape tile = gemm_tile_shape(tiles);
        const ActSlot &in = act_[g[0].slot];
        // (the GROUPED builds have no timing probes: probe 0)
        GemmGroupPush pc{{uint32_t(w0.ne0), 0, g[0].ntok, uint32_t(w0.row_bytes), 1.0f, 0, 0, 0, 0}, {}, {}};
        VkBuffer weights[3], outs[3];
        uint32_t gy = 0;
        std::string label;
        for (size_t i = 0; i < 3; ++i) {
            const PendingGemm &p = g[std::min(i, g.size() - 1)]; // unused elements repeat the last
            weights[i] = w_->get(p.w).handle();
            outs[i] = buf(p.out).mem.handle();
            if (i >= g.size()) continue;
            pc.mat_rows[i] = uint32_t(p.w.ne1);
            pc.mat_scale[i] = p.scale;
            gy += (pc.mat_rows[i] + tile.rows - 1) / tile.rows;
            label += (i ? "+" : "") + std::to_string(p.w.ne1);
        }
        const uint32_t gx = (pc.gemm.ntok + tile.tokens - 1) / tile.tokens;
        check_gemm_grid(gx, gy, gy * tile.rows, pc.gemm.ntok);
        const char *kernel = tiles == GemmTiles::Tall ? "gemm_coop_tall_grouped" : "gemm_coop_wide_grouped";
        dispatch(dev_.kernel(type_kernel_name(kernel, w0.type), 4, sizeof pc, {3, 1, 1, 3}),
                 {weights[0], weights[1], weights[2], in.q.handle(), in.d.handle(), outs[0], outs[1], outs[2]}, &pc,
                 sizeof pc, gx, gy, 1, 0b11100000, label + "x" + std::to_string(w0.ne0));
    }

    // TERNLM_GEMM_PROBE=bits (a timing probe; results are wrong): parts of
    // Q4_K's wide gemm_coop.comp left out (its Params.probe, in a build of
    // its own), so that --profile shows what each costs (docs/performance.md,
    // session 23).
    static uint32_t gemm_probe() {
        static const uint32_t bits = env_u32("TERNLM_GEMM_PROBE");
        return bits;
    }

    // The activation rows x quantized in blocks of qk for the integer
    // kernels: the slot of act_ that holds them, quantizing them into the
    // other slot (the one the last product did not read) unless one already
    // does (q/k/v and gate/up share their input; a fused GEMV may have
    // quantized its result in advance).
    size_t quantize_activations(backend::Buf x, uint32_t qk) {
        const StepBuf &a = buf(x);
        const Quantized key{size_t(x), a.version, qk};
        for (size_t i = 0; i < 2; ++i)
            if (act_[i].holds.version && act_[i].holds == key) return read_slot(i);
        if (pending_glu_.active && pending_glu_.products && pending_glu_.gate == x && glu_quantizes(qk)) {
            const size_t slot = 1 - pending_products_[0].slot; // not the one the products read
            ActSlot &o = act_[slot];
            grow_slot(o, size_t(a.rows) * size_t(a.cols), qk);
            dispatch_glu(qk, &o);
            o.holds = key;
            return read_slot(slot);
        }
        flush_products(); // they may read the slot this one writes
        const size_t slot = 1 - last_read_;
        ActSlot &o = act_[slot];
        if (attention_quantized(x, qk, o)) {
            o.holds = key;
            return read_slot(slot);
        }
        const bool fuse = pending_norm_.active && pending_norm_.out == x;
        const bool fuse_glu = pending_glu_.active && pending_glu_.gate == x;
        if (!fuse && !fuse_glu) settle(x);
        const size_t n = size_t(a.rows) * size_t(a.cols);
        const uint32_t n_blocks = uint32_t(n / qk);
        grow_slot(o, n, qk);
        const uint32_t wg_threads = fuse ? kNormQuantThreads : fuse_glu ? kGluQuantThreads : kActQuantThreads;
        const Grid g = grid((n_blocks * (qk / 8) + wg_threads - 1) / wg_threads);
        if (fuse_glu) {
            GluQuantPush pc{n_blocks, qk, pending_glu_.op};
            dispatch(dev_.kernel("glu_quant", 5, sizeof pc),
                     {a.mem.handle(), buf(pending_glu_.up).mem.handle(), o.q.handle(), o.d.handle(), o.s.handle()},
                     &pc, sizeof pc, g.x, g.y, 1, 0b11101);
            pending_glu_.active = false;
        } else if (fuse) {
            const PendingNorm &p = pending_norm_;
            const bool in_place = p.x == p.out;
            NormQuantPush pc{n_blocks, qk, uint32_t(a.cols), p.eps, in_place ? 0u : 1u, p.glu_op};
            dispatch(dev_.kernel(p.glu ? "glu_norm_quant" : "norm_quant", 6, sizeof pc),
                     {buf(p.x).mem.handle(), p.weight, p.glu ? buf(p.glu_up).mem.handle() : a.mem.handle(),
                      o.q.handle(), o.d.handle(), o.s.handle()},
                     &pc, sizeof pc, g.x, g.y, 1, in_place ? 0b111000u : 0b111100u);
            if (!in_place) pending_norm_.active = false; // the float row is written too
        } else {
            ActQuantPush pc{n_blocks, qk};
            dispatch(dev_.kernel("act_quant", 4, sizeof pc),
                     {a.mem.handle(), o.q.handle(), o.d.handle(), o.s.handle()}, &pc, sizeof pc, g.x, g.y, 1, 0b1110);
        }
        o.holds = key;
        return read_slot(slot);
    }
    size_t read_slot(size_t i) { return last_read_ = i; }
    // Room in a slot for n values in blocks of qk.
    void grow_slot(ActSlot &o, size_t n, uint32_t qk) {
        grow(o.q, n, Memory::DeviceLocal, "quantized activations");
        grow(o.d, n / qk * 4, Memory::DeviceLocal, "activation scales");
        grow(o.s, n / 16 * 4, Memory::DeviceLocal, "activation sums");
    }

    void ensure_host(Buffer &b, size_t bytes, const char *what) { grow(b, bytes, Memory::HostVisible, what); }

    // Grows a step-lifetime buffer. The old one may already be bound by a
    // command recorded in this step, so it is kept until the step completes.
    void grow(Buffer &b, size_t bytes, Memory kind, const char *what) {
        if (b.size() >= bytes) return;
        if (b) retired_.push_back(std::move(b));
        b = dev_.create_buffer(bytes, kind, what);
        rec_.buffers_changed();
    }

    void elementwise(backend::Buf x, backend::Buf y, uint32_t op) {
        settle(x);
        settle(y);
        StepBuf &a = buf(x);
        const uint32_t n = uint32_t(size_t(a.rows) * size_t(a.cols));
        EltPush pc{n, op};
        const Grid g = grid((n + 255) / 256);
        dispatch(dev_.kernel("elementwise", 2, sizeof pc), {a.mem.handle(), buf(y).mem.handle()}, &pc, sizeof pc, g.x,
                 g.y, 1, 0b1);
        wrote(x);
    }

    // The dispatches of the ops, recorded by rec_; `writes` as in Recorder::dispatch.
    void dispatch(const Kernel &k, std::initializer_list<VkBuffer> bufs, const void *push, uint32_t push_bytes,
                  uint32_t gx, uint32_t gy, uint32_t gz, uint32_t writes, const std::string &label = "",
                  const VkDeviceSize *offsets = nullptr) {
        rec_.dispatch(k, bufs, push, push_bytes, gx, gy, gz, writes, label, offsets);
    }
    void copy(VkBuffer src, size_t src_off, VkBuffer dst, size_t dst_off, size_t bytes) {
        rec_.copy(src, src_off, dst, dst_off, bytes);
    }

    std::shared_ptr<const GpuWeights> w_;
    Device &dev_;
    int n_ctx_, kv_dim_;
    uint32_t n_split_; // workgroups per head of a decode step's attention
    Buffer k_cache_, v_cache_, readback_, act_scales_, attn_parts_, moe_weights_;
    // Two slots, so that a kernel can quantize its result into one while a
    // product may still read the other.
    ActSlot act_[2];
    size_t last_read_ = 0; // the slot the last product read
    Buffer f16_rows_[2]; // gemm_coop's weight rows, dequantized (two, taken in turn)
    size_t f16_next_ = 0;
    Buffer tail_counters_; // per-block counters of the kernels that quantize their result as blocks complete
    uint64_t versions_ = 0;
    std::vector<Buffer> retired_; // replaced during the step, freed after it
    std::vector<Buffer> embed_stage_;
    size_t embeds_used_ = 0;
    Buffer tokens_host_, tokens_dev_; // the step's token ids, for embed.comp
    Buffer embed_rows_;               // a batch's embedding rows as held (embed_staged_rows)
    Buffer step_params_; // host-visible: the step's first position, read by rope, kv_store, attention
    Buffer step_dev_;    // its copy in device memory, which the kernels bind
    Buffer top_lists_, top_out_; // top_logits.comp's per-workgroup lists and result
    Recorder rec_{dev_};
    std::vector<StepBuf> bufs_;
    // The decode recording's host inputs (host_input), which a replay writes
    // at begin() so that it can submit before its ops are walked
    // (Recorder::submit_early: the walk, 73-137 us on the H100 machine
    // for llama1b and bitnet2b, then overlaps the GPU); early_ok_: the
    // recording reads no other host data.
    std::vector<std::function<void()>> host_inputs_;
    bool early_ok_ = false, inputs_written_ = false;
    size_t used_ = 0;
    const int32_t *tokens_ = nullptr;
    int n_ = 0;
    std::vector<float> *logits_ = nullptr;
    int logit_rows_ = 0;
    int64_t logit_cols_ = 0;
    size_t logits_buf_ = 0;         // the StepBuf a one-token step's logits are in
    bool logits_on_device_ = false; // this step left its logits there
    bool pending_ = false;          // ... and the step is done: fetch_logits() can read them
    bool ranked_ = false;           // ... and ranked the best of them (top_logits.comp)
};

class VkExecutor final : public backend::Executor {
public:
    VkExecutor(std::shared_ptr<const GpuWeights> w, int n_layer, int n_ctx, int kv_dim)
        : step_(std::move(w), n_layer, n_ctx, kv_dim) {}
    const char *name() const override { return "vulkan"; }
    backend::Step &begin(KvCache &kv, const int32_t *tokens, int n, int pos0, std::vector<float> *logits) override {
        step_.begin(tokens, n, pos0, logits);
        return step_;
    }
    void finish() override { step_.finish(); }
    bool logits_pending() const override { return step_.logits_pending(); }
    void fetch_logits() override { step_.fetch_logits(); }
    bool top_logits(std::vector<TopLogit> &out) override { return step_.top_logits(out); }

private:
    VkStep step_;
};

} // namespace

std::unique_ptr<backend::Executor> make_vulkan_executor(std::shared_ptr<const GpuWeights> weights, int n_layer,
                                                        int n_ctx, int kv_dim) {
    return std::make_unique<VkExecutor>(std::move(weights), n_layer, n_ctx, kv_dim);
}

} // namespace ternlm::vk

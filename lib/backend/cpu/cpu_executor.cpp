#include "backend/cpu/cpu_executor.hpp"

#include <algorithm>
#include <cstring>

#include "backend/cpu/moe.hpp"
#include "backend/cpu/ops.hpp"
#include "common/error.hpp"
#include "kv/kv_cache.hpp"
#include "quant/reference.hpp"

namespace ternlm::cpu {

namespace {

struct Buffer {
    int rows = 0;
    int64_t cols = 0;
    std::vector<float> data; // grows, never shrinks: steps reuse it
    float *row(int r) { return data.data() + size_t(r) * size_t(cols); }
};

class CpuStep final : public backend::Step {
public:
    explicit CpuStep(int n_threads) : pool_(n_threads) {}

    void reset(KvCache &kv, const int32_t *tokens, int n, int pos0, std::vector<float> *logits) {
        kv_ = &kv;
        tokens_ = tokens;
        n_ = n;
        pos0_ = pos0;
        logits_ = logits;
        used_ = 0;
        products_.clear(); // a step that failed may have left some
    }

    int n_tokens() const override { return n_; }

    backend::Buf new_buf(int rows, int64_t cols) override {
        run_products();
        if (used_ == bufs_.size()) bufs_.emplace_back();
        Buffer &b = bufs_[used_];
        b.rows = rows;
        b.cols = cols;
        const size_t need = size_t(rows) * size_t(cols);
        if (b.data.size() < need) b.data.resize(need);
        return backend::Buf(used_++);
    }

    void embed(const WeightRef &table, backend::Buf out) override {
        run_products();
        Buffer &o = buf(out);
        for (int t = 0; t < n_; ++t) dequantize_weight_row(table, tokens_[t], o.row(t));
    }

    void rms_norm(backend::Buf x, const WeightRef &weight, float eps, backend::Buf out) override {
        run_products();
        Buffer &a = buf(x), &o = buf(out);
        cpu::rms_norm(a.data.data(), f32_vector(weight), a.rows, a.cols, eps, o.data.data());
    }

    // Products wait until the next other op, so that consecutive ones of
    // one input (a layer's q, k and v; gate and up) run as one parallel
    // range with one conversion of the input (cpu::matmul_shared_input).
    // Every other op runs them first (run_products), as does the step's end.
    void matmul(const WeightRef &w, backend::Buf x, backend::Buf out, float scale) override {
        if (!products_.empty() &&
            (x != products_x_ || products_.size() == size_t(kMaxSharedInput) || !can_share_input(products_[0].w, w)))
            run_products();
        products_.push_back({w, out, scale});
        products_x_ = x;
    }

    void run_products() {
        if (products_.empty()) return;
        Buffer &a = buf(products_x_);
        if (products_.size() == 1) {
            cpu::matmul(pool_, products_[0].w, a.data.data(), a.rows, buf(products_[0].out).data.data(), act_scratch_);
        } else {
            const WeightRef *ws[kMaxSharedInput];
            float *ys[kMaxSharedInput];
            for (size_t i = 0; i < products_.size(); ++i) {
                ws[i] = &products_[i].w;
                ys[i] = buf(products_[i].out).data.data();
            }
            cpu::matmul_shared_input(pool_, ws, ys, int(products_.size()), a.data.data(), a.rows, act_scratch_);
        }
        for (const Product &p : products_) {
            if (p.scale == 1.0f) continue;
            Buffer &o = buf(p.out);
            for (size_t i = 0; i < size_t(o.rows) * size_t(o.cols); ++i) o.data[i] *= p.scale;
        }
        products_.clear();
    }

    void rope(backend::Buf x, int n_heads, int head_dim, const RopeParams &p) override {
        run_products();
        Buffer &a = buf(x);
        cpu::rope(a.data.data(), a.rows, n_heads, head_dim, pos0_, p);
    }

    void attention(int layer, backend::Buf q, backend::Buf k, backend::Buf v, backend::Buf out,
                   const AttnShape &shape) override {
        run_products();
        cpu::attention(pool_, *kv_, layer, buf(q).data.data(), buf(k).data.data(), buf(v).data.data(), n_, pos0_,
                       shape, buf(out).data.data(), attn_scratch_);
    }

    void add(backend::Buf x, backend::Buf y) override {
        run_products();
        Buffer &a = buf(x), &b = buf(y);
        const size_t n = size_t(a.rows) * size_t(a.cols);
        for (size_t i = 0; i < n; ++i) a.data[i] += b.data[i];
    }

    void glu(backend::Buf gate, backend::Buf up, FfnActivation act) override {
        run_products();
        Buffer &g = buf(gate);
        cpu::glu(g.data.data(), buf(up).data.data(), int64_t(g.rows) * g.cols, act);
    }

    void moe_ffn(const MoeFfn &moe, backend::Buf xn, backend::Buf x) override {
        run_products();
        Buffer &a = buf(xn);
        cpu::moe_ffn(pool_, moe, a.data.data(), a.rows, a.cols, buf(x).data.data(), act_scratch_, moe_scratch_);
    }

    backend::Buf last_row(backend::Buf x) override {
        run_products();
        const int64_t cols = buf(x).cols;
        backend::Buf r = new_buf(1, cols);
        Buffer &a = buf(x); // re-fetch: new_buf may have moved the vector
        std::memcpy(buf(r).data.data(), a.row(a.rows - 1), size_t(cols) * sizeof(float));
        return r;
    }

    void write_rows(backend::Buf out, const float *src) override {
        run_products();
        Buffer &o = buf(out);
        std::memcpy(o.data.data(), src, size_t(o.rows) * size_t(o.cols) * sizeof(float));
    }
    const float *host_rows(backend::Buf x) override {
        run_products();
        return buf(x).data.data();
    }

    void output_logits(backend::Buf x) override {
        run_products();
        Buffer &a = buf(x);
        logits_->assign(a.data.begin(), a.data.begin() + size_t(a.rows) * size_t(a.cols));
    }

    ThreadPool &pool() { return pool_; }

private:
    Buffer &buf(backend::Buf b) { return bufs_[size_t(b)]; }

    // Norm weights are F32 in llama.cpp's files; other types are converted.
    const float *f32_vector(const WeightRef &w) {
        if (w.type == GgmlType::F32) return reinterpret_cast<const float *>(w.data);
        norm_scratch_.resize(size_t(w.ne0));
        dequantize_row(w.type, w.data, norm_scratch_.data(), w.ne0);
        return norm_scratch_.data();
    }

    ThreadPool pool_;
    KvCache *kv_ = nullptr;
    const int32_t *tokens_ = nullptr;
    int n_ = 0, pos0_ = 0;
    std::vector<float> *logits_ = nullptr;
    std::vector<Buffer> bufs_;
    size_t used_ = 0;
    cpu::MatmulScratch act_scratch_;
    cpu::AttentionScratch attn_scratch_;
    cpu::MoeScratch moe_scratch_;
    std::vector<float> norm_scratch_;
    // Products not run yet, all of input products_x_ (see matmul).
    struct Product {
        WeightRef w;
        backend::Buf out;
        float scale;
    };
    std::vector<Product> products_;
    backend::Buf products_x_{};
};

class CpuExecutor final : public backend::Executor {
public:
    explicit CpuExecutor(int n_threads) : step_(n_threads) {}
    const char *name() const override { return "cpu"; }
    backend::Step &begin(KvCache &kv, const int32_t *tokens, int n, int pos0, std::vector<float> *logits) override {
        step_.reset(kv, tokens, n, pos0, logits);
        return step_;
    }
    void finish() override { step_.run_products(); }

private:
    CpuStep step_;
};

} // namespace

std::unique_ptr<backend::Executor> make_cpu_executor(int n_threads) {
    return std::make_unique<CpuExecutor>(n_threads);
}

} // namespace ternlm::cpu

#include "backend/split_executor.hpp"

#include <vector>

namespace ternlm::backend {

namespace {

class SplitStep final : public Step {
public:
    SplitStep(std::function<bool(const WeightRef &)> on_gpu, int first_gpu_layer)
        : on_gpu_(std::move(on_gpu)), first_gpu_layer_(first_gpu_layer) {}

    void begin(Step &cpu, Step &gpu) {
        cpu_ = &cpu;
        gpu_ = &gpu;
        bufs_.clear();
        on_gpu_now_ = false;
    }

    int n_tokens() const override { return cpu_->n_tokens(); }

    Buf new_buf(int rows, int64_t cols) override {
        bufs_.push_back({cpu_->new_buf(rows, cols), gpu_->new_buf(rows, cols), cols, false});
        return Buf(bufs_.size() - 1);
    }

    // Rows of the table are looked up on the host either way (a tied output
    // matrix on the GPU is also the table).
    void embed(const WeightRef &table, Buf out) override {
        if (side(false)) return gpu_->embed(table, up(out));
        cpu_->embed(table, down(out));
    }
    void rms_norm(Buf x, const WeightRef &weight, float eps, Buf out) override {
        if (side(on_gpu_(weight))) return gpu_->rms_norm(up(x), weight, eps, up(out));
        cpu_->rms_norm(cpu(x), weight, eps, down(out));
    }
    void matmul(const WeightRef &w, Buf x, Buf out, float scale) override {
        if (side(on_gpu_(w))) return gpu_->matmul(w, up(x), up(out), scale);
        cpu_->matmul(w, cpu(x), down(out), scale);
    }
    void matmul_add(const WeightRef &w, Buf a, Buf x, Buf tmp, float scale) override {
        if (side(on_gpu_(w))) return gpu_->matmul_add(w, up(a), up(x), up(tmp), scale);
        cpu_->matmul_add(w, cpu(a), down(x), down(tmp), scale);
    }
    void moe_ffn(const MoeFfn &moe, Buf xn, Buf x) override {
        if (side(on_gpu_(moe.router))) return gpu_->moe_ffn(moe, up(xn), up(x));
        cpu_->moe_ffn(moe, cpu(xn), down(x));
    }
    void rope(Buf x, int n_heads, int head_dim, const RopeParams &p) override {
        if (side(false)) return gpu_->rope(up(x), n_heads, head_dim, p);
        cpu_->rope(down(x), n_heads, head_dim, p);
    }
    void attention(int layer, Buf q, Buf k, Buf v, Buf out, const AttnShape &s) override {
        if (side(layer >= first_gpu_layer_)) return gpu_->attention(layer, up(q), up(k), up(v), up(out), s);
        cpu_->attention(layer, cpu(q), cpu(k), cpu(v), down(out), s);
    }
    void rope_attention(int layer, Buf q, Buf k, Buf v, Buf out, const AttnShape &s, const RopeParams &r) override {
        if (side(layer >= first_gpu_layer_)) return gpu_->rope_attention(layer, up(q), up(k), up(v), up(out), s, r);
        cpu_->rope_attention(layer, down(q), down(k), cpu(v), down(out), s, r);
    }
    void add(Buf x, Buf y) override {
        if (side(false)) return gpu_->add(up(x), up(y));
        cpu_->add(down(x), cpu(y));
    }
    void glu(Buf gate, Buf upb, FfnActivation act) override {
        if (side(false)) return gpu_->glu(up(gate), up(upb), act);
        cpu_->glu(down(gate), cpu(upb), act);
    }
    Buf last_row(Buf x) override {
        const int64_t cols = bufs_[size_t(x)].cols;
        // The other side's twin is left out: ops never go back to the CPU,
        // and a CPU row gets its GPU twin when a GPU op first reads it.
        if (side(false)) {
            const Buf g = gpu_->last_row(up(x));
            bufs_.push_back({Buf(-1), g, cols, false});
        } else {
            const Buf c = cpu_->last_row(cpu(x));
            bufs_.push_back({c, Buf(-1), cols, true});
        }
        return Buf(bufs_.size() - 1);
    }
    void output_logits(Buf x) override {
        side(true); // the output is the GPU's
        gpu_->output_logits(up(x));
    }
    void write_rows(Buf out, const float *src) override {
        if (side(false)) return gpu_->write_rows(up(out), src);
        cpu_->write_rows(down(out), src);
    }

private:
    struct Pair {
        Buf cpu, gpu;
        int64_t cols;
        bool cpu_newer; // the CPU wrote it since the GPU last had it
    };

    // Where this op runs: the GPU once any op has wanted it (the CPU's
    // layers come first), else the CPU.
    bool side(bool wants_gpu) {
        if (wants_gpu) on_gpu_now_ = true;
        return on_gpu_now_;
    }
    // b on the GPU side, its CPU rows copied up if the CPU wrote it last.
    Buf up(Buf b) {
        Pair &p = bufs_[size_t(b)];
        if (p.gpu < 0) p.gpu = gpu_->new_buf(1, p.cols); // a CPU last_row's twin
        if (p.cpu_newer) {
            gpu_->write_rows(p.gpu, cpu_->host_rows(p.cpu));
            p.cpu_newer = false;
        }
        return p.gpu;
    }
    // b on the CPU side, read only.
    Buf cpu(Buf b) const { return bufs_[size_t(b)].cpu; }
    // b on the CPU side, written by the op.
    Buf down(Buf b) {
        bufs_[size_t(b)].cpu_newer = true;
        return bufs_[size_t(b)].cpu;
    }

    std::function<bool(const WeightRef &)> on_gpu_;
    int first_gpu_layer_;
    Step *cpu_ = nullptr, *gpu_ = nullptr;
    std::vector<Pair> bufs_;
    bool on_gpu_now_ = false;
};

class SplitExecutor final : public Executor {
public:
    SplitExecutor(std::unique_ptr<Executor> cpu, std::unique_ptr<Executor> gpu,
                  std::function<bool(const WeightRef &)> on_gpu, int first_gpu_layer)
        : cpu_(std::move(cpu)), gpu_(std::move(gpu)), step_(std::move(on_gpu), first_gpu_layer) {}
    const char *name() const override { return "split"; }
    Step &begin(KvCache &kv, const int32_t *tokens, int n, int pos0, std::vector<float> *logits) override {
        // The CPU's layers keep their keys and values in kv's host storage,
        // the GPU's in its own cache.
        step_.begin(cpu_->begin(kv, tokens, n, pos0, nullptr), gpu_->begin(kv, tokens, n, pos0, logits));
        return step_;
    }
    void finish() override {
        cpu_->finish();
        gpu_->finish();
    }
    bool logits_pending() const override { return gpu_->logits_pending(); }
    void fetch_logits() override { gpu_->fetch_logits(); }
    bool top_logits(std::vector<TopLogit> &out) override { return gpu_->top_logits(out); }

private:
    std::unique_ptr<Executor> cpu_, gpu_;
    SplitStep step_;
};

} // namespace

std::unique_ptr<Executor> make_split_executor(std::unique_ptr<Executor> cpu, std::unique_ptr<Executor> gpu,
                                              std::function<bool(const WeightRef &)> on_gpu, int first_gpu_layer) {
    return std::make_unique<SplitExecutor>(std::move(cpu), std::move(gpu), std::move(on_gpu), first_gpu_layer);
}

} // namespace ternlm::backend

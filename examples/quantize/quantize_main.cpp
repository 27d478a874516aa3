// ternlm-quantize: rewrites a GGUF model with its matrices in another type.
//   ternlm-quantize IN.gguf OUT.gguf --type T [-t THREADS]
// T: f32 f16 bf16 q8_0 q4_0 q5_0 q4_k q6_k tq1_0 tq2_0 i2_s. Ternary types from float
// weights use BitNet b1.58's absmean rule; between ternary types the
// conversion is lossless. See lib/model/quantizer.hpp.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "common/error.hpp"
#include "model/quantizer.hpp"

namespace {

void usage() {
    std::fprintf(stderr, "usage: ternlm-quantize IN.gguf OUT.gguf --type T [-t THREADS]\n"
                         "types: f32 f16 bf16 q8_0 q4_0 q5_0 q4_k q6_k tq1_0 tq2_0 i2_s\n");
}

// A one-line bar on stderr, redrawn in place.
void draw_progress(const std::string &tensor, uint64_t done, uint64_t total) {
    const int width = 30, filled = total ? int(double(done) / double(total) * width) : width;
    std::fprintf(stderr, "\r[%.*s%*s] %5.1f%% %-40.40s", filled, "##############################", width - filled, "",
                 total ? 100.0 * double(done) / double(total) : 100.0, tensor.c_str());
    std::fflush(stderr);
}

} // namespace

int main(int argc, char **argv) {
    std::string in, out, type_name_arg;
    ternlm::QuantizeParams p;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if ((a == "--type" || a == "-T") && i + 1 < argc) type_name_arg = argv[++i];
        else if (a == "-t" && i + 1 < argc) p.n_threads = std::atoi(argv[++i]);
        else if (a == "-h" || a == "--help") return usage(), 0;
        else if (in.empty()) in = a;
        else if (out.empty()) out = a;
        else return usage(), 2;
    }
    if (in.empty() || out.empty() || type_name_arg.empty()) return usage(), 2;
    if (!ternlm::type_from_name(type_name_arg, &p.type) || !ternlm::quantize_target_supported(p.type)) {
        std::fprintf(stderr, "ternlm-quantize: unsupported type '%s'\n", type_name_arg.c_str());
        return usage(), 2;
    }
    p.progress = draw_progress;
    const auto t0 = std::chrono::steady_clock::now();
    try {
        ternlm::quantize_model(in, out, p);
    } catch (const ternlm::Failure &e) {
        std::fprintf(stderr, "\nternlm-quantize: %s\n", e.what());
        return 1;
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "\nwrote %s (%s) in %.1f s\n", out.c_str(), ternlm::type_name(p.type), s);
    return 0;
}

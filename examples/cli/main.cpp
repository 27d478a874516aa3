// ternlm — generate text from a GGUF model.
//
//   ternlm -m MODEL -p PROMPT -n N [--temp T --top-k K --top-p P --min-p P
//          --repeat-penalty R --seed S --threads N --ctx N --backend cpu|vulkan|auto]
//
// Streams the continuation to stdout; load time and prefill/decode speed go
// to stderr at the end.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ternlm/ternlm.hpp"

#ifndef TERNLM_DEFAULT_MODEL
#define TERNLM_DEFAULT_MODEL "../shared/models/stories260K.gguf"
#endif

namespace {

struct Options {
    std::string model = TERNLM_DEFAULT_MODEL;
    std::string prompt = "Once upon a time";
    int n_predict = 64;
    int threads = 0;
    tern_backend backend = TERN_BACKEND_AUTO;
    int ctx = 0;
    tern_sampler_params sampling = tern_sampler_default_params();
};

void usage(const char *argv0) {
    std::fprintf(stderr,
                 "usage: %s [-m MODEL] [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P] [--min-p P]\n"
                 "          [--repeat-penalty R] [--seed S] [-t|--threads N] [-c|--ctx N] [-b|--backend cpu|vulkan|auto]\n"
                 "defaults: -m %s -p \"Once upon a time\" -n 64 --temp 0.8 --top-k 40 --top-p 0.95 --min-p 0.05\n",
                 argv0, TERNLM_DEFAULT_MODEL);
}

bool parse(int argc, char **argv, Options &o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> const char * {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "-h" || a == "--help") return false;
        else if (a == "-m" || a == "--model") o.model = value();
        else if (a == "-p" || a == "--prompt") o.prompt = value();
        else if (a == "-n" || a == "--n-predict") o.n_predict = std::atoi(value());
        else if (a == "--temp") o.sampling.temperature = float(std::atof(value()));
        else if (a == "--top-k") o.sampling.top_k = std::atoi(value());
        else if (a == "--top-p") o.sampling.top_p = float(std::atof(value()));
        else if (a == "--min-p") o.sampling.min_p = float(std::atof(value()));
        else if (a == "--repeat-penalty") o.sampling.repeat_penalty = float(std::atof(value()));
        else if (a == "--seed") o.sampling.seed = std::strtoull(value(), nullptr, 10);
        else if (a == "-t" || a == "--threads") o.threads = std::atoi(value());
        else if (a == "-c" || a == "--ctx") o.ctx = std::atoi(value());
        else if (a == "-b" || a == "--backend") {
            const std::string b = value();
            if (b == "cpu") o.backend = TERN_BACKEND_CPU;
            else if (b == "vulkan") o.backend = TERN_BACKEND_VULKAN;
            else if (b == "auto") o.backend = TERN_BACKEND_AUTO;
            else return false;
        }
        else {
            std::fprintf(stderr, "error: unknown argument '%s'\n", a.c_str());
            return false;
        }
    }
    return true;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int run(const Options &o) {
    using clock = std::chrono::steady_clock;
    auto t0 = clock::now();
    tern_model_params mp = tern_model_default_params();
    mp.n_threads = o.threads;
    mp.backend = o.backend;
    tern::Model model(o.model, mp);
    const double t_load = seconds_since(t0);
    std::fprintf(stderr, "loaded %s on %s\n", o.model.c_str(), model.description().c_str());

    tern_context_params cp = tern_context_default_params();
    cp.n_ctx = unsigned(o.ctx);
    tern::Context ctx(model, cp);
    tern::Sampler sampler(o.sampling);
    tern::Detokenizer detok(model);

    const std::vector<tern_token> prompt = model.tokenize(o.prompt, true, true);
    for (tern_token t : prompt) sampler.accept(t);
    std::fputs(o.prompt.c_str(), stdout);
    std::fflush(stdout);

    t0 = clock::now();
    ctx.prefill(prompt);
    const double t_prefill = seconds_since(t0);

    t0 = clock::now();
    int n_decoded = 0;
    for (int i = 0; i < o.n_predict; ++i) {
        const tern_token t = sampler.sample(ctx);
        if (model.is_eog(t)) break;
        std::fputs(detok.push(t).c_str(), stdout);
        std::fflush(stdout);
        if (i + 1 == o.n_predict) break;
        if (ctx.n_past() >= ctx.n_ctx()) {
            std::fprintf(stderr, "\n[context full after %u tokens]\n", ctx.n_past());
            break;
        }
        ctx.decode_step(t);
        ++n_decoded;
    }
    std::fputs(detok.flush().c_str(), stdout);
    std::fputs("\n", stdout);
    const double t_decode = seconds_since(t0);

    std::fprintf(stderr, "\nload: %.1f ms | prefill: %zu tokens, %.1f tokens/s | decode: %d tokens, %.1f tokens/s\n",
                 t_load * 1e3, prompt.size(), double(prompt.size()) / t_prefill, n_decoded,
                 n_decoded ? double(n_decoded) / t_decode : 0.0);
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    Options o;
    if (!parse(argc, argv, o)) {
        usage(argv[0]);
        return 2;
    }
    try {
        return run(o);
    } catch (const tern::Error &e) {
        std::fprintf(stderr, "ternlm: %s\n", e.what());
        return 1;
    }
}

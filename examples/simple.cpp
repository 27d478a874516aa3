// simple.cpp — greedy generation with the C++ API (ternlm.hpp).
//   simple_cpp MODEL.gguf "prompt" [n_tokens]
// Every failure throws tern::Error; handles free themselves.
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "ternlm/ternlm.hpp"

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.gguf PROMPT [N]\n", argv[0]);
        return 2;
    }
    const int n_predict = argc > 3 ? std::atoi(argv[3]) : 32;
    try {
        tern::Model model(argv[1]);
        tern::Context ctx(model);
        tern::Sampler sampler(tern::Sampler::greedy());
        tern::Detokenizer detok(model);

        ctx.prefill(model.tokenize(argv[2]));
        std::cout << argv[2];
        for (int i = 0; i < n_predict; ++i) {
            tern_token t = sampler.sample(ctx);
            if (model.is_eog(t)) break;
            std::cout << detok.push(t) << std::flush;
            ctx.decode_step(t);
        }
        std::cout << detok.flush() << "\n";
    } catch (const tern::Error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

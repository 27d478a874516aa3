// Synthetic GGUF models of real shapes with random weights written directly
// in the target type, so benchmarks need no downloads (speed does not depend
// on the weight values).
#pragma once

#include <string>
#include <vector>

#include "quant/types.hpp"

namespace ternlm::bench {

struct Shape {
    const char *name;
    const char *arch; // "llama", "bitnet" or "bitnet-b1.58"
    int n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab;
    bool tied_output;
    int n_expert = 0, n_expert_used = 0; // a mixture of experts (n_ff each) when > 0
};

// mid1024, llama1b, llama8b, bitnet2b (dimensions of golden/PERF.md);
// bitnet-b1.58-2b: bitnet2b as bitnet.cpp publishes BitNet b1.58 2B4T
// (architecture bitnet-b1.58, a Llama 3 style BPE vocabulary, token_embd
// in F16); and
// bitnet-moe: bitnet2b's attention at mid1024's size with 8 experts of
// which 2 are used (a ternary MoE, for the CPU).
const std::vector<Shape> &shapes();
const Shape *find_shape(const std::string &name);

// Writes the model; every matrix in `type` (token_embd too, but for
// bitnet-b1.58-2b), norms in F32.
// Prints progress to stderr.
void write_synthetic(const Shape &s, GgmlType type, const std::string &path, uint32_t seed);

} // namespace ternlm::bench

// The mixture-of-experts FFN on the CPU (backend::MoeFfn): routing, then
// each expert's FFN over the rows routed to it, gathered into one batch.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.hpp"
#include "backend/cpu/ops.hpp"
#include "backend/cpu/thread_pool.hpp"

namespace ternlm::cpu {

// Row t's experts and weights: experts[t * n_used + j], weights likewise,
// best first.
struct Routing {
    std::vector<int32_t> experts;
    std::vector<float> weights;
};
// logits: n rows of n_expert router outputs.
Routing route(const float *logits, int n, int n_expert, int n_used);

// What moe_ffn keeps between calls (vectors that grow, never shrink): the
// router's logits, each (row, slot)'s expert output, an expert's batch.
// Allocated afresh, a prefill's buffers of megabytes came from new pages,
// zeroed, every call (as attention's did: docs/performance.md, session 27).
struct MoeScratch {
    std::vector<float> logits, out, in, gate, up, down, sub_norm;
};

// x[t] += moe(xn[t]) for n rows of n_embd.
void moe_ffn(ThreadPool &pool, const MoeFfn &moe, const float *xn, int n, int64_t n_embd, float *x,
             MatmulScratch &scratch, MoeScratch &ms);

} // namespace ternlm::cpu

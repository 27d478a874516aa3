// The sampler chain: repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw. Seeded: the same seed and logits give the same tokens.
// Candidates are ranked by logit, then by id on ties, so that the chain can
// run on the few best logits a GPU ranked (sample_top) and pick what it
// would pick from the whole row.
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <vector>

#include "backend/backend.hpp" // TopLogit

namespace ternlm {

struct SamplerParams {
    float temperature = 0.8f; // <= 0: greedy
    int top_k = 40;           // <= 0: off
    float top_p = 0.95f;      // >= 1: off
    float min_p = 0.05f;      // <= 0: off
    float repeat_penalty = 1.0f;
    int repeat_last_n = 64;
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplerParams &p);
    // Picks a token from n_vocab logits (not modified) and records it.
    int32_t sample(const float *logits, int n_vocab);
    // How many of the best logits the chain looks at (top-k, or 1 for greedy,
    // plus the tokens the penalty may push down); 0 when it needs them all.
    int candidates_needed() const;
    // Picks as sample() would from the whole row, given at least
    // candidates_needed() of its best logits (or all of them).
    int32_t sample_top(const TopLogit *best, int n);
    // Records a token in the penalty window without sampling.
    void accept(int32_t token);
    void reset();

    const SamplerParams &params() const { return p_; }

private:
    struct Candidate {
        int32_t id;
        float logit;
        float p;
    };
    int32_t sample_candidates();
    void penalize(std::vector<Candidate> &c) const;
    static void softmax(std::vector<Candidate> &c);
    double uniform();

    SamplerParams p_;
    std::mt19937_64 rng_;
    std::deque<int32_t> history_;
    std::vector<Candidate> cand_;
};

// Index of the largest logit (the first on ties).
int32_t argmax(const float *logits, int n);

} // namespace ternlm

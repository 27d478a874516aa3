#include "sampling/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace ternlm {

namespace {
// Best first; the lower id first on ties (what argmax and the GPU's ranking do).
bool better(float a_logit, int32_t a_id, float b_logit, int32_t b_id) {
    return a_logit > b_logit || (a_logit == b_logit && a_id < b_id);
}
} // namespace

int32_t argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; ++i)
        if (logits[i] > logits[best]) best = i;
    return best;
}

Sampler::Sampler(const SamplerParams &p) : p_(p), rng_(p.seed) {}

void Sampler::reset() {
    history_.clear();
    rng_.seed(p_.seed);
}

void Sampler::accept(int32_t token) {
    if (p_.repeat_last_n <= 0) return;
    history_.push_back(token);
    while (int(history_.size()) > p_.repeat_last_n) history_.pop_front();
}

double Sampler::uniform() {
    // 53 random bits -> [0, 1); identical on every platform, unlike
    // std::uniform_real_distribution.
    return double(rng_() >> 11) * (1.0 / 9007199254740992.0);
}

void Sampler::penalize(std::vector<Candidate> &c) const {
    if (p_.repeat_penalty == 1.0f || history_.empty()) return;
    std::unordered_set<int32_t> seen(history_.begin(), history_.end());
    for (Candidate &x : c) {
        if (!seen.count(x.id)) continue;
        x.logit = x.logit > 0 ? x.logit / p_.repeat_penalty : x.logit * p_.repeat_penalty;
    }
}

// Sorts by logit (descending) and fills p.
void Sampler::softmax(std::vector<Candidate> &c) {
    std::sort(c.begin(), c.end(),
              [](const Candidate &a, const Candidate &b) { return better(a.logit, a.id, b.logit, b.id); });
    const float mx = c.front().logit;
    double sum = 0;
    for (Candidate &x : c) {
        x.p = std::exp(x.logit - mx);
        sum += x.p;
    }
    for (Candidate &x : c) x.p = float(x.p / sum);
}

int Sampler::candidates_needed() const {
    int pushed_down = 0; // a penalized token can fall below others
    if (p_.repeat_penalty != 1.0f)
        pushed_down = int(std::unordered_set<int32_t>(history_.begin(), history_.end()).size());
    if (p_.temperature <= 0) return 1 + pushed_down;
    return p_.top_k > 0 ? p_.top_k + pushed_down : 0;
}

int32_t Sampler::sample(const float *logits, int n_vocab) {
    cand_.resize(size_t(n_vocab));
    for (int i = 0; i < n_vocab; ++i) cand_[size_t(i)] = {i, logits[i], 0.0f};
    return sample_candidates();
}

int32_t Sampler::sample_top(const TopLogit *best, int n) {
    cand_.resize(size_t(n));
    for (int i = 0; i < n; ++i) cand_[size_t(i)] = {best[i].id, best[i].logit, 0.0f};
    return sample_candidates();
}

int32_t Sampler::sample_candidates() {
    penalize(cand_);
    int32_t token;
    if (p_.temperature <= 0) {
        token = cand_[0].id;
        float best = cand_[0].logit;
        for (const Candidate &x : cand_)
            if (better(x.logit, x.id, best, token)) best = x.logit, token = x.id;
    } else {
        if (p_.top_k > 0 && size_t(p_.top_k) < cand_.size()) {
            std::partial_sort(
                cand_.begin(), cand_.begin() + p_.top_k, cand_.end(),
                [](const Candidate &a, const Candidate &b) { return better(a.logit, a.id, b.logit, b.id); });
            cand_.resize(size_t(p_.top_k));
        }
        softmax(cand_);
        if (p_.top_p < 1.0f) {
            double cum = 0;
            size_t keep = cand_.size();
            for (size_t i = 0; i < cand_.size(); ++i) {
                cum += cand_[i].p;
                if (cum >= p_.top_p) {
                    keep = i + 1;
                    break;
                }
            }
            cand_.resize(keep);
        }
        if (p_.min_p > 0) {
            const float floor = cand_.front().p * p_.min_p;
            size_t keep = 1;
            while (keep < cand_.size() && cand_[keep].p >= floor) ++keep;
            cand_.resize(keep);
        }
        for (Candidate &x : cand_) x.logit /= p_.temperature;
        softmax(cand_);
        const double r = uniform();
        double cum = 0;
        token = cand_.back().id;
        for (const Candidate &x : cand_) {
            cum += x.p;
            if (r < cum) {
                token = x.id;
                break;
            }
        }
    }
    accept(token);
    return token;
}

} // namespace ternlm

// The sampler chain: greedy, seeded reproducibility, filters, penalty.
#include <catch2/catch.hpp>

#include <cmath>
#include <algorithm>
#include <map>
#include <random>

#include "sampling/sampler.hpp"

using ternlm::Sampler;
using ternlm::SamplerParams;

namespace {
std::vector<float> logits_peaked() {
    std::vector<float> l(100);
    for (int i = 0; i < 100; ++i) l[size_t(i)] = -0.05f * float(i); // token 0 likeliest
    l[42] = 3.0f;
    return l;
}
// Plain temperature sampling: every filter off.
SamplerParams temperature_only(float temperature, uint64_t seed) {
    SamplerParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0;
    p.seed = seed;
    return p;
}
} // namespace

TEST_CASE("greedy picks the first largest logit", "[sampler]") {
    SamplerParams p;
    p.temperature = 0;
    Sampler s(p);
    std::vector<float> l = {1, 5, 5, 2};
    CHECK(s.sample(l.data(), 4) == 1);
    CHECK(ternlm::argmax(l.data(), 4) == 1);
}

TEST_CASE("the same seed gives the same tokens", "[sampler]") {
    const std::vector<float> l = logits_peaked();
    SamplerParams p = temperature_only(1.5f, 77);
    Sampler a(p), b(p);
    std::vector<int> ta, tb;
    for (int i = 0; i < 50; ++i) {
        ta.push_back(a.sample(l.data(), 100));
        tb.push_back(b.sample(l.data(), 100));
    }
    CHECK(ta == tb);
    a.reset();
    CHECK(a.sample(l.data(), 100) == ta[0]);
    p.seed = 78;
    Sampler c(p);
    std::vector<int> tc;
    for (int i = 0; i < 50; ++i) tc.push_back(c.sample(l.data(), 100));
    CHECK(tc != ta);
}

TEST_CASE("top-k 1 and tiny top-p collapse to greedy", "[sampler]") {
    const std::vector<float> l = logits_peaked();
    SamplerParams p;
    p.temperature = 1.0f;
    p.top_k = 1;
    Sampler k1(p);
    for (int i = 0; i < 20; ++i) CHECK(k1.sample(l.data(), 100) == 42);
    p.top_k = 0;
    p.top_p = 1e-6f;
    Sampler tp(p);
    for (int i = 0; i < 20; ++i) CHECK(tp.sample(l.data(), 100) == 42);
    p.top_p = 1.0f;
    p.min_p = 0.99f;
    Sampler mp(p);
    for (int i = 0; i < 20; ++i) CHECK(mp.sample(l.data(), 100) == 42);
}

TEST_CASE("temperature sampling follows the softmax", "[sampler]") {
    std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    Sampler s(temperature_only(1.0f, 3));
    std::map<int, int> count;
    const int n = 20000;
    for (int i = 0; i < n; ++i) count[s.sample(l.data(), 3)]++;
    CHECK(count[0] / double(n) == Approx(0.5).margin(0.02));
    CHECK(count[1] / double(n) == Approx(0.3).margin(0.02));
    CHECK(count[2] / double(n) == Approx(0.2).margin(0.02));
}

TEST_CASE("repetition penalty steers away from recent tokens", "[sampler]") {
    std::vector<float> l = {2.0f, 1.9f, 0.0f};
    SamplerParams p;
    p.temperature = 0;
    p.repeat_penalty = 1.5f;
    Sampler s(p);
    s.accept(0);
    CHECK(s.sample(l.data(), 3) == 1); // 2.0 / 1.5 < 1.9
}

TEST_CASE("sampling from the best logits picks what sampling from all of them picks", "[sampler]") {
    // What a GPU backend hands the sampler (Context::sample): the 64 best
    // logits, ranked by logit then id. With at least candidates_needed() of
    // them, every draw must equal the draw from the whole row.
    std::mt19937 rng(8);
    const int n = 3000;
    struct Case {
        float temperature;
        int top_k;
        float top_p, min_p, penalty;
    };
    const Case cases[] = {{0, 40, 0.95f, 0.05f, 1.0f},    {0, 0, 1.0f, 0.0f, 1.3f},  {0.8f, 40, 0.95f, 0.05f, 1.0f},
                          {1.5f, 20, 1.0f, 0.0f, 1.0f},  {1.0f, 8, 0.9f, 0.1f, 1.2f}, {0.7f, 1, 1.0f, 0.0f, 1.0f},
                          {2.0f, 40, 0.99f, 0.0f, 1.1f}};
    for (const Case &c : cases) {
        SamplerParams p;
        p.temperature = c.temperature;
        p.top_k = c.top_k;
        p.top_p = c.top_p;
        p.min_p = c.min_p;
        p.repeat_penalty = c.penalty;
        p.repeat_last_n = 16;
        p.seed = 5;
        Sampler all(p), best(p);
        std::normal_distribution<float> nd(0.0f, 2.0f);
        int used_best = 0;
        for (int step = 0; step < 60; ++step) {
            std::vector<float> l(static_cast<size_t>(n));
            for (float &v : l) v = std::round(nd(rng) * 4.0f) / 4.0f; // many ties
            std::vector<int32_t> order(static_cast<size_t>(n));
            for (int i = 0; i < n; ++i) order[size_t(i)] = i;
            std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
            std::vector<ternlm::TopLogit> top;
            for (int i = 0; i < 64; ++i) top.push_back({order[size_t(i)], l[size_t(order[size_t(i)])]});
            const int need = best.candidates_needed();
            REQUIRE(need == all.candidates_needed());
            const int32_t want = all.sample(l.data(), n);
            if (need == 0 || need > 64) {
                best.sample(l.data(), n); // keeps the two samplers' states equal
                continue;
            }
            ++used_best;
            INFO("temperature " << c.temperature << ", top-k " << c.top_k << ", penalty " << c.penalty << ", step " << step);
            REQUIRE(best.sample_top(top.data(), 64) == want);
        }
        CHECK(used_best > 30);
    }
}

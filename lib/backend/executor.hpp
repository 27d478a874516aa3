// What a context needs from a backend: a Step to describe each evaluation to.
#pragma once

#include <memory>
#include <vector>

#include "backend/backend.hpp"

namespace ternlm {

class KvCache;

namespace backend {

// Per-context execution state of a backend (scratch buffers, thread pool,
// recorded command buffers...). One step at a time.
class Executor {
public:
    virtual ~Executor() = default;
    virtual const char *name() const = 0;
    // Starts a step over tokens[0..n) at positions pos0..; the logits rows the
    // architecture outputs land in *logits (rows * n_vocab floats).
    virtual Step &begin(KvCache &kv, const int32_t *tokens, int n, int pos0, std::vector<float> *logits) = 0;
    // Completes the step (a GPU backend submits and waits here).
    virtual void finish() = 0;

    // A backend whose logits live on a device may leave a one-token step's
    // there: finish() then has not filled *logits, logits_pending() says so,
    // and fetch_logits() fills it (one more round trip), for callers that
    // want the whole row.
    virtual bool logits_pending() const { return false; }
    virtual void fetch_logits() {}
    // The largest logits of the last one-token step, best first (ties by
    // id), where the backend ranked them next to the logits (a GPU does, so
    // that sampling needs no read-back of the row); false where it did not.
    virtual bool top_logits(std::vector<TopLogit> &out) { (void)out; return false; }
};

} // namespace backend
} // namespace ternlm

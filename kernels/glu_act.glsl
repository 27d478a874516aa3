#ifndef TERNLM_GLU_ACT_GLSL
#define TERNLM_GLU_ACT_GLSL
// The FFN's gated activation act(x) * y, as every kernel that computes it
// rounds it (the CPU's formula; division and exp as exact.glsl gives them):
// act 1 silu, x / (1 + exp(-x)); 2 relu^2.
#include "exact.glsl"

float glu_act_mul(float x, float y, uint act) {
    if (act == 1u) return div_rn(x, 1.0 + exp_acc(-x)) * y;
    const float r = max(x, 0.0);
    return r * r * y;
}
#endif

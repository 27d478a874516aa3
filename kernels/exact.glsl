// Arithmetic rounded as IEEE rounds it, where GLSL allows less: its
// division may be off by a few ulp (NVIDIA's is, lavapipe's is not), and an
// ulp of 127 / max moves values that sit on a rounding boundary to the next
// 8-bit step, away from what the CPU (and llama.cpp) computes.

// a / b correctly rounded (but for quotients within ~1e-7 ulp of a
// midpoint): the residual r = a - q * b of the device's quotient q, exact by
// Dekker's product of 12-bit halves (a fused fma is not assumed: lavapipe's
// is not), corrects q.
float div_rn(float a, float b) {
    precise const float q = a / b;
    precise const float cq = 4097.0 * q, qh = cq - (cq - q), ql = q - qh;
    precise const float cb = 4097.0 * b, bh = cb - (cb - b), bl = b - bh;
    precise const float r = (((a - qh * bh) - qh * bl) - ql * bh) - ql * bl;
    precise const float c = q + r / b;
    return c;
}

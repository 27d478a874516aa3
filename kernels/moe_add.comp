#version 450
// x[r] += W[r][expert] * y[r] for every row r: one expert's output added
// to the residual with the row's routing weight (moe_route.comp's; 0 for
// rows that did not choose it, which adds nothing).
layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer Residual { float X[]; };
layout(std430, binding = 1) readonly buffer ExpertOut { float Y[]; };
layout(std430, binding = 2) readonly buffer Weights { float W[]; };
layout(push_constant) uniform Params { uint n, cols, n_expert, expert; } p;

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * 256u;
    if (i >= p.n) return;
    const float w = W[(i / p.cols) * p.n_expert + p.expert];
    if (w != 0.0) X[i] += w * Y[i];
}

#version 450
// Persistent workgroups running a chain of dependent stages in one
// dispatch, through counters instead of pipeline barriers: the probe of
// the scheme a one-dispatch decode step would use (tests/test_vulkan.cpp
// checks the order on every device and, asked, times a stage).
//
// Workgroups take tickets from one counter; ticket t is item t % n_items
// of stage t / n_items, so tickets hand out stages in order. An item of
// stage s first waits until stage s - 1 has counted all its items done.
// That never deadlocks, however many workgroups the device runs at once:
// every earlier ticket belongs to a workgroup that is already running
// (it took the ticket), and its item waits only on still earlier ones.
// No occupancy query, no assumption about the scheduler beyond running
// workgroups making progress.
//
// Item (s, i) writes V[s][i] = V[s-1][(7i + s) % n] + 1, so every value of
// stage s is s + 1 exactly when each stage saw the whole of the one before
// it; a mismatch is counted in S.errors. The workgroup that completes the
// last stage copies the count and the tickets taken to R (readable by the
// host).
#extension GL_GOOGLE_include_directive : require
layout(local_size_x = 64) in;

layout(std430, binding = 0) coherent volatile buffer Sync { uint ticket; uint errors; uint done[]; } S;
layout(std430, binding = 1) coherent buffer Values { uint V[]; };
layout(std430, binding = 2) writeonly buffer Result { uint R[]; };
layout(push_constant) uniform Params { uint n_stages, n_items; } p;

shared uint s_ticket;

void main() {
    const uint tid = gl_LocalInvocationID.x, total = p.n_stages * p.n_items;
    for (;;) {
        if (tid == 0u) s_ticket = atomicAdd(S.ticket, 1u);
        barrier();
        const uint t = s_ticket;
        barrier(); // s_ticket is rewritten next round
        if (t >= total) return;
        const uint s = t / p.n_items, i = t % p.n_items;
        if (tid == 0u) {
            if (s > 0u) {
                while (S.done[s - 1u] < p.n_items) {
                }
                memoryBarrierBuffer(); // the count before the values it publishes
            }
            const uint prev = s == 0u ? 0u : V[(s - 1u) * p.n_items + (7u * i + s) % p.n_items];
            if (prev != s) atomicAdd(S.errors, 1u);
            V[s * p.n_items + i] = prev + 1u;
            memoryBarrierBuffer(); // the value before the count
            if (atomicAdd(S.done[s], 1u) == p.n_items - 1u && s == p.n_stages - 1u) {
                memoryBarrierBuffer();
                R[0] = S.errors;
                R[1] = S.ticket;
            }
        }
    }
}

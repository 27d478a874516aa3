// What a kernel that chains (chain.glsl) declares before its buffers.
// Inputs that earlier stages of the same step wrote are read coherently: a
// chained kernel starts without the barrier that would have invalidated
// the SM's L1, which may still hold that buffer's lines from the last layer.
#define CHAIN_IN coherent
// The recorder's words, after every kernel's own (at most 116 bytes):
// the stage to wait for (1-based, 0: none), its workgroups, the stage this
// dispatch counts itself into (0: none).
#define CHAIN_PUSH layout(offset = 116) uint chain_wait; uint chain_wait_groups; uint chain_signal;

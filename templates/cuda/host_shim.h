/* symgrad's host shim: a `.cu` of symgrad's kernels compiled as host C++, unchanged
 * (`g++ -x c++ -include host_shim.h kernels.cu`), so that its index math and element math
 * run and are tested where there is no GPU (symgrad/backends/cuda/host.py drives it).
 *
 * A launch runs the grid's blocks one after another; within a block each CUDA thread is a
 * coroutine (ucontext) that runs until its next __syncthreads() or its end, so a round of
 * the scheduler is one barrier phase, and `__shared__` variables (function statics) are shared
 * by the block's threads as on the GPU. What it cannot show: threads really running at the
 * same time (races, memory ordering), warp-level behaviour (the kernels use no shuffles or
 * warp-synchronous code), CUDA's own math library (glibc's runs instead), shared-memory and
 * register limits, and the launcher's CuPy side -- benchmarks/gpu_check.py runs those on a GPU.
 */
#include <math.h>
#include <stdlib.h>
#include <ucontext.h>

#include <cstddef>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __launch_bounds__(threads)

struct sg_dim3 {
    unsigned int x, y, z;
};

static sg_dim3 blockIdx, threadIdx, blockDim, gridDim;

enum { SG_MAX_THREADS = 1024, SG_STACK = 1 << 16, SG_MAX_ARGUMENTS = 48 };

static ucontext_t sg_scheduler;
static ucontext_t sg_contexts[SG_MAX_THREADS];
static char *sg_stacks;
static int sg_finished[SG_MAX_THREADS];
static int sg_current;
static void *sg_function;
static int sg_count;
static void **sg_arguments;

static void __syncthreads(void)
{
    swapcontext(&sg_contexts[sg_current], &sg_scheduler);
}

/* A kernel of `count` pointer parameters called with `arguments` (every symgrad kernel takes
 * pointers only; the sizes are constants of its code). */
template <std::size_t... I>
static void sg_call_with(void **arguments, std::index_sequence<I...>)
{
    using Kernel = void (*)(decltype((void)I, (void *)nullptr)...);
    reinterpret_cast<Kernel>(sg_function)(arguments[I]...);
}

template <std::size_t... N>
static void sg_call(int count, void **arguments, std::index_sequence<N...>)
{
    ((count == (int)N ? sg_call_with(arguments, std::make_index_sequence<N>()) : void()), ...);
}

static void sg_thread_main(void)
{
    sg_call(sg_count, sg_arguments, std::make_index_sequence<SG_MAX_ARGUMENTS + 1>());
    sg_finished[sg_current] = 1;
}

/* Run `function` on `grid` blocks of `block` threads: 0, or 1 for bad sizes, 2 when some
 * threads of a block ended while others waited at a barrier (divergent __syncthreads). */
extern "C" int sg_host_launch(void *function, int count, void **arguments, int grid, int block)
{
    if (block < 1 || block > SG_MAX_THREADS || grid < 1 || count < 0 || count > SG_MAX_ARGUMENTS) {
        return 1;
    }
    if (sg_stacks == NULL) {
        sg_stacks = (char *)malloc((size_t)SG_MAX_THREADS * SG_STACK);
        if (sg_stacks == NULL) {
            return 1;
        }
    }
    sg_function = function;
    sg_count = count;
    sg_arguments = arguments;
    gridDim = {(unsigned int)grid, 1, 1};
    blockDim = {(unsigned int)block, 1, 1};
    for (int b = 0; b < grid; b++) {
        blockIdx = {(unsigned int)b, 0, 0};
        for (int t = 0; t < block; t++) {
            getcontext(&sg_contexts[t]);
            sg_contexts[t].uc_stack.ss_sp = sg_stacks + (size_t)t * SG_STACK;
            sg_contexts[t].uc_stack.ss_size = SG_STACK;
            sg_contexts[t].uc_link = &sg_scheduler;
            makecontext(&sg_contexts[t], sg_thread_main, 0);
            sg_finished[t] = 0;
        }
        for (;;) {  /* one barrier phase a round */
            int finished = 0;
            for (int t = 0; t < block; t++) {
                if (!sg_finished[t]) {
                    sg_current = t;
                    threadIdx = {(unsigned int)t, 0, 0};
                    swapcontext(&sg_scheduler, &sg_contexts[t]);
                }
                finished += sg_finished[t];
            }
            if (finished == block) {
                break;
            }
            if (finished != 0) {
                return 2;
            }
        }
    }
    return 0;
}

// The GPU as the rest of dptrain sees it, without CUDA headers: selection, memory, copies.
#pragma once
#include <cstddef>
#include <string>

namespace dpt {

// True when this build has the CUDA backend and a GPU is usable.
bool cuda_available();
int gpu_count();  // GPUs this process can see (0 without CUDA)
// Makes this process use its GPU (before any device allocation): see the definition for the
// rule. A clear error without a usable GPU.
void select_gpu(int local_rank, int local_size);
int current_gpu();  // -1 without CUDA
// The current GPU's UUID as hex ("" without CUDA): two processes on one node that print the same
// one share a GPU, whatever each one's CUDA_VISIBLE_DEVICES calls it.
std::string current_gpu_uuid();
// "CUDA runtime ..., driver ..., cuDNN ..., NCCL ..., N GPU(s)" lines; "" in a CPU-only build.
std::string gpu_library_versions();
float* device_alloc(size_t bytes);  // throws dpt::Error without CUDA or on failure
void device_free(void* p);
// Copies between host and device (direction from the flags); synchronous.
void copy_memory(void* dst, bool dst_device, const void* src, bool src_device, size_t bytes);
// Zeroes bytes at p, host or device memory.
void zero_memory(void* p, bool device, size_t bytes);
// Whether n floats in device memory hold no NaN or infinity (synchronous).
bool all_finite_on_device(const float* p, size_t n);

}  // namespace dpt

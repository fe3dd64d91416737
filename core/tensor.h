// Tensor: float32 storage with a shape on a device (host or GPU), owned or a view of memory owned
// elsewhere.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/shape.h"

namespace dpt {

// Where a tensor's memory lives. kCuda needs a build with DPT_WITH_CUDA and a GPU.
enum class Device { kCpu, kCuda };

class Tensor {
 public:
  Tensor() = default;
  // Allocates zeroed memory: 64-byte aligned on the host (oneDNN prefers it), or on the GPU.
  explicit Tensor(Shape shape, Device device = Device::kCpu)
      : shape_(std::move(shape)), device_(device) {
    const int64_t n = num_elements(shape_);
    if (device_ == Device::kCuda) {
      float* d = device_alloc(std::max<size_t>(size_t(n) * sizeof(float), 4));
      storage_.reset(d, [](float* q) { device_free(q); });
      data_ = d;
      return;
    }
    const size_t bytes = ((size_t(n) * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
    DPT_CHECK(p, "out of host memory allocating a tensor of shape " << shape_str(shape_));
    std::fill(p, p + n, 0.0f);
    storage_.reset(p, [](float* q) { std::free(q); });
    data_ = p;
  }
  // A view of memory someone else keeps alive (parameters inside the model's flat buffer).
  static Tensor view(float* data, Shape shape, Device device = Device::kCpu) {
    Tensor t;
    t.shape_ = std::move(shape);
    t.data_ = data;
    t.device_ = device;
    return t;
  }
  // Same storage, another shape with the same element count (Flatten).
  Tensor reshaped(Shape shape) const {
    DPT_ASSERT(num_elements(shape) == size());
    Tensor t = *this;
    t.shape_ = std::move(shape);
    return t;
  }

  const Shape& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_.at(i); }
  int64_t size() const { return num_elements(shape_); }
  bool empty() const { return data_ == nullptr; }
  float* data() { return data_; }
  const float* data() const { return data_; }
  Device device() const { return device_; }
  bool on_device() const { return device_ == Device::kCuda; }

 private:
  Shape shape_;
  std::shared_ptr<float> storage_;
  float* data_ = nullptr;
  Device device_ = Device::kCpu;
};

}  // namespace dpt

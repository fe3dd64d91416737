// Tensor: float32 storage with a shape, owned or viewing memory owned elsewhere (host for now).
#pragma once
#include <cstdlib>
#include <memory>

#include "models/core/error.h"
#include "models/tensor/shape.h"

namespace dpt {

// Where a tensor's memory lives. Only kCpu exists in a CPU build; kCuda is added by the GPU path.
enum class Device { kCpu };

class Tensor {
 public:
  Tensor() = default;
  // Allocates zeroed, 64-byte aligned host memory (oneDNN prefers aligned buffers).
  explicit Tensor(Shape shape) : shape_(std::move(shape)) {
    const int64_t n = num_elements(shape_);
    const size_t bytes = ((size_t(n) * sizeof(float) + 63) / 64) * 64;
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
    DPT_CHECK(p, "out of host memory allocating a tensor of shape " << shape_str(shape_));
    std::fill(p, p + n, 0.0f);
    storage_.reset(p, [](float* q) { std::free(q); });
    data_ = p;
  }
  // A view of memory someone else keeps alive (parameters inside the model's flat buffer).
  static Tensor view(float* data, Shape shape) {
    Tensor t;
    t.shape_ = std::move(shape);
    t.data_ = data;
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
  Device device() const { return Device::kCpu; }

 private:
  Shape shape_;
  std::shared_ptr<float> storage_;
  float* data_ = nullptr;
};

}  // namespace dpt

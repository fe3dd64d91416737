// Test harness: builds one layer from YAML with its own parameters, plus a numerical gradient
// checker.
#pragma once
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <map>
#include <memory>

#include "core/philox.h"
#include "models/layer_factory.h"

namespace dpt::testing {

// A layer with parameters allocated and filled with random values (not the initialiser's),
// so that biases and BatchNorm scales are non-trivial in the checks.
struct LayerUnderTest {
  std::unique_ptr<Layer> layer;
  Shape in, out;
  std::vector<Param> params;
  std::vector<std::vector<float>> values, grads;

  LayerUnderTest(const std::string& yaml, Shape in_shape, uint64_t seed = 7)
      : in(std::move(in_shape)) {
    std::map<std::string, int> names;
    layer = make_layer(YAML::Load(yaml), "test", names);
    out = layer->output_shape(in);
    const auto specs = layer->param_specs(in);
    values.resize(specs.size());
    grads.resize(specs.size());
    PhiloxStream rng(seed, 0, 0, 99);
    for (size_t k = 0; k < specs.size(); ++k) {
      values[k].resize(size_t(num_elements(specs[k].shape)));
      grads[k].assign(values[k].size(), 0.0f);
      for (auto& v : values[k]) v = rng.uniform() - 0.5f;
      if (specs[k].name == "moving_variance" || specs[k].name == "gamma")
        for (auto& v : values[k]) v = 0.5f + rng.uniform();
    }
    for (size_t k = 0; k < specs.size(); ++k)
      params.push_back(
          Param{specs[k], values[k].data(), specs[k].trainable ? grads[k].data() : nullptr});
    std::vector<Param*> ptrs;
    for (auto& p : params) ptrs.push_back(&p);
    layer->bind(ptrs);
  }
};

inline Tensor random_tensor(const Shape& s, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  Tensor t(s);
  PhiloxStream rng(seed, 0, 0, 5);
  for (int64_t i = 0; i < t.size(); ++i) t.data()[i] = lo + (hi - lo) * rng.uniform();
  return t;
}

// L = sum(y * r) for a fixed random r; so dL/dy = r. Compares backward's dx and parameter
// gradients with central differences computed in double, element by element.
inline void check_gradients(LayerUnderTest& t, int64_t batch, const StepContext& ctx,
                            double eps = 1e-3, double rtol = 2e-2, double atol = 2e-3) {
  const Shape xs = with_batch(batch, t.in), ys = with_batch(batch, t.out);
  Tensor x = random_tensor(xs, 11);
  Tensor y(ys), dx(xs);
  const Tensor r = random_tensor(ys, 13);
  auto loss = [&]() {
    t.layer->forward(x, y, ctx);
    double s = 0;
    for (int64_t i = 0; i < y.size(); ++i) s += double(y.data()[i]) * double(r.data()[i]);
    return s;
  };
  loss();
  t.layer->backward(x, y, r, &dx);
  auto compare = [&](float* v, const float* analytic, int64_t n, const std::string& what) {
    const int64_t stride = std::max<int64_t>(1, n / 300);  // bounded cost on big tensors
    int bad = 0;
    for (int64_t i = 0; i < n; i += stride) {
      const float keep = v[i];
      v[i] = keep + float(eps);
      const double up = loss();
      v[i] = keep - float(eps);
      const double down = loss();
      v[i] = keep;
      const double numeric = (up - down) / (2 * eps);
      const double a = analytic[i];
      if (std::fabs(numeric - a) > atol + rtol * std::fabs(numeric) && ++bad <= 5)
        ADD_FAILURE() << what << "[" << i << "]: analytic " << a << " vs numeric " << numeric;
    }
  };
  std::vector<std::vector<float>> analytic;
  for (auto& p : t.params)
    if (p.grad) analytic.emplace_back(p.grad, p.grad + p.size());
  const std::vector<float> dx_copy(dx.data(), dx.data() + dx.size());
  compare(x.data(), dx_copy.data(), x.size(), t.layer->type() + " dx");
  size_t a = 0;
  for (auto& p : t.params)
    if (p.grad)
      compare(p.value, analytic[a++].data(), p.size(), t.layer->type() + " " + p.spec.name);
}

}  // namespace dpt::testing

// Patch whitening of the first conv layer: patch covariance, LAPACK's dsyev, whitened filters.
#include "models/whitening.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "models/layers/conv2d.h"

extern "C" void dsyev_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda,
                       double* w, double* work, const int* lwork, int* info);

namespace dpt {

void symmetric_eigen(double* a, double* values, int n) {
  // A symmetric matrix reads the same row- or column-major; LAPACK is column-major.
  int info = 0, lwork = -1;
  double query = 0;
  dsyev_("V", "U", &n, a, &n, values, &query, &lwork, &info);
  lwork = int(query);
  std::vector<double> work(size_t(std::max(lwork, 1)));
  dsyev_("V", "U", &n, a, &n, values, work.data(), &lwork, &info);
  DPT_CHECK(info == 0, "LAPACK dsyev failed (info " << info << ") on a " << n << "x" << n
                                                    << " covariance matrix");
  // LAPACK wrote vector k into column k (column-major): a[k * n + j]; make it a[j * n + k].
  for (int i = 0; i < n; ++i)
    for (int j = i + 1; j < n; ++j) std::swap(a[i * n + j], a[j * n + i]);
}

std::string whiten_from_images(Model& model, const uint8_t* images, int64_t n, int64_t height,
                               int64_t width, int64_t channels, int64_t max_images,
                               double eps_rel) {
  int found = 0;
  for (size_t li = 0; li < model.layers().size(); ++li) {
    const Layer& l = *model.layers()[li];
    if (l.type() != "Conv2D") continue;
    const auto& conv = static_cast<const Conv2D&>(l);
    if (conv.kernel_initializer() != "whiten") continue;
    DPT_CHECK(li == 0, l.label() << ": kernel_initializer whiten needs the images as input; "
                                    "use it on the first layer only");
    ++found;
  }
  if (found == 0) return "";
  DPT_CHECK(n > 0, "kernel_initializer whiten: no training images to measure");
  auto* conv = static_cast<Conv2D*>(model.layers()[0].get());
  Param* kernel = nullptr;
  Param* bias = nullptr;
  for (size_t k = 0; k < model.params().size(); ++k) {
    if (model.param_layer(k) != 0) continue;
    Param& p = model.params()[k];
    (p.spec.name == "kernel" ? kernel : bias) = &p;
  }
  const int64_t kh = kernel->spec.shape[0], kw = kernel->spec.shape[1], cin = kernel->spec.shape[2],
                filters = kernel->spec.shape[3], dim = kh * kw * cin;
  DPT_CHECK(cin == channels, conv->label()
                                 << " sees " << cin << " channels, the images have " << channels);
  DPT_CHECK(filters % 2 == 0 && filters / 2 <= dim,
            conv->label() << ": kernel_initializer whiten makes pairs of +-eigenvectors of the "
                          << kh << "x" << kw << "x" << cin
                          << " patches: filters must be even and at most " << 2 * dim << ", not "
                          << filters);
  DPT_CHECK(kh <= height && kw <= width,
            conv->label() << ": kernel_initializer whiten measures the " << kh << "x" << kw
                          << " patches of the images, but they are " << height << "x" << width
                          << ": use a kernel at most as large as the image");
  // Moments of every kh x kw patch (stride 1, no padding) of the first images, in double.
  const int64_t images_used = std::min(n, max_images);
  std::vector<double> sum(size_t(dim), 0.0), outer(size_t(dim * dim), 0.0),
      patch(static_cast<size_t>(dim));
  int64_t count = 0;
  for (int64_t i = 0; i < images_used; ++i) {
    const uint8_t* img = images + i * height * width * channels;
    for (int64_t y = 0; y + kh <= height; ++y)
      for (int64_t x = 0; x + kw <= width; ++x) {
        for (int64_t dy = 0; dy < kh; ++dy)
          for (int64_t dx = 0; dx < kw; ++dx)
            for (int64_t c = 0; c < cin; ++c)
              patch[size_t((dy * kw + dx) * cin + c)] =
                  img[((y + dy) * width + (x + dx)) * channels + c] / 255.0;
        for (int64_t a = 0; a < dim; ++a) {
          sum[size_t(a)] += patch[size_t(a)];
          for (int64_t b = a; b < dim; ++b)
            outer[size_t(a * dim + b)] += patch[size_t(a)] * patch[size_t(b)];
        }
        ++count;
      }
  }
  std::vector<double> mean(static_cast<size_t>(dim)), cov(static_cast<size_t>(dim * dim));
  for (int64_t a = 0; a < dim; ++a) mean[size_t(a)] = sum[size_t(a)] / double(count);
  double trace = 0;
  for (int64_t a = 0; a < dim; ++a)
    for (int64_t b = a; b < dim; ++b) {
      const double v =
          outer[size_t(a * dim + b)] / double(count) - mean[size_t(a)] * mean[size_t(b)];
      cov[size_t(a * dim + b)] = cov[size_t(b * dim + a)] = v;
      if (a == b) trace += v;
    }
  std::vector<double> values(static_cast<size_t>(dim));
  symmetric_eigen(cov.data(), values.data(), int(dim));
  const double eps = eps_rel * trace / double(dim);
  float* w = kernel->host_value;  // HWIO: element (patch index a, filter o) at a * filters + o
  for (int64_t j = 0; j < filters / 2; ++j) {
    const int64_t e = dim - 1 - j;  // ascending values: the largest first
    const double scale = 1.0 / std::sqrt(std::max(values[size_t(e)], 0.0) + eps);
    double dot = 0;
    for (int64_t a = 0; a < dim; ++a) {
      const double v = cov[size_t(a * dim + e)] * scale;
      w[a * filters + j] = float(v);
      w[a * filters + j + filters / 2] = float(-v);
      dot += v * mean[size_t(a)];
    }
    if (bias) {
      bias->host_value[j] = float(-dot);
      bias->host_value[j + filters / 2] = float(dot);
    }
  }
  model.upload();
  return "Whitening: " + conv->label() + " initialised from the " + std::to_string(count) + " " +
         std::to_string(kh) + "x" + std::to_string(kw) + " patches of " +
         std::to_string(images_used) + " training images (eigenvalues " +
         std::to_string(values[size_t(dim - 1)]) + " .. " + std::to_string(values[0]) + ")";
}

}  // namespace dpt

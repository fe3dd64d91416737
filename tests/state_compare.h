// expect_identical_state: two checkpoints' parameters and Adam moments, compared bit for bit.
#pragma once
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <string>
#include <vector>

#include "data/hdf5_util.h"
#include "models/model.h"
#include "trainer/checkpoint.h"
#include "trainer/config.h"

namespace dpt::testing {

// Every /model and /optimizer dataset of two checkpoints, compared bit for bit.
inline void expect_identical_state(const std::string& a, const std::string& b) {
  const Config cfg = parse_config(YAML::Load(checkpoint_config(a)));
  Model m(cfg.model, cfg.name);
  h5::Handle fa = h5::open_file(a), fb = h5::open_file(b);
  int compared = 0;
  for (size_t k = 0; k < m.params().size(); ++k) {
    const std::string p =
        m.layers()[size_t(m.param_layer(k))]->name() + "/" + m.params()[k].spec.name;
    for (const char* group : {"/model/", "/optimizer/m/", "/optimizer/v/"}) {
      const std::string ds = std::string(group) + p;
      std::vector<float> va(size_t(m.params()[k].size())), vb(va.size());
      h5::read_f32(fa, ds, va.data(), a);
      h5::read_f32(fb, ds, vb.data(), b);
      EXPECT_EQ(0, std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)))
          << ds << " differs";
      ++compared;
    }
  }
  EXPECT_EQ(compared, 18);  // mnist_convnet: 6 parameters, each with two moments
  EXPECT_EQ(h5::get_attr_int(h5::Handle(H5Gopen2(fa, "/optimizer", H5P_DEFAULT), H5Gclose),
                             "iterations", a),
            h5::get_attr_int(h5::Handle(H5Gopen2(fb, "/optimizer", H5P_DEFAULT), H5Gclose),
                             "iterations", b));
}

}  // namespace dpt::testing

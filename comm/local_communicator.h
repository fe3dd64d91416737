// LocalCommunicator: the one-rank stub, so the same binary runs as a plain process.
#pragma once
#include <cstdlib>

#include "comm/communicator.h"

namespace dpt {

class LocalCommunicator : public Communicator {
 public:
  LocalCommunicator() {
    hosts_ = {this_host()};
    local_ranks_ = {0};
  }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  std::string backend() const override { return "local"; }
  std::unique_ptr<Work> allreduce_sum(float*, size_t) override {
    struct Done : Work {
      void wait() override {}
      bool test() override { return true; }
    };
    return std::make_unique<Done>();
  }
  void allreduce_sum_f64(double*, size_t) override {}
  void broadcast(void*, size_t, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

}  // namespace dpt

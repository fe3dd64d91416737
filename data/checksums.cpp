// Known MD5 checksums of decompressed raw files. MNIST's are the official bytes; Fashion-MNIST's
// were measured on Debian's dataset-fashion-mnist package; CIFAR-10's are those of this project's
// offline mirror (../shared/datasets, rebuilt from a JPEG copy, see its README).
#include "data/checksums.h"

#include <map>

namespace dpt {

std::string known_md5(const std::string& dataset, const std::string& file) {
  static const std::map<std::string, std::string> table = {
      {"mnist/train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"},
      {"mnist/train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"},
      {"mnist/t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"},
      {"mnist/t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"},
      {"fashion-mnist/train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"},
      {"fashion-mnist/train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"},
      {"fashion-mnist/t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"},
      {"fashion-mnist/t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"},
      {"cifar10/data_batch_1.bin", "d962229cd92159989a7227b3acbf9c13"},
      {"cifar10/data_batch_2.bin", "0f5f161f4af7cf20d65c77386588f7ad"},
      {"cifar10/data_batch_3.bin", "890168256c46674db38a2275e29e1c0f"},
      {"cifar10/data_batch_4.bin", "2a878ce41e2348ce6a000bcf4ed69ff8"},
      {"cifar10/data_batch_5.bin", "ea9f23a170bbfd5f3dc5c156cbf9afe5"},
      {"cifar10/test_batch.bin", "78e587ba3db901cd80dac811bd592c6d"},
  };
  const auto it = table.find(dataset + "/" + file);
  return it == table.end() ? "" : it->second;
}

}  // namespace dpt

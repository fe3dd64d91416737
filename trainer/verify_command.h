// `dptrain verify FILE...`: checks checkpoints and shards (checksums, structure) without training.
#pragma once
#include <string>
#include <vector>

namespace dpt {

// Prints one line per file ("ok: ..." or the error naming the first bad dataset); returns 0
// if every file is good, kExitError otherwise.
int run_verify(const std::vector<std::string>& files);

}  // namespace dpt

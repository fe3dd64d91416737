// agree(): one all-reduce on success; on failure, messages gathered to rank 0 and printed once.
#include "comm/agree.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

namespace dpt {

void report_error(const std::string& who, const std::string& message, const std::string& suffix) {
  const std::string line = "dptrain: " + who + ": error: " + message + suffix + "\n";
  if (::write(STDERR_FILENO, line.data(), line.size()) < 0) std::perror("dptrain");
}

namespace {

// "rank 1", "ranks 1,3", "ranks 1-3"; "ranks 2,3 on node2" once the job spans hosts.
std::string rank_list(const Communicator& comm, const std::vector<int>& r) {
  if (comm.spans_hosts()) return (r.size() == 1 ? "rank " : "ranks ") + comm.rank_list(r);
  if (r.size() == 1) return "rank " + std::to_string(r[0]);
  if (r.back() - r.front() + 1 == int(r.size()))
    return "ranks " + std::to_string(r.front()) + "-" + std::to_string(r.back());
  std::string s = "ranks ";
  for (size_t i = 0; i < r.size(); ++i) s += (i ? "," : "") + std::to_string(r[i]);
  return s;
}

}  // namespace

void check_same_on_all_ranks(Communicator& comm, const std::string& mine, const std::string& what,
                             const std::string& fix) {
  if (comm.size() == 1) return;
  uint64_t len = mine.size();
  comm.broadcast(&len, sizeof len, 0);
  std::string root(len, '\0');
  if (comm.rank() == 0) root = mine;
  if (len > 0) comm.broadcast(root.data(), len, 0);
  agree(comm, [&] {
    if (root == mine) return;
    // Name the first line that differs: "batch_size: 64" against "batch_size: 32".
    size_t a = 0, b = 0;
    int line = 1;
    for (;;) {
      const size_t ea = std::min(root.find('\n', a), root.size());
      const size_t eb = std::min(mine.find('\n', b), mine.size());
      const std::string la = root.substr(a, ea - a), lb = mine.substr(b, eb - b);
      if (la != lb || ea >= root.size() || eb >= mine.size())
        DPT_FAIL("this rank's " << what << " differs from rank 0's at line " << line
                                << ": rank 0 has '" << la << "', this rank has '" << lb << "'. "
                                << fix);
      a = ea + 1;
      b = eb + 1;
      ++line;
    }
  });
}

void agree(Communicator& comm, const std::function<void()>& phase) {
  std::string message;
  int code = 0;
  std::exception_ptr error;
  try {
    phase();
  } catch (const Error& e) {
    error = std::current_exception();
    message = e.what();
    code = e.exit_code();
  } catch (const std::exception& e) {
    error = std::make_exception_ptr(Error(explain_exception(e)));
    message = explain_exception(e);
    code = 1;
  }
  if (comm.size() == 1) {
    if (error) std::rethrow_exception(error);
    return;
  }
  double failed = error ? 1.0 : 0.0;
  comm.allreduce_sum_f64(&failed, 1);
  if (failed == 0) return;

  // Every rank learns every rank's (code, message): W small broadcasts, on the error path only.
  std::map<std::string, std::vector<int>> by_message;   // distinct message -> ranks
  std::vector<std::pair<int, std::string>> first_seen;  // (first rank, message), in rank order
  int agreed_code = 0;
  std::string first_message;
  for (int r = 0; r < comm.size(); ++r) {
    int64_t head[2] = {code, int64_t(message.size())};
    comm.broadcast(head, sizeof head, r);
    std::string m(size_t(head[1]), '\0');
    if (comm.rank() == r) m = message;
    if (head[1] > 0) comm.broadcast(m.data(), m.size(), r);
    if (m.empty()) continue;
    if (first_message.empty()) {
      first_message = m;
      agreed_code = int(head[0]);
    }
    auto& ranks = by_message[m];
    if (ranks.empty()) first_seen.emplace_back(r, m);
    ranks.push_back(r);
  }
  if (comm.rank() == 0)
    for (const auto& [r, m] : first_seen) {
      const auto& ranks = by_message[m];
      std::vector<int> others(ranks.begin() + 1, ranks.end());
      report_error(comm.rank_name(r), m,
                   others.empty() ? "" : " (also on " + rank_list(comm, others) + ")");
    }
  throw AgreedFailure(first_message, agreed_code);
}

}  // namespace dpt

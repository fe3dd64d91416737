// Host names per rank (Note [hosts]): rank names with their node, and the node -> ranks table.
#include <unistd.h>

#include <climits>
#include <utility>

#include "comm/communicator.h"

namespace dpt {

std::string this_host() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "unknown-host";
  return name;
}

bool Communicator::spans_hosts() const {
  for (const auto& h : hosts_)
    if (h != hosts_.front()) return true;
  return false;
}

std::string Communicator::rank_name(int rank) const {
  const std::string r = "rank " + std::to_string(rank);
  return spans_hosts() ? r + " (" + host_of(rank) + ")" : r;
}

namespace {
std::string joined(const std::vector<int>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}

// The ranks grouped by host, hosts in the order of their first rank.
std::vector<std::pair<std::string, std::vector<int>>> by_host(const Communicator& c,
                                                              const std::vector<int>& ranks) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (int r : ranks) {
    auto it = groups.begin();
    while (it != groups.end() && it->first != c.host_of(r)) ++it;
    if (it == groups.end()) it = groups.insert(groups.end(), {c.host_of(r), {}});
    it->second.push_back(r);
  }
  return groups;
}
}  // namespace

std::string Communicator::rank_list(const std::vector<int>& ranks) const {
  if (!spans_hosts()) return joined(ranks);
  const auto groups = by_host(*this, ranks);
  std::string s;
  for (size_t i = 0; i < groups.size(); ++i)
    s += (i ? " and " : "") + joined(groups[i].second) + " on " + groups[i].first;
  return s;
}

std::string Communicator::node_table() const {
  std::vector<int> all(hosts_.size());
  for (size_t r = 0; r < all.size(); ++r) all[r] = int(r);
  const auto nodes = by_host(*this, all);
  std::string s = std::to_string(hosts_.size()) + " rank(s) on " + std::to_string(nodes.size()) +
                  " node(s):";
  for (const auto& [host, ranks] : nodes) {
    std::vector<int> local;
    for (int r : ranks) local.push_back(local_rank_of(r));
    s += "\n  " + host + ": ranks " + joined(ranks) + ", local ranks " + joined(local);
  }
  return s;
}

}  // namespace dpt

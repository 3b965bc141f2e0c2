#include "datarax/train/process_agreement.h"

#include <algorithm>
#include <vector>

#include "datarax/device_discovery.h"
#include "datarax/process_collectives.h"
#include "datarax/train/train_config.h"
#include "train/file_hash.h"

namespace datarax::train {

namespace {

// Items as one text: each "name\0value\0", so that no value can pass for another item's.
std::string encode(const AgreementItems& items) {
  std::string out;
  for (const auto& [name, value] : items) out += name + '\0' + value + '\0';
  return out;
}

AgreementItems decode(const std::string& text) {
  AgreementItems out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t a = text.find('\0', at);
    if (a == std::string::npos) break;
    const std::size_t b = text.find('\0', a + 1);
    if (b == std::string::npos) break;
    out.emplace_back(text.substr(at, a - at), text.substr(a + 1, b - a - 1));
    at = b + 1;
  }
  return out;
}

std::string processes_text(const std::vector<int>& ps) {
  std::string s = ps.size() == 1 ? "process " : "processes ";
  for (std::size_t i = 0; i < ps.size(); ++i) s += (i ? ", " : "") + std::to_string(ps[i]);
  return s;
}

}  // namespace

void check_processes_agree(const AgreementItems& items, const std::string& what) {
  if (process_count() == 1) return;
  const std::vector<std::string> all = process_all_gather(encode(items), what);
  std::vector<AgreementItems> theirs;
  for (const std::string& t : all) theirs.push_back(decode(t));
  for (std::size_t i = 0; i < items.size(); ++i) {
    // The processes grouped by their value of item i, in the order the values first appear.
    std::vector<std::pair<std::string, std::vector<int>>> groups;
    for (std::size_t p = 0; p < theirs.size(); ++p) {
      const std::string value = i < theirs[p].size() && theirs[p][i].first == items[i].first ? theirs[p][i].second
                                                                                             : "(not compared)";
      auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == value; });
      if (it == groups.end()) groups.push_back({value, {static_cast<int>(p)}});
      else it->second.push_back(static_cast<int>(p));
    }
    if (groups.size() == 1) continue;
    std::string problem = "differs between processes: ";
    for (std::size_t g = 0; g < groups.size(); ++g)
      problem += (g ? "; " : "") + processes_text(groups[g].second) + (groups[g].second.size() == 1 ? " has " : " have ") +
                 groups[g].first;
    throw ConfigError(items[i].first, items[i].second,
                      problem + "; every process of a job must be given the same settings and inputs");
  }
}

std::string file_digest(const std::string& path) {
  try {
    const detail::FileHash h = detail::hash_file(path);
    return std::to_string(h.bytes) + " bytes, xxh3 " + detail::hex64(h.xxh3);
  } catch (const std::exception& e) {
    return std::string("cannot read: ") + e.what();
  }
}

}  // namespace datarax::train

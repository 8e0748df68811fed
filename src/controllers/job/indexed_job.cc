#include "controllers/job/indexed_job.h"

#include <algorithm>
#include <charconv>

#include "controllers/common/object_meta.h"

namespace skiff::controllers::job {
namespace {

bool parse_int(std::string_view s, int* out) {
  if (s.empty()) return false;
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || v < 0) return false;
  *out = v;
  return true;
}

}  // namespace

int completion_index(const json& pod) {
  auto value = common::annotation(pod, kJobCompletionIndexAnnotation);
  int index = 0;
  if (!value || !parse_int(*value, &index)) return kUnknownCompletionIndex;
  return index;
}

OrderedIntervals OrderedIntervals::parse(std::string_view text, int completions) {
  OrderedIntervals out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t comma = text.find(',', pos);
    std::string_view part =
        text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? text.size() : comma + 1;
    int first = 0;
    int last = 0;
    size_t dash = part.find('-');
    if (dash == std::string_view::npos) {
      if (!parse_int(part, &first)) continue;
      last = first;
    } else if (!parse_int(part.substr(0, dash), &first) ||
               !parse_int(part.substr(dash + 1), &last)) {
      continue;
    }
    if (first >= completions) break;
    last = std::min(last, completions - 1);
    if (last < first) continue;
    if (!out.intervals_.empty() && out.intervals_.back().second + 1 >= first) {
      out.intervals_.back().second = std::max(out.intervals_.back().second, last);
    } else {
      out.intervals_.emplace_back(first, last);
    }
  }
  return out;
}

OrderedIntervals OrderedIntervals::with_ordered_indexes(const std::vector<int>& sorted) const {
  std::vector<std::pair<int, int>> all = intervals_;
  for (int ix : sorted) all.emplace_back(ix, ix);
  std::sort(all.begin(), all.end());
  OrderedIntervals out;
  for (const auto& iv : all) {
    if (!out.intervals_.empty() && out.intervals_.back().second + 1 >= iv.first) {
      out.intervals_.back().second = std::max(out.intervals_.back().second, iv.second);
    } else {
      out.intervals_.push_back(iv);
    }
  }
  return out;
}

bool OrderedIntervals::has(int index) const {
  auto it = std::lower_bound(intervals_.begin(), intervals_.end(), index,
                             [](const std::pair<int, int>& iv, int ix) { return iv.second < ix; });
  return it != intervals_.end() && it->first <= index;
}

int64_t OrderedIntervals::total() const {
  int64_t n = 0;
  for (const auto& [first, last] : intervals_) n += last - first + 1;
  return n;
}

std::string OrderedIntervals::to_string() const {
  std::string out;
  for (const auto& [first, last] : intervals_) {
    if (!out.empty()) out += ',';
    out += std::to_string(first);
    if (last > first) out += (last == first + 1 ? "," : "-") + std::to_string(last);
  }
  return out;
}

}  // namespace skiff::controllers::job

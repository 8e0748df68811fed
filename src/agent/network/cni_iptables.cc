#include "agent/network/cni_iptables.h"

#include <algorithm>
#include <set>
#include <sstream>
#include <vector>

#include "agent/network/process.h"

namespace skiff::agent::network {
namespace {

constexpr std::chrono::milliseconds kIptablesTimeout{60000};

struct Rule {
  std::string chain;
  std::string spec;    // everything after "-A <chain> "
  std::string target;  // the -j target ("" if none)
};

struct Table {
  std::string name;
  std::vector<std::string> chains;  // declared chains, built-in ones included
  std::vector<Rule> rules;
};

bool has_chain(const Table& t, const std::string& chain) {
  return std::find(t.chains.begin(), t.chains.end(), chain) != t.chains.end();
}

std::string jump_target(const std::string& spec) {
  for (const char* flag : {" -j ", " -g "}) {
    std::string f = flag;
    size_t pos = (" " + spec).find(f);
    if (pos == std::string::npos) continue;
    size_t start = pos + f.size() - 1;  // index into spec (the added space shifts by one)
    size_t end = spec.find(' ', start);
    return spec.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }
  return "";
}

std::vector<Table> parse_save(const std::string& text) {
  std::vector<Table> tables;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      tables.push_back(Table{line.substr(1), {}, {}});
      continue;
    }
    if (tables.empty()) continue;
    Table& t = tables.back();
    if (line[0] == ':') {
      t.chains.push_back(line.substr(1, line.find(' ') - 1));
    } else if (line.rfind("-A ", 0) == 0) {
      size_t sp = line.find(' ', 3);
      if (sp == std::string::npos) continue;
      Rule r;
      r.chain = line.substr(3, sp - 3);
      r.spec = line.substr(sp + 1);
      r.target = jump_target(r.spec);
      t.rules.push_back(std::move(r));
    }
  }
  return tables;
}

bool is_per_container_chain(const std::string& chain) {
  return chain.rfind("CNI-", 0) == 0 && chain.rfind("CNI-HOSTPORT-", 0) != 0;
}

// The iptables-restore lines that delete `chains` from `t`: every rule elsewhere that jumps
// to one of them, then the chains themselves. "" when there is nothing to do.
std::string removal_script(const Table& t, const std::set<std::string>& chains,
                           const std::vector<const Rule*>& extra_deletes) {
  std::set<std::string> present;
  for (const auto& c : chains) {
    if (has_chain(t, c)) present.insert(c);
  }
  std::vector<std::string> lines;
  std::set<const Rule*> deleted;
  for (const Rule* r : extra_deletes) {
    if (present.count(r->chain) == 0 && deleted.insert(r).second) {
      lines.push_back("-D " + r->chain + " " + r->spec);
    }
  }
  for (const Rule& r : t.rules) {
    if (present.count(r.chain) == 0 && present.count(r.target) != 0 && deleted.insert(&r).second) {
      lines.push_back("-D " + r.chain + " " + r.spec);
    }
  }
  for (const auto& c : present) lines.push_back("-F " + c);
  for (const auto& c : present) lines.push_back("-X " + c);
  if (lines.empty()) return "";
  std::string script = "*" + t.name + "\n";
  for (const auto& l : lines) script += l + "\n";
  script += "COMMIT\n";
  return script;
}

Status iptables_restore(const std::string& script) {
  auto r = run_process({"iptables-restore", "--noflush", "-w"}, helper_environment({}), script,
                       kIptablesTimeout);
  if (!r.ok()) return r.status();
  if (r->exit_code != 0) {
    return Status::Internal("iptables-restore failed (exit " + std::to_string(r->exit_code) +
                            "): " + r->stderr_text + r->stdout_text + "\nscript:\n" + script);
  }
  return Status::Ok();
}

// Builds a script from the current rules and applies it; a concurrent change (a plugin
// deleting the same rule) makes the transaction fail as a whole, so it is rebuilt and retried.
template <typename BuildScript>
Status apply_with_retry(BuildScript build) {
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto saved = iptables_save();
    if (!saved.ok()) return saved.status();
    std::string script = build(parse_save(*saved));
    if (script.empty()) return Status::Ok();
    last = iptables_restore(script);
    if (last.ok()) return last;
  }
  return last;
}

}  // namespace

Result<std::string> iptables_save() {
  auto r = run_process({"iptables-save"}, helper_environment({}), "", kIptablesTimeout);
  if (!r.ok()) {
    if (r.status().code() == StatusCode::kUnavailable) return std::string();  // not installed
    return r.status();
  }
  if (r->exit_code != 0) {
    return Status::Internal("iptables-save failed (exit " + std::to_string(r->exit_code) +
                            "): " + r->stderr_text);
  }
  return std::move(r->stdout_text);
}

Status remove_cni_iptables_rules(const std::string& network_name, const std::string& container_id) {
  if (network_name.empty()) return Status::Invalid("remove_cni_iptables_rules: empty network");
  // iptables-save escapes the quotes inside a comment with a backslash.
  std::string tag = "name: \\\"" + network_name + "\\\" id: \\\"";
  if (!container_id.empty()) tag += container_id + "\\\"";
  return apply_with_retry([&](const std::vector<Table>& tables) {
    std::string script;
    for (const Table& t : tables) {
      std::set<std::string> chains;
      std::vector<const Rule*> deletes;
      for (const Rule& r : t.rules) {
        if (r.spec.find(tag) == std::string::npos) continue;
        if (is_per_container_chain(r.chain)) chains.insert(r.chain);
        if (is_per_container_chain(r.target)) chains.insert(r.target);
        deletes.push_back(&r);
      }
      script += removal_script(t, chains, deletes);
    }
    return script;
  });
}

Status remove_unused_hostport_chains() {
  static const char* const kShared[] = {"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK",
                                        "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SNAT"};
  return apply_with_retry([&](const std::vector<Table>& tables) {
    std::string script;
    for (const Table& t : tables) {
      if (t.name != "nat") continue;
      std::set<std::string> shared(std::begin(kShared), std::end(kShared));
      for (const Rule& r : t.rules) {
        // Still in use: a network forwards a port, or some other chain relies on them.
        if (r.chain == "CNI-HOSTPORT-DNAT") return std::string();
        bool builtin = r.chain == "PREROUTING" || r.chain == "OUTPUT" || r.chain == "POSTROUTING" ||
                       r.chain == "INPUT";
        if (!builtin && shared.count(r.chain) == 0 && shared.count(r.target) != 0) {
          return std::string();
        }
      }
      script += removal_script(t, shared, {});
    }
    return script;
  });
}

}  // namespace skiff::agent::network

// How the service proxy hands a ruleset to the kernel: behind an interface, so that tests can
// record what would be applied, and a real implementation that runs `nft -f -` (optionally
// inside a named network namespace, through `ip netns exec`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace skiff::proxy {

// Applies nftables scripts. Implementations are thread-safe.
class RulesetApplier {
 public:
  virtual ~RulesetApplier() = default;
  // Loads `script` as one transaction. Returns OK, or Internal with nft's complaint (nothing
  // of the script is applied then), or Unavailable when nft cannot be run at all.
  virtual Status apply(const std::string& script) = 0;
};

class NftApplier : public RulesetApplier {
 public:
  // nft_binary: the nft program (found on PATH when it has no '/'). netns: the name of a
  // network namespace under /var/run/netns to apply in; empty for the caller's own.
  NftApplier(std::string nft_binary, std::string netns);

  Status apply(const std::string& script) override;
  // `nft list table ip <table>`: the table as the kernel has it; NotFound when it does not
  // exist.
  Result<std::string> list_table(const std::string& table = "skiff") const;

 private:
  std::vector<std::string> command(const std::vector<std::string>& nft_args) const;

  const std::string nft_binary_;
  const std::string netns_;
};

// Output of a finished command.
struct CommandResult {
  int exit_code = -1;  // the exit status, or 128 + signal when killed by one
  std::string output;  // standard output and standard error, interleaved
};

// Runs argv[0] (searched on PATH) with `input` on its standard input and waits for it.
// Unavailable when it cannot be started. Safe to call from any thread: it does not change the
// process's signal dispositions and leaks no descriptors into other children.
Result<CommandResult> run_command(const std::vector<std::string>& argv, std::string_view input);

}  // namespace skiff::proxy

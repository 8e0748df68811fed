// The ServiceAccount controller (Kubernetes 1.32 pkg/controller/serviceaccount): every active
// namespace has the `default` ServiceAccount, created again if it is deleted.
//
// reconcile(namespace): when the namespace exists and is Active (not being deleted), creates
// each missing ServiceAccount of kServiceAccounts. AlreadyExists (a cache that lags) and
// Forbidden because the namespace started terminating are not errors.
//
// Thread-safe: reconcile may run on several workers at once (for different namespaces).
#pragma once

#include <memory>
#include <string>

#include "controllers/framework.h"

namespace skiff::controllers::serviceaccount {

// DefaultServiceAccountsControllerOptions: the accounts every namespace gets.
inline constexpr const char* kServiceAccounts[] = {"default"};

class ServiceAccountController : public Controller {
 public:
  explicit ServiceAccountController(ControllerContext& ctx);
  ~ServiceAccountController() override;

  std::string name() const override { return "serviceaccount"; }
  void setup(WorkQueue& queue) override;
  Status reconcile(const std::string& key) override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace skiff::controllers::serviceaccount

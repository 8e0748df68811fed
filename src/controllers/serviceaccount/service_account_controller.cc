#include "controllers/serviceaccount/service_account_controller.h"

#include <nlohmann/json.hpp>

#include "client/informer.h"
#include "controllers/common/object_meta.h"

namespace skiff::controllers::serviceaccount {

namespace {

namespace cc = ::skiff::controllers::common;
using client::ObjectPtr;
using nlohmann::json;

bool is_managed(const std::string& name) {
  for (const char* sa : kServiceAccounts) {
    if (name == sa) return true;
  }
  return false;
}

// The API server's refusal to create in a terminating namespace (NamespaceTerminatingCause).
bool namespace_terminating(const Status& s) {
  return s.code() == StatusCode::kForbidden &&
         s.message().find("because it is being terminated") != std::string::npos;
}

}  // namespace

struct ServiceAccountController::Impl {
  explicit Impl(ControllerContext& c) : ctx(c) {}

  void setup(WorkQueue& q) {
    queue = &q;
    namespaces = &ctx.informers.informer(client::resources::kNamespaces);
    accounts = &ctx.informers.informer(client::resources::kServiceAccounts);
    namespaces->add_handlers(client::InformerHandlers{
        [this](const ObjectPtr& ns) { queue->add(cc::name_of(*ns)); },
        [this](const ObjectPtr&, const ObjectPtr& ns) { queue->add(cc::name_of(*ns)); },
        nullptr});
    // serviceAccountDeleted: a managed account that goes is made again.
    accounts->add_handlers(client::InformerHandlers{
        nullptr, nullptr, [this](const ObjectPtr& sa) {
          if (is_managed(cc::name_of(*sa))) queue->add(cc::namespace_of(*sa));
        }});
  }

  Status reconcile(const std::string& name) {
    ObjectPtr ns = namespaces->get("", name);
    if (!ns || cc::being_deleted(*ns)) return Status::Ok();
    // A namespace is Active unless it is terminating (the phase may not be written yet).
    std::string phase = cc::string_at(*ns, {"status", "phase"});
    if (!phase.empty() && phase != "Active") return Status::Ok();
    for (const char* sa : kServiceAccounts) {
      if (accounts->get(name, sa)) continue;
      json obj = {{"apiVersion", "v1"},
                  {"kind", "ServiceAccount"},
                  {"metadata", {{"name", sa}, {"namespace", name}}}};
      auto created = ctx.client.create(client::resources::kServiceAccounts.in(name), obj);
      if (created.ok()) continue;
      const Status& s = created.status();
      if (s.code() == StatusCode::kAlreadyExists) continue;
      // The namespace started terminating (or went) meanwhile: nothing to do there.
      if (s.is_not_found() || namespace_terminating(s)) continue;
      return s;
    }
    return Status::Ok();
  }

  ControllerContext& ctx;
  // Set by setup().
  WorkQueue* queue = nullptr;
  client::Informer* namespaces = nullptr;
  client::Informer* accounts = nullptr;
};

ServiceAccountController::ServiceAccountController(ControllerContext& ctx)
    : impl_(std::make_unique<Impl>(ctx)) {}

ServiceAccountController::~ServiceAccountController() = default;

void ServiceAccountController::setup(WorkQueue& queue) { impl_->setup(queue); }

Status ServiceAccountController::reconcile(const std::string& key) {
  return impl_->reconcile(key);
}

}  // namespace skiff::controllers::serviceaccount

SKIFF_REGISTER_CONTROLLER(serviceaccount, [](skiff::controllers::ControllerContext& ctx) {
  return std::make_unique<skiff::controllers::serviceaccount::ServiceAccountController>(ctx);
});

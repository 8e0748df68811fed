#include "apiserver/namespace_lifecycle.h"

#include <nlohmann/json.hpp>
#include <set>

#include "api/patch/apply.h"

namespace skiff::apiserver {

using nlohmann::json;

void NamespaceLifecycle::start() {
  asio::co_spawn(ioc_, run(), asio::detached);
}

void NamespaceLifecycle::stop() {
  stopped_ = true;
  if (auto t = wake_) {
    asio::post(ioc_, [t] { t->cancel(); });
  }
}

asio::awaitable<void> NamespaceLifecycle::ensure_default_service_account(const std::string& ns) {
  std::string key = "/registry/core/serviceaccounts/" + ns + "/default";
  if (ctx_.cache->get(key)) co_return;
  std::string now = now_rfc3339();
  json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata",
              {{"name", "default"},
               {"namespace", ns},
               {"uid", new_uid()},
               {"creationTimestamp", now}}}};
  auto def = ctx_.registry->find("", "v1", "serviceaccounts");
  auto managed = api::update_managed_fields(nullptr, sa, def ? def->type : nullptr,
                                            "kube-controller-manager", "Update", "v1", now);
  if (managed.ok()) sa = std::move(managed.value());
  store::WriteOp op;
  op.kind = store::WriteOp::Kind::kCreate;
  op.key = key;
  op.value = std::make_shared<const std::string>(sa.dump());
  co_await store_write(*ctx_.store, std::move(op));  // AlreadyExists is fine
}

asio::awaitable<bool> NamespaceLifecycle::finalize(const std::string& ns) {
  bool remaining = false;
  std::string now = now_rfc3339();
  for (const auto& def : ctx_.registry->all()) {
    if (!def->namespaced() || !def->stored) continue;
    auto listed = ctx_.cache->list(resource_prefix(*def, ns), nullptr, 0);
    for (const auto& o : listed.items) {
      remaining = true;
      json obj = json::parse(*o->json, nullptr, false);
      store::WriteOp op;
      op.key = o->key;
      op.expected_mod_revision = o->mod_revision;
      json fin = obj.is_object() ? obj["metadata"].value("finalizers", json::array()) : json();
      if (fin.is_array() && !fin.empty()) {
        if (obj["metadata"].contains("deletionTimestamp")) continue;  // waiting for its owner
        obj["metadata"]["deletionTimestamp"] = now;
        obj["metadata"]["deletionGracePeriodSeconds"] = 0;
        obj["metadata"].erase("resourceVersion");
        op.kind = store::WriteOp::Kind::kUpdate;
        op.value = std::make_shared<const std::string>(obj.dump());
      } else {
        op.kind = store::WriteOp::Kind::kRemove;
      }
      co_await store_write(*ctx_.store, std::move(op));
    }
  }
  if (remaining) co_return false;
  std::string key = "/registry/core/namespaces/" + ns;
  ObjectPtr cur = ctx_.cache->get(key);
  if (!cur) co_return true;
  json obj = json::parse(*cur->json, nullptr, false);
  if (!obj.is_object()) co_return false;
  json& spec_fin = obj["spec"]["finalizers"];
  if (spec_fin.is_array()) {
    json kept = json::array();
    for (const auto& f : spec_fin) {
      if (f != "kubernetes") kept.push_back(f);
    }
    spec_fin = kept;
  }
  json meta_fin = obj["metadata"].value("finalizers", json::array());
  store::WriteOp op;
  op.key = key;
  op.expected_mod_revision = cur->mod_revision;
  if ((spec_fin.is_null() || spec_fin.empty()) && (!meta_fin.is_array() || meta_fin.empty())) {
    op.kind = store::WriteOp::Kind::kRemove;
  } else {
    obj["metadata"].erase("resourceVersion");
    op.kind = store::WriteOp::Kind::kUpdate;
    op.value = std::make_shared<const std::string>(obj.dump());
  }
  bool removing = op.kind == store::WriteOp::Kind::kRemove;
  auto res = co_await store_write(*ctx_.store, std::move(op));
  co_return res.ok() && removing;
}

asio::awaitable<void> NamespaceLifecycle::run() {
  auto ex = co_await asio::this_coro::executor;
  wake_ = std::make_shared<asio::steady_timer>(ex);
  std::weak_ptr<asio::steady_timer> weak = wake_;
  auto notify = [weak, ex] {
    asio::post(ex, [weak] {
      if (auto t = weak.lock()) t->cancel();
    });
  };
  auto w = ctx_.cache->watch("/registry/core/namespaces/", nullptr, -1, true, notify);
  if (!w.ok()) co_return;
  std::shared_ptr<Watcher> watcher = *w;
  std::set<std::string> terminating;
  while (!stopped_) {
    std::vector<Delivery> batch = watcher->take();
    for (const Delivery& d : batch) {
      const ObjectPtr& o = d.object();
      if (d.as == EventType::kDeleted) {
        terminating.erase(o->name);
        continue;
      }
      json obj = json::parse(*o->json, nullptr, false);
      if (!obj.is_object()) continue;
      if (obj["metadata"].contains("deletionTimestamp")) {
        terminating.insert(o->name);
      } else {
        co_await ensure_default_service_account(o->name);
      }
    }
    for (auto it = terminating.begin(); it != terminating.end();) {
      bool gone = co_await finalize(*it);
      it = gone ? terminating.erase(it) : std::next(it);
    }
    if (watcher->overflowed()) break;
    // Events that arrived while this loop was suspended above already fired their wake-up;
    // take them before sleeping.
    if (!batch.empty()) continue;
    wake_->expires_after(terminating.empty() ? std::chrono::hours(24) : std::chrono::seconds(1));
    boost::system::error_code ec;
    co_await wake_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  ctx_.cache->unwatch(watcher);
}

}  // namespace skiff::apiserver

#include "store/store.h"

#include <future>

namespace skiff::store {

Result<WriteResult> Store::write_sync(WriteOp op) {
  std::promise<Result<WriteResult>> done;
  auto fut = done.get_future();
  write(std::move(op), [&done](Result<WriteResult> r) { done.set_value(std::move(r)); });
  return fut.get();
}

Result<WriteResult> Store::create(std::string key, std::string value) {
  WriteOp op;
  op.kind = WriteOp::Kind::kCreate;
  op.key = std::move(key);
  op.value = std::make_shared<const std::string>(std::move(value));
  return write_sync(std::move(op));
}

Result<WriteResult> Store::update(std::string key, std::string value, int64_t expected) {
  WriteOp op;
  op.kind = WriteOp::Kind::kUpdate;
  op.key = std::move(key);
  op.value = std::make_shared<const std::string>(std::move(value));
  op.expected_mod_revision = expected;
  return write_sync(std::move(op));
}

Result<WriteResult> Store::remove(std::string key, int64_t expected) {
  WriteOp op;
  op.kind = WriteOp::Kind::kRemove;
  op.key = std::move(key);
  op.expected_mod_revision = expected;
  return write_sync(std::move(op));
}

}  // namespace skiff::store

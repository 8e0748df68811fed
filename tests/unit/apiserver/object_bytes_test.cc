#include "apiserver/object_bytes.h"

#include <gtest/gtest.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

namespace skiff::apiserver {
namespace {

using nlohmann::json;

// What the watch cache computed before it read bytes directly: parse, stamp, dump.
std::string stamped_by_dom(const std::string& bytes, int64_t revision) {
  json obj = json::parse(bytes);
  obj["metadata"]["resourceVersion"] = std::to_string(revision);
  return obj.dump();
}

// The summary as a DOM computes it: top-level scalars and scalar members of top-level objects.
json summary_by_dom(const json& obj) {
  json out = json::object();
  for (const auto& [k, v] : obj.items()) {
    if (v.is_array()) continue;
    if (!v.is_object()) {
      out[k] = v;
      continue;
    }
    out[k] = json::object();
    for (const auto& [k2, v2] : v.items()) {
      if (!v2.is_structured()) out[k][k2] = v2;
    }
  }
  return out;
}

void expect_same_as_dom(const std::string& bytes, int64_t revision) {
  ObjectBytesInfo info;
  ASSERT_TRUE(read_canonical_object(bytes, &info)) << bytes;
  EXPECT_EQ(with_resource_version(bytes, info, revision), stamped_by_dom(bytes, revision));
  json obj = json::parse(bytes);
  const json& meta = obj["metadata"];
  EXPECT_EQ(info.name,
            meta.value("name", json()).is_string() ? meta["name"].get<std::string>() : "");
  EXPECT_EQ(info.ns, meta.value("namespace", json()).is_string()
                         ? meta["namespace"].get<std::string>()
                         : "");
  EXPECT_EQ(info.deleting,
            meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null());
  std::vector<std::pair<std::string, std::string>> labels;
  if (meta.contains("labels") && meta["labels"].is_object()) {
    for (const auto& [k, v] : meta["labels"].items()) {
      if (v.is_string()) labels.emplace_back(k, v.get<std::string>());
    }
  }
  EXPECT_EQ(info.labels, labels);
  // The summary leaves the revision to the caller, who knows it.
  json summary = info.summary;
  summary["metadata"]["resourceVersion"] = std::to_string(revision);
  EXPECT_EQ(summary, summary_by_dom(json::parse(stamped_by_dom(bytes, revision))));
}

TEST(ObjectBytesTest, StampsResourceVersionExactlyAsParseAndDump) {
  json pod = json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"p","namespace":"ns","uid":"u","labels":{"app":"a","n":1},
                "managedFields":[{"manager":"m","fieldsV1":{"f:spec":{}}}]},
    "spec":{"nodeName":"n1","containers":[{"name":"c"}],"priority":-5,"hostNetwork":true},
    "status":{"phase":"Pending","podIP":null}})");
  expect_same_as_dom(pod.dump(), 42);
  // resourceVersion already there, of any type, is replaced.
  pod["metadata"]["resourceVersion"] = "7";
  expect_same_as_dom(pod.dump(), 43);
  pod["metadata"]["resourceVersion"] = json::array({1, 2});
  expect_same_as_dom(pod.dump(), 44);
  // Every key before or after "resourceVersion", or none at all.
  expect_same_as_dom(R"({"metadata":{}})", 1);
  expect_same_as_dom(R"({"metadata":{"a":1}})", 1);
  expect_same_as_dom(R"({"metadata":{"z":1}})", 1);
  expect_same_as_dom(R"({"a":[],"metadata":{"deletionTimestamp":"t","name":"x\"y\n\u001f"}})",
                     9223372036854775807);
}

TEST(ObjectBytesTest, RefusesBytesADumpWouldChange) {
  ObjectBytesInfo info;
  for (const char* bytes : {
           R"({"metadata": {}})",                          // whitespace
           R"({"metadata":{"b":1,"a":2}})",                // unsorted keys
           R"({"metadata":{"a":1,"a":2}})",                // repeated key
           R"({"metadata":{},"a":1.5})",                   // a float
           R"({"metadata":{},"a":-0})",                    // negative zero
           R"({"metadata":{},"a":18446744073709551616})",  // beyond uint64
           R"({"metadata":{},"a":"\/"})",                  // an escape dump does not write
           R"({"metadata":{},"a":"\u0041"})",              // likewise
           R"({"metadata":{},"a":"\u000a"})",              // likewise (dump writes \n)
           R"({"metadata":{"a\u0041":1}})",                // an escaped key
           "{\"metadata\":{},\"a\":\"\xff\"}",             // invalid UTF-8
           R"({"metadata":[]})",                           // metadata not an object
           R"({"kind":"x"})",                              // no metadata
           R"([{"metadata":{}}])",                         // not an object
           R"({"metadata":{}} )",                          // trailing bytes
           R"({"metadata":{})",                            // truncated
       }) {
    EXPECT_FALSE(read_canonical_object(bytes, &info)) << bytes;
  }
}

// Random objects, dumped as the server dumps them, read the same as through a DOM.
TEST(ObjectBytesTest, RandomCanonicalObjectsMatchTheDom) {
  std::mt19937 rng(1234);
  // Keys as objects have them (managedFields keys hold quotes); values with more escapes.
  const char* words[] = {"a",
                         "name",
                         "namespace",
                         "labels",
                         "resourceVersion",
                         "spec",
                         "z",
                         "deletionTimestamp",
                         "é",
                         "status",
                         "nodeName",
                         "k:{\"name\":\"app\"}",
                         "k\"",
                         "k!",
                         "k#",
                         "k\\",
                         "k\n"};
  auto word = [&] { return std::string(words[rng() % std::size(words)]); };
  auto text = [&] { return rng() % 4 == 0 ? std::string("q\"\\\n\t\x01/") : word(); };
  std::function<json(int)> value = [&](int depth) -> json {
    switch (rng() % (depth > 3 ? 5 : 7)) {
      case 0:
        return text();
      case 1:
        return static_cast<int64_t>(rng()) - (1LL << 31);
      case 2:
        return rng() % 2 == 0;
      case 3:
        return nullptr;
      case 4:
        return static_cast<uint64_t>(rng()) << 32;
      case 5: {
        json o = json::object();
        for (int i = rng() % 4; i > 0; --i) o[word()] = value(depth + 1);
        return o;
      }
      default: {
        json a = json::array();
        for (int i = rng() % 3; i > 0; --i) a.push_back(value(depth + 1));
        return a;
      }
    }
  };
  for (int i = 0; i < 2000; ++i) {
    json obj = json::object();
    for (int k = rng() % 5; k > 0; --k) obj[word()] = value(1);
    json meta = json::object();
    for (int k = rng() % 6; k > 0; --k) meta[word()] = value(2);
    if (rng() % 2 == 0) {
      meta["labels"] = json::object();
      for (int k = rng() % 3; k > 0; --k) meta["labels"][word()] = value(3);
    }
    obj["metadata"] = meta;
    expect_same_as_dom(obj.dump(), 1 + rng() % 100000);
    if (HasFailure()) break;
  }
}

// pods/binding as the API server does it through the DOM.
std::string bound_by_dom(const std::string& bytes, const std::string& node,
                         const std::string& now) {
  json pod = json::parse(bytes);
  pod["spec"]["nodeName"] = node;
  json& conds = pod["status"]["conditions"];
  if (!conds.is_array()) conds = json::array();
  bool found = false;
  for (auto& cond : conds) {
    if (cond.value("type", "") == "PodScheduled") {
      cond["status"] = "True";
      cond["lastTransitionTime"] = now;
      cond.erase("reason");
      cond.erase("message");
      found = true;
    }
  }
  if (!found) {
    conds.push_back({{"type", "PodScheduled"},
                     {"status", "True"},
                     {"lastProbeTime", nullptr},
                     {"lastTransitionTime", now}});
  }
  pod["metadata"].erase("resourceVersion");
  pod["metadata"].erase("selfLink");
  return pod.dump();
}

void expect_bound_as_dom(const json& pod) {
  std::string bytes = pod.dump();
  BindResult r = bind_pod_bytes(bytes, "node-\"1\"", "2024-05-06T07:08:09Z");
  ASSERT_EQ(r.kind, BindResult::Kind::kBound) << bytes;
  EXPECT_EQ(r.bytes, bound_by_dom(bytes, "node-\"1\"", "2024-05-06T07:08:09Z")) << bytes;
}

TEST(ObjectBytesTest, BindsPodsExactlyAsTheDom) {
  json pod = json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"p","namespace":"ns","resourceVersion":"12","uid":"u",
                "managedFields":[{"fieldsV1":{"f:spec":{"k:{\"name\":\"app\"}":{}}}}]},
    "spec":{"containers":[{"name":"app"}],"schedulerName":"s"},
    "status":{"phase":"Pending","qosClass":"Burstable"}})");
  expect_bound_as_dom(pod);
  pod["spec"]["nodeName"] = "";
  pod["metadata"]["selfLink"] = "/api/v1/x";
  expect_bound_as_dom(pod);
  pod["status"]["conditions"] = json::array({{{"type", "Ready"}, {"status", "False"}},
                                             {{"type", "PodScheduled"},
                                              {"status", "False"},
                                              {"reason", "Unschedulable"},
                                              {"message", "0/3 nodes"},
                                              {"lastProbeTime", nullptr}},
                                             {{"status", "x"}},
                                             {{"type", "PodScheduled"}, {"status", "Unknown"}}});
  expect_bound_as_dom(pod);
  pod["status"]["conditions"] = "not a list";
  expect_bound_as_dom(pod);
  pod["status"]["conditions"] = json::array();
  expect_bound_as_dom(pod);
  pod.erase("status");
  expect_bound_as_dom(pod);
  pod.erase("spec");
  pod["metadata"] = json::object();
  expect_bound_as_dom(pod);
}

TEST(ObjectBytesTest, BindingReportsTheNodeAPodIsOn) {
  json pod = {{"metadata", {{"name", "p"}}}, {"spec", {{"nodeName", "n\"7"}}}};
  BindResult r = bind_pod_bytes(pod.dump(), "other", "now");
  EXPECT_EQ(r.kind, BindResult::Kind::kAssigned);
  EXPECT_EQ(r.assigned, "n\"7");
}

TEST(ObjectBytesTest, BindingLeavesOddPodsToTheDom) {
  for (const char* bytes : {
           R"({"metadata":{},"spec":{"nodeName":null}})",
           R"({"metadata":{},"spec":[]})",
           R"({"metadata":{},"status":null})",
           R"({"metadata":{},"status":{"conditions":[1]}})",
           R"({"metadata":{},"status":{"conditions":[{"type":5}]}})",
           R"({"metadata":{},"status":{"conditions":[]}} )",
           R"({"metadata":7})",
           R"({"spec":{}})",
       }) {
    EXPECT_EQ(bind_pod_bytes(bytes, "n", "now").kind, BindResult::Kind::kUnhandled) << bytes;
  }
}

}  // namespace
}  // namespace skiff::apiserver

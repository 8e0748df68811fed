#include "apiserver/request_info.h"

#include <gtest/gtest.h>

namespace skiff::apiserver {
namespace {

RequestInfo parse(const char* method, const char* path, bool watch = false) {
  RequestInfo ri;
  EXPECT_TRUE(parse_request_info(method, path, watch, &ri)) << path;
  return ri;
}

TEST(RequestInfoTest, NamespacedResourcePaths) {
  RequestInfo ri = parse("GET", "/apis/apps/v1/namespaces/shop/deployments/web/scale");
  EXPECT_TRUE(ri.is_resource);
  EXPECT_EQ(ri.group, "apps");
  EXPECT_EQ(ri.version, "v1");
  EXPECT_EQ(ri.ns, "shop");
  EXPECT_EQ(ri.resource, "deployments");
  EXPECT_EQ(ri.name, "web");
  EXPECT_EQ(ri.subresource, "scale");
  EXPECT_EQ(ri.verb, "get");
}

TEST(RequestInfoTest, VerbsFollowMethodAndName) {
  EXPECT_EQ(parse("GET", "/api/v1/namespaces/a/pods").verb, "list");
  EXPECT_EQ(parse("GET", "/api/v1/namespaces/a/pods", true).verb, "watch");
  EXPECT_EQ(parse("GET", "/api/v1/watch/namespaces/a/pods").verb, "watch");
  EXPECT_EQ(parse("POST", "/api/v1/namespaces/a/pods").verb, "create");
  EXPECT_EQ(parse("PUT", "/api/v1/namespaces/a/pods/p").verb, "update");
  EXPECT_EQ(parse("PATCH", "/api/v1/namespaces/a/pods/p").verb, "patch");
  EXPECT_EQ(parse("DELETE", "/api/v1/namespaces/a/pods/p").verb, "delete");
  EXPECT_EQ(parse("DELETE", "/api/v1/namespaces/a/pods").verb, "deletecollection");
}

TEST(RequestInfoTest, NamespacesAreClusterScopedWithSubresources) {
  RequestInfo ri = parse("PUT", "/api/v1/namespaces/doomed/finalize");
  EXPECT_EQ(ri.resource, "namespaces");
  EXPECT_EQ(ri.name, "doomed");
  EXPECT_EQ(ri.subresource, "finalize");
  EXPECT_EQ(ri.ns, "");
  ri = parse("GET", "/api/v1/namespaces/doomed");
  EXPECT_EQ(ri.resource, "namespaces");
  EXPECT_EQ(ri.name, "doomed");
  EXPECT_EQ(ri.ns, "");
}

TEST(RequestInfoTest, AllNamespacesAndClusterScopedLists) {
  RequestInfo ri = parse("GET", "/api/v1/pods");
  EXPECT_EQ(ri.resource, "pods");
  EXPECT_EQ(ri.ns, "");
  ri = parse("GET", "/api/v1/nodes/n1");
  EXPECT_EQ(ri.resource, "nodes");
  EXPECT_EQ(ri.name, "n1");
}

TEST(RequestInfoTest, DiscoveryPathsAreNotResources) {
  EXPECT_FALSE(parse("GET", "/api").is_resource);
  EXPECT_FALSE(parse("GET", "/apis").is_resource);
  EXPECT_FALSE(parse("GET", "/apis/apps").is_resource);
  EXPECT_FALSE(parse("GET", "/apis/apps/v1").is_resource);
  RequestInfo ri;
  EXPECT_FALSE(parse_request_info("GET", "/version", false, &ri));
}

}  // namespace
}  // namespace skiff::apiserver

#include "api/schema/proto_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace skiff::api {
namespace {

// Parses one source held by the test; the string must outlive the schema.
Status parse(std::string& text, Schema& schema, std::vector<SchemaKind>* kinds = nullptr) {
  std::vector<SchemaKind> ignored;
  SchemaSource source{"test.proto", text.data(), text.size()};
  return parse_schema_sources({&source, 1}, schema, kinds ? *kinds : ignored);
}

constexpr const char* kTypeMeta = R"(
package k8s.io.apimachinery.pkg.apis.meta.v1;
message TypeMeta {
  optional string kind = 1;
  optional string apiVersion = 2;
}
message Time {
  optional int64 seconds = 1;
}
)";

TEST(ProtoParserTest, FormatsDescriptionsLikeKubernetesOpenApi) {
  std::string text = std::string(kTypeMeta) + R"(
package k8s.io.api.test.v1;

// Widget is a thing.
// It has two lines.
//
// A second paragraph:
// 	indented line
// TODO: not part of the description
// +k8s:marker
message Widget {
  // size in bytes.
  // ---
  // Everything after the dashes is dropped.
  // +optional
  optional int64 size = 1;
}
)";
  Schema schema;
  ASSERT_TRUE(parse(text, schema).ok());
  const TypeDef* widget = schema.type("io.k8s.api.test.v1.Widget");
  ASSERT_NE(widget, nullptr);
  EXPECT_EQ(widget->description,
            "Widget is a thing. It has two lines.\n\nA second paragraph:\n\tindented line");
  ASSERT_NE(widget->field("size"), nullptr);
  EXPECT_EQ(widget->field("size")->description, "size in bytes.");
  EXPECT_EQ(widget->field("size")->kind, ValueKind::kInt64);
  EXPECT_TRUE(widget->field("size")->optional);
}

TEST(ProtoParserTest, ReadsMarkersShapesAndKinds) {
  std::string text = std::string(kTypeMeta) + R"(
// +groupName=widgets.example.com
package k8s.io.api.widgets.v1;

// A named slice.
// +protobuf.nullable=true
message Names {
  repeated string items = 1;
}

message Part {
  optional string name = 1;
}

// +typeMeta
message Widget {
  // +listType=map
  // +listMapKey=name
  // +listMapKey=kind
  // +patchMergeKey=name
  // +patchStrategy=merge
  repeated Part parts = 1;

  map<string, bytes> blobs = 2;

  // +inline
  optional Part part = 3;

  optional .k8s.io.apimachinery.pkg.apis.meta.v1.Time created = 4;

  // +json=$ref
  optional string ref = 5;

  map<string, Names> extra = 6;

  optional Names verbs = 7;

  // +required
  optional string owner = 8;

  optional double ratio = 9;
}
)";
  Schema schema;
  std::vector<SchemaKind> kinds;
  Status s = parse(text, schema, &kinds);
  ASSERT_TRUE(s.ok()) << s.to_string();
  ASSERT_EQ(kinds.size(), 1u);
  EXPECT_EQ(kinds[0].group, "widgets.example.com");
  EXPECT_EQ(kinds[0].version, "v1");
  EXPECT_EQ(kinds[0].kind, "Widget");
  const TypeDef* w = kinds[0].type;
  ASSERT_EQ(w, schema.type("io.k8s.api.widgets.v1.Widget"));

  const FieldDef* parts = w->field("parts");
  ASSERT_NE(parts, nullptr);
  EXPECT_EQ(parts->shape, Shape::kList);
  EXPECT_EQ(parts->list_type, "map");
  EXPECT_EQ(parts->list_map_keys, (std::vector<std::string>{"name", "kind"}));
  EXPECT_EQ(parts->patch_merge_key, "name");
  EXPECT_EQ(parts->patch_strategy, "merge");
  EXPECT_FALSE(parts->optional);

  EXPECT_EQ(w->field("blobs")->shape, Shape::kMap);
  EXPECT_EQ(w->field("blobs")->kind, ValueKind::kBytes);
  EXPECT_EQ(w->field("name"), w->field_by_number(3)->type->field("name"));  // inline
  EXPECT_EQ(w->field("created")->kind, ValueKind::kTime);
  EXPECT_NE(w->field("$ref"), nullptr);
  EXPECT_EQ(w->field("ref"), nullptr);
  EXPECT_TRUE(w->field("extra")->list_wrapper);
  EXPECT_EQ(w->field("extra")->kind, ValueKind::kAny);
  EXPECT_EQ(w->field("verbs")->shape, Shape::kList);
  EXPECT_EQ(w->field("verbs")->kind, ValueKind::kString);
  EXPECT_FALSE(w->field("owner")->optional);
  EXPECT_EQ(w->field("ratio")->kind, ValueKind::kDouble);
  EXPECT_NE(w->field("apiVersion"), nullptr);
  EXPECT_EQ(w->field_by_number(0), nullptr);
}

TEST(ProtoParserTest, RejectsUnknownReference) {
  std::string text = "package k8s.io.api.x.v1;\nmessage A {\n  optional B b = 1;\n}\n";
  Schema schema;
  Status s = parse(text, schema);
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("test.proto:3: unknown message k8s.io.api.x.v1.B"), std::string::npos)
      << s.message();
}

TEST(ProtoParserTest, RejectsMalformedInput) {
  const std::vector<std::string> bad = {
      "message A {\n}\n",                                              // no package
      "package p;\nmessage A {\n  optional string a = x;\n}\n",         // bad number
      "package p;\nmessage A {\n  optional string a = 1\n}\n",          // no ';'
      "package p;\nmessage A {\n  weird string a = 1;\n}\n",            // bad label
      "package p;\nmessage A {\n  map<int32, string> a = 1;\n}\n",      // non-string key
      "package p;\nmessage A {\n  optional string a = 1;\n",            // unclosed
      "package p;\nmessage A {\n}\nmessage A {\n}\n",                   // duplicate
      "package p;\nmessage A {\n  message B {\n  }\n}\n",               // nested
      "package p;\nmessage A {\n  // +inline\n  optional string a = 1;\n}\n",  // inline scalar
      "package p;\n}\n",                                                // stray brace
  };
  for (std::string text : bad) {
    Schema schema;
    EXPECT_EQ(parse(text, schema).code(), StatusCode::kInvalid) << text;
  }
}

}  // namespace
}  // namespace skiff::api

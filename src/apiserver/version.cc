// The version skiff reports at /version. kubectl's dispatcher picks its binary by the minor,
// so this must stay the Kubernetes minor skiff implements.
namespace skiff::apiserver {
extern const char kKubernetesGitVersion[] = "v1.32.0";
}  // namespace skiff::apiserver

// `skiff image`: the node's image store from the command line, as crictl shows it.
//
//   skiff image import FILE|DIR [--name REPO]   OCI layout or docker-archive (dir or tar)
//   skiff image ls [-q]                          IMAGE  TAG  IMAGE ID  SIZE
//   skiff image pull REF [--username U --password P] [--plain-http] [--insecure]
//   skiff image rm REF...                        untag / remove, then reclaim disk
//   skiff image inspect REF                      the image record as JSON
//   skiff image gc                               reclaim unreferenced blobs and layers
// Every subcommand takes --data-dir DIR (default /var/lib/skiff; the store is DIR/images).
#pragma once

namespace skiff::agent::images {

// argv[0] is the subcommand (the arguments after "image"). Returns the process exit code:
// 0 on success, 1 on failure (the error on stderr), 2 on a usage error.
int run_image_command(int argc, char** argv);

}  // namespace skiff::agent::images
